// The chain read routes added for issue 15 ("RPC completeness") over the fake backend: GET /v1/genesis,
// the decoded tx body on GET /v1/txs/:hash, block ranges GET /v1/blocks?from=&to=, the client methods
// for them, and the OpenAPI document naming every route the server has, each with an operationId.
import { toHex } from '@cityledger/core'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createClient } from '../src/client/index.ts'
import { FAKE_GENESIS, type FakeBackend, createFakeBackend } from '../src/rpc/fakeBackend.ts'
import { type RpcServerOptions, createRpcServer } from '../src/rpc/index.ts'
import { alice, call, postBytes, signed } from './rpcHarness.ts'

async function withFake(
  fn: (h: { fake: FakeBackend; url: string; routes: string[] }) => Promise<void>,
  limits: Partial<RpcServerOptions['limits']> = {},
): Promise<void> {
  const fake = createFakeBackend({ chainId: 'test-chain', txBodies: true })
  const server = createRpcServer({
    backend: fake,
    limits: { maxBodyBytes: 4096, maxWaitMs: 60_000, ...limits },
    host: '127.0.0.1',
    port: 0,
    heartbeatMs: 0,
  })
  const { url } = await server.start()
  try {
    await fn({ fake, url, routes: server.routes() })
  } finally {
    await server.stop()
  }
}

const expectError = (r: { status: number; body: any }, status: number, code: string, what: string) => {
  assert.is(r.status, status, `${what}: status (${JSON.stringify(r.body)})`)
  assert.is(r.body?.error?.code, code, `${what}: code`)
  assert.type(r.body.error.message, 'string')
}

test('GET /v1/genesis: the genesis in file form and the hash /v1/status reports', async () => {
  await withFake(async ({ url }) => {
    const g = await call(`${url}/v1/genesis`)
    assert.is(g.status, 200)
    assert.equal(g.body, JSON.parse(JSON.stringify(FAKE_GENESIS)))
    // "0x" hex survives: the answer is the file's form, not the RPC's plain-hex form.
    assert.is(g.body.genesis.services.token.admin, `0x${'ab'.repeat(32)}`)
    assert.is(g.body.genesisHash, (await call(`${url}/v1/status`)).body.genesisHash)
    const client = createClient({ url })
    assert.equal(await client.genesis(), g.body)
  })
})

test('GET /v1/txs/:hash carries the decoded body: pending, committed and failed', async () => {
  await withFake(async ({ fake, url }) => {
    const ok = signed({ nonce: 1, args: { to: new Uint8Array(32).fill(2), amount: 10 } })
    const bad = signed({ nonce: 2, method: 'burn', expiry: 99 })
    for (const t of [ok, bad]) assert.is((await postBytes(url, t.bytes)).status, 202)
    const body = (nonce: number, method: string, args: unknown, expiry: number) => ({
      chainId: 'test-chain',
      service: 'token',
      method,
      args,
      signer: toHex(alice.publicKey),
      nonce,
      expiry,
    })
    const okBody = body(1, 'transfer', { to: '02'.repeat(32), amount: 10 }, 0)
    const pending = await call(`${url}/v1/txs/${toHex(ok.hash)}`)
    assert.equal(pending.body, { hash: toHex(ok.hash), status: 'pending', tx: okBody })

    fake.commit({ failures: { [toHex(bad.hash)]: 'NOT_ALLOWED' } })
    const committed = await call(`${url}/v1/txs/${toHex(ok.hash)}`)
    assert.is(committed.body.status, 'committed')
    assert.equal(committed.body.tx, okBody)
    const failed = await call(`${url}/v1/txs/${toHex(bad.hash)}?wait=commit`)
    assert.is(failed.body.status, 'failed')
    assert.equal(failed.body.tx, body(2, 'burn', { to: '02'.repeat(32), amount: 10 }, 99))
    // Unknown txs have no body.
    assert.equal((await call(`${url}/v1/txs/${'cd'.repeat(32)}`)).body, {
      hash: 'cd'.repeat(32),
      status: 'unknown',
    })
    const client = createClient({ url })
    assert.equal((await client.tx(ok.hash)).tx, okBody)
  })
})

/** Commits `n` blocks of one tx each (the fake's blocks then have equal JSON sizes). */
async function commitBlocks(fake: FakeBackend, url: string, n: number): Promise<void> {
  for (let i = 1; i <= n; i++) {
    assert.is((await postBytes(url, signed({ nonce: i }).bytes)).status, 202)
    fake.commit()
  }
}

