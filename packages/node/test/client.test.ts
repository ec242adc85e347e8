import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CityError, equalBytes, fromHex, isCityError, toHex } from '@cityledger/core'
import { Rng, testSeed } from '@cityledger/core/testing'
import { createClient } from '../src/client/index.ts'
import { alice, signed, startServer, txBody, withServer } from './rpcHarness.ts'

const SEED = testSeed(20261126)

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    assert.ok(isCityError(err), `expected a CityError, got ${(err as Error)?.stack ?? String(err)}`)
    return err.code
  }
  return 'OK'
}

test('submitTx, tx, waitForTx, blocks, status, validators round-trip', async () => {
  await withServer(async ({ fake, url }) => {
    const client = createClient({ url })
    const s = await client.submitTx(txBody(), alice.secretKey)
    assert.is(s.status, 'pending')
    const hash = toHex(signed().hash)
    assert.is(s.hash, hash, 'hash of the tx the client signed')
    assert.equal(await client.tx(hash), { hash, status: 'pending' })
    assert.equal(await client.tx(fromHex(hash)), { hash, status: 'pending' })

    const waited = client.waitForTx(hash, { timeoutMs: 60_000 })
    await fake.whenWaiting(1)
    const block = fake.commit()
    const c = await waited
    assert.is(c.status, 'committed')
    assert.is(c.height, 1)
    assert.is(c.events?.[0]?.service, 'token')

    assert.equal(await client.block(1), block)
    assert.equal(await client.block('latest'), block)
    assert.equal(await client.blockByHash(block.hash), block)
    assert.equal(await client.blockByHash(fromHex(block.hash)), block)
    assert.is(await client.block(2), undefined)
    assert.is(await client.blockByHash('00'.repeat(32)), undefined)

    const st = await client.status()
    assert.is(st.height, 1)
    assert.is(st.chainId, 'test-chain')
    const vs = await client.validators()
    assert.is(vs.length, 4)
    assert.is(vs[0]!.name, 'agency-0')
  })
})

test('submit with wait=commit resolves on commit; raw submit accepts a trailing slash url', async () => {
  await withServer(async ({ fake, url }) => {
    const client = createClient({ url: `${url}/` })
    const p = client.submitTx(txBody({ nonce: 1 }), alice.secretKey, { wait: 'commit' })
    await fake.whenWaiting(1)
    fake.commit()
    const s = await p
    assert.is(s.status, 'committed')

    const tx = signed({ nonce: 2 })
    const q = client.submit(tx.bytes, { wait: 'commit' })
    await fake.whenWaiting(1)
    fake.commit({ failures: { [toHex(tx.hash)]: 'NOT_ALLOWED' } })
    assert.equal(await q, {
      hash: toHex(tx.hash),
      status: 'failed',
      height: 2,
      index: 0,
      code: 'NOT_ALLOWED',
    })
  })
})

test('waits that run out return the last status; a server cap below the timeout is re-polled', async () => {
  await withServer(
    async ({ fake, url }) => {
      const client = createClient({ url })
      const tx = signed()
      assert.equal(await client.submit(tx.bytes, { wait: 'commit', timeoutMs: 0 }), {
        hash: toHex(tx.hash),
        status: 'pending',
      })
      assert.is((await client.waitForTx(tx.hash, { timeoutMs: 0 })).status, 'pending')
      // The server holds each poll for at most 1 ms: the client polls again until the commit.
      const p = client.waitForTx(tx.hash, { timeoutMs: 60_000 })
      await fake.whenWaiting(1)
      fake.commit()
      assert.is((await p).status, 'committed')
      const ac = new AbortController()
      const q = client.waitForTx('22'.repeat(32), { timeoutMs: 60_000, signal: ac.signal })
      await fake.whenWaiting(1)
      ac.abort()
      assert.is(await codeOf(q), 'ABORTED')
    },
    {},
    { maxWaitMs: 1 },
  )
})

test('server errors come back as CityError with the server code and status', async () => {
  await withServer(async ({ fake, url }) => {
    const client = createClient({ url })
    const rng = new Rng(SEED)
    for (let i = 0; i < 20; i++) {
      const code = await codeOf(client.submit(rng.bytes(rng.range(1, 100))))
      assert.ok(
        ['MALFORMED', 'TRAILING_BYTES', 'NON_CANONICAL', 'BAD_FIELD'].includes(code),
        `seed ${SEED} case ${i}: ${code}`,
      )
    }
    const tx = signed()
    await client.submit(tx.bytes)
    try {
      await client.submit(tx.bytes)
      assert.unreachable('duplicate accepted')
    } catch (err) {
      assert.instance(err, CityError)
      assert.is((err as CityError).code, 'DUPLICATE_TX')
      assert.is((err as CityError).details.status, 409)
    }
    assert.is(await codeOf(client.submit(new Uint8Array(5000))), 'TX_TOO_LARGE')
    assert.is(
      await codeOf(client.submitTx(txBody({ nonce: 9, chainId: 'elsewhere' }), alice.secretKey)),
      'WRONG_CHAIN',
    )
    fake.setReady(false)
    assert.is(await codeOf(client.submitTx(txBody({ nonce: 10 }), alice.secretKey)), 'NOT_READY')
    fake.failNext('status', new Error('bug'))
    assert.is(await codeOf(client.status()), 'INTERNAL')
    // Bad arguments are refused before any request.
    assert.is(await codeOf(client.tx('abc')), 'BAD_HEX')
    assert.is(await codeOf(client.blockByHash(new Uint8Array(31))), 'BAD_HEX')
  })
})

