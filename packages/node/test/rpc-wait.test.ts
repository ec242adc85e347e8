import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { toHex } from '@cityledger/core'
import { call, postBytes, postJson, signed, startServer, withServer } from './rpcHarness.ts'

test('POST ?wait=commit resolves when the backend commits, like GET /v1/txs/:hash', async () => {
  await withServer(async ({ fake, url }) => {
    const tx = signed()
    const answer = postBytes(url, tx.bytes, '?wait=commit')
    await fake.whenWaiting(1)
    fake.commit()
    const r = await answer
    assert.is(r.status, 200)
    assert.equal(r.body, (await call(`${url}/v1/txs/${toHex(tx.hash)}`)).body)
    assert.is(r.body.status, 'committed')
    assert.is(r.body.height, 1)
    assert.is(fake.waiting(), 0)
  })
})

test('wait=commit reports a failed tx with its code (200: the tx was included)', async () => {
  await withServer(async ({ fake, url }) => {
    const tx = signed()
    const answer = postJson(url, '/v1/txs/json?wait=commit', JSON.stringify({ envelope: toHex(tx.bytes) }))
    await fake.whenWaiting(1)
    fake.commit({ failures: { [toHex(tx.hash)]: 'INSUFFICIENT_FUNDS' } })
    const r = await answer
    assert.is(r.status, 200)
    assert.equal(r.body, {
      hash: toHex(tx.hash),
      status: 'failed',
      height: 1,
      index: 0,
      code: 'INSUFFICIENT_FUNDS',
    })
  })
})

test('GET /v1/txs/:hash?wait=commit long-polls; only the awaited tx wakes it', async () => {
  await withServer(async ({ fake, url }) => {
    const a = signed({ nonce: 1 })
    const b = signed({ nonce: 2 })
    await postBytes(url, a.bytes)
    await postBytes(url, b.bytes)
    const answer = call(`${url}/v1/txs/${toHex(b.hash)}?wait=commit`)
    await fake.whenWaiting(1)
    fake.commit({ only: [toHex(a.hash)] })
    assert.is(fake.waiting(), 1, 'still waiting for b')
    fake.commit()
    const r = await answer
    assert.is(r.body.status, 'committed')
    assert.is(r.body.height, 2)
  })
})

test('wait ends at the server cap with the current status (202 pending)', async () => {
  await withServer(
    async ({ url }) => {
      const tx = signed()
      const r = await postBytes(url, tx.bytes, '?wait=commit&timeoutMs=999999')
      assert.is(r.status, 202)
      assert.equal(r.body, { hash: toHex(tx.hash), status: 'pending' })
      const g = await call(`${url}/v1/txs/${toHex(tx.hash)}?wait=commit`)
      assert.is(g.status, 200)
      assert.is(g.body.status, 'pending')
    },
    {},
    { maxWaitMs: 1 },
  )
})

test('a client that goes away stops its wait', async () => {
  await withServer(async ({ fake, url }) => {
    const ac = new AbortController()
    const answer = fetch(`${url}/v1/txs/${'11'.repeat(32)}?wait=commit`, { signal: ac.signal }).catch(
      (e: Error) => e.name,
    )
    await fake.whenWaiting(1)
    ac.abort()
    assert.is(await answer, 'AbortError')
    await fake.whenWaiting(0)
  })
})

test('stop() ends in-flight waits and open connections, then refuses connections', async () => {
  const h = await startServer()
  const tx = signed()
  const answer = postBytes(h.url, tx.bytes, '?wait=commit')
  await h.fake.whenWaiting(1)
  await h.stop()
  const r = await answer
  assert.is(r.status, 202)
  assert.is(r.body.status, 'pending')
  const after = await fetch(`${h.url}/v1/status`).then(
    () => 'answered',
    () => 'refused',
  )
  assert.is(after, 'refused')
})

test.run()