test('GET /v1/blocks: ranges, the default and capped to, the block bound and next', async () => {
  await withFake(
    async ({ fake, url }) => {
      await commitBlocks(fake, url, 7)
      const heights = (b: any) => b.blocks.map((x: any) => x.header.height)
      const r = await call(`${url}/v1/blocks?from=2&to=4`)
      assert.is(r.status, 200)
      assert.equal(heights(r.body), [2, 3, 4])
      assert.is(r.body.next, undefined, 'the whole range: no next')
      // Each block is exactly what the one-block route gives.
      assert.equal(r.body.blocks[1], (await call(`${url}/v1/blocks/3`)).body)
      // to defaults to from + maxRangeBlocks - 1 (here 3); the answer says where to go on.
      const d = await call(`${url}/v1/blocks?from=1`)
      assert.equal(heights(d.body), [1, 2, 3])
      assert.is(d.body.next, 4)
      // An explicit to past the bound is cut at the bound, with next.
      const wide = await call(`${url}/v1/blocks?from=3&to=7`)
      assert.equal(heights(wide.body), [3, 4, 5])
      assert.is(wide.body.next, 6)
      // to above the head is capped at the head: nothing more to ask for yet.
      const top = await call(`${url}/v1/blocks?from=6&to=1000`)
      assert.equal(heights(top.body), [6, 7])
      assert.is(top.body.next, undefined)
      assert.equal(heights((await call(`${url}/v1/blocks?from=7&to=7`)).body), [7])
    },
    { maxRangeBlocks: 3 },
  )
})

test('GET /v1/blocks: the byte budget stops an answer early, never before its first block', async () => {
  await withFake(
    async ({ fake, url }) => {
      await commitBlocks(fake, url, 4)
      const one = JSON.stringify((await call(`${url}/v1/blocks/1`)).body).length
      // Room for two blocks and a half: two are sent, next is 3.
      const r = await call(`${url}/v1/blocks?from=1&to=4`)
      assert.equal(
        r.body.blocks.map((b: any) => b.header.height),
        [1, 2],
        `budget ${Math.floor(one * 2.5)}, block ${one}`,
      )
      assert.is(r.body.next, 3)
    },
    { maxRangeBytes: Math.floor(JSON.stringify(await sampleBlock()).length * 2.5) },
  )
  await withFake(
    async ({ fake, url }) => {
      await commitBlocks(fake, url, 2)
      const r = await call(`${url}/v1/blocks?from=1&to=2`)
      assert.equal(
        r.body.blocks.map((b: any) => b.header.height),
        [1],
        'a block over the budget still goes',
      )
      assert.is(r.body.next, 2)
      // The client follows next to the end.
      const client = createClient({ url })
      const seen: number[] = []
      for (let from: number | undefined = 1; from !== undefined; ) {
        const page: Awaited<ReturnType<typeof client.blocks>> = await client.blocks(from, 2)
        seen.push(...page.blocks.map((b) => b.header.height))
        from = page.next
      }
      assert.equal(seen, [1, 2])
    },
    { maxRangeBytes: 1 },
  )
})

/** The JSON size of a block as the fake makes it with one tx (the budget is set from it). */
async function sampleBlock(): Promise<unknown> {
  let block: unknown
  await withFake(async ({ fake, url }) => {
    await commitBlocks(fake, url, 1)
    block = (await call(`${url}/v1/blocks/1`)).body
  })
  return block
}

test('GET /v1/blocks: bad and inverted ranges are 400 BAD_REQUEST, a range above the head 404', async () => {
  await withFake(async ({ fake, url }) => {
    await commitBlocks(fake, url, 2)
    for (const [qs, what] of [
      ['', 'no from'],
      ['?to=2', 'no from'],
      ['?from=0', 'from 0'],
      ['?from=-1', 'negative'],
      ['?from=1.5', 'fraction'],
      ['?from=abc', 'not a number'],
      ['?from=1e3', 'exponent'],
      ['?from=99999999999999999', 'not a safe integer'],
      ['?from=2&to=1', 'inverted'],
      ['?from=1&to=x', 'bad to'],
      ['?from=1&from=2', 'from twice'],
      ['?from=1&limit=5', 'unknown parameter'],
    ] as const)
      expectError(await call(`${url}/v1/blocks${qs}`), 400, 'BAD_REQUEST', what)
    assert.match((await call(`${url}/v1/blocks?from=2&to=1`)).body.error.message, /inverted/)
    expectError(await call(`${url}/v1/blocks?from=3`), 404, 'NOT_FOUND', 'above the head')
    const client = createClient({ url })
    assert.equal(await client.blocks(3), { blocks: [] }, 'the client: nothing there yet')
    for (const [from, to, re] of [
      [0, undefined, /^from/],
      [2, 1, /^to/],
    ] as const) {
      const err = await client.blocks(from, to).then(
        () => undefined,
        (e: Error) => e,
      )
      assert.instance(err, RangeError)
      assert.match(err!.message, re)
    }
  })
})

test('OpenAPI: the documented operations are the routes of the server, each with a unique operationId', async () => {
  await withFake(async ({ routes, url }) => {
    const doc = (await call(`${url}/v1/openapi.json`)).body as {
      paths: Record<string, Record<string, { operationId?: string }>>
      components: { schemas: Record<string, { properties: Record<string, unknown> }> }
    }
    const documented: string[] = []
    const ids = new Set<string>()
    for (const [path, ops] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(ops)) {
        documented.push(`${method.toUpperCase()} ${path}`)
        assert.type(op.operationId, 'string', `${method} ${path} has an operationId`)
        assert.not.ok(ids.has(op.operationId!), `operationId ${op.operationId} is unique`)
        ids.add(op.operationId!)
      }
    assert.ok(doc.components.schemas.TxStatus!.properties.tx, 'TxStatus documents the decoded body')
    assert.equal([...routes].sort(), documented.sort())
    assert.ok(routes.includes('GET /v1/genesis') && routes.includes('GET /v1/blocks'))
  })
})

test.run()