test('query: args reach the service; verifyProof is called with root, key, value and proof', async () => {
  await withServer(async ({ fake, url }) => {
    const root = 'ab'.repeat(32)
    fake.addQuery('token', 'balance', (args) => ({
      height: 7,
      value: { account: args.account, amount: Number(args.amount ?? 0) },
      ...(args.account === 'noproof' ? {} : { proof: { root, key: '0a0b', siblings: ['cc'] } }),
    }))
    const client = createClient({ url })
    const plain = await client.query('token', 'balance', { account: 'bob & co/?', amount: '5' })
    assert.equal(plain.value, { account: 'bob & co/?', amount: 5 })
    assert.is(plain.height, 7)

    const seen: unknown[] = []
    const ok = await client.query(
      'token',
      'balance',
      { account: 'bob' },
      {
        verifyProof: (r, k, v, p) => {
          seen.push([toHex(r), toHex(k), v, p])
          return equalBytes(r, fromHex(root))
        },
      },
    )
    assert.is(ok.height, 7)
    assert.equal(seen, [
      [root, '0a0b', { account: 'bob', amount: 0 }, { root, key: '0a0b', siblings: ['cc'] }],
    ])
    assert.is(
      await codeOf(client.query('token', 'balance', { account: 'bob' }, { verifyProof: () => false })),
      'BAD_PROOF',
    )
    assert.is(
      await codeOf(
        client.query(
          'token',
          'balance',
          { account: 'bob' },
          {
            verifyProof: () => {
              throw new Error('bad proof shape')
            },
          },
        ),
      ),
      'BAD_PROOF',
    )
    assert.is(
      await codeOf(client.query('token', 'balance', { account: 'noproof' }, { verifyProof: () => true })),
      'PROOF_MISSING',
    )
    assert.is(await codeOf(client.query('token', 'nosuch')), 'UNKNOWN_QUERY')
    assert.is(await codeOf(client.query('nosuch', 'balance')), 'UNKNOWN_SERVICE')
  })
})

test('events: async iteration in commit order; break and abort unsubscribe', async () => {
  await withServer(async ({ fake, url }) => {
    const client = createClient({ url })
    const it = client.events()
    const first = it.next()
    await fake.whenSubscribers(1)
    await client.submitTx(txBody({ nonce: 1 }), alice.secretKey)
    const b1 = fake.commit()
    const b2 = fake.commit()
    const got = [(await first).value, (await it.next()).value, (await it.next()).value]
    assert.equal(
      got.map((e) => e?.type),
      ['block', 'event', 'block'],
    )
    assert.is((got[0]!.data as { hash: string }).hash, b1.hash)
    assert.is((got[2]!.data as { hash: string }).hash, b2.hash)
    await it.return(undefined)
    await fake.whenSubscribers(0)

    const ac = new AbortController()
    const seen: string[] = []
    const loop = (async () => {
      for await (const e of client.events({ signal: ac.signal })) {
        seen.push((e.data as { n: string }).n)
        if (seen.length === 2) ac.abort()
      }
    })()
    await fake.whenSubscribers(1)
    fake.emit({ type: 'event', data: { n: 'a' } })
    fake.emit({ type: 'event', data: { n: 'b' } })
    await loop // ends quietly on abort
    assert.equal(seen, ['a', 'b'])
    await fake.whenSubscribers(0)
  })
})

test('events end when the server stops; health, metrics; an unreachable server is UNAVAILABLE', async () => {
  const h = await startServer()
  const client = createClient({ url: h.url })
  assert.equal(await client.health(), { ok: true })
  h.fake.setHealth({ ok: false, reasons: ['catching up'] })
  assert.equal(await client.health(), { ok: false, reasons: ['catching up'] })
  assert.match(await client.metrics(), /cityledger_height/)

  const it = client.events()
  const next = it.next()
  await h.fake.whenSubscribers(1)
  await h.stop()
  const end = await next.then(
    (r) => (r.done ? 'done' : 'value'),
    (e: unknown) => (isCityError(e) ? e.code : String(e)),
  )
  assert.ok(end === 'done' || end === 'UNAVAILABLE', end)
  assert.is(await codeOf(client.status()), 'UNAVAILABLE')
})

test('a server that does not speak RPC v1 gives BAD_RESPONSE', async () => {
  const fakeFetch = (async (input: string | URL | Request) => {
    const u = String(input)
    if (u.endsWith('/v1/status')) return new Response('<html>proxy error</html>', { status: 502 })
    if (u.includes('/v1/txs/')) return new Response(JSON.stringify({ hash: 1 }), { status: 200 })
    return new Response(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'x' } }), { status: 404 })
  }) as typeof fetch
  const client = createClient({ url: 'http://node.invalid:1', fetch: fakeFetch })
  assert.is(await codeOf(client.status()), 'BAD_RESPONSE')
  assert.is(await codeOf(client.tx('33'.repeat(32))), 'BAD_RESPONSE')
  assert.is(await client.block(3), undefined)
})

test.run()
