// The typed client's submitBatch (issue #14): one outcome per envelope in order, a refused envelope is
// an outcome with the server's code, a refused request is a thrown CityError.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { isCityError, toHex } from '@cityledger/core'
import { createClient } from '../src/client/index.ts'
import { signed, withServer } from './rpcHarness.ts'

test('submitBatch: outcomes in order, refused envelopes as outcomes, the good ones admitted', async () => {
  await withServer(async ({ fake, url }) => {
    const client = createClient({ url })
    const t1 = signed({ nonce: 1 })
    const t2 = signed({ nonce: 2 })
    const other = signed({ nonce: 3, chainId: 'other-chain' })
    const out = await client.submitBatch([t1.bytes, other.bytes, t2.bytes, t1.bytes])
    assert.equal(out[0], { ok: true, hash: toHex(t1.hash) })
    assert.is(out[1]!.ok, false)
    assert.is(out[1]!.ok === false && out[1]!.code, 'WRONG_CHAIN')
    assert.match(out[1]!.ok === false ? out[1]!.message : '', /other-chain/)
    assert.equal(out[2], { ok: true, hash: toHex(t2.hash) })
    assert.is(out[3]!.ok === false && out[3]!.code, 'DUPLICATE_TX')
    assert.equal(
      fake.pending().map((t) => t.body.nonce),
      [1, 2],
    )
    assert.equal(await client.submitBatch([]), [], 'nothing to send: no request')
    const s = await client.tx(t2.hash)
    assert.is(s.status, 'pending')
  })
})

test('submitBatch: a request the server refuses as a whole throws its code', async () => {
  await withServer(
    async ({ fake, url }) => {
      const client = createClient({ url })
      const txs = [1, 2, 3].map((nonce) => signed({ nonce }).bytes)
      const err = await client.submitBatch(txs).catch((e: unknown) => e)
      assert.ok(isCityError(err))
      assert.is(err.code, 'TOO_LARGE')
      assert.is(fake.pending().length, 0)
      fake.setReady(false)
      const notReady = await client.submitBatch(txs.slice(0, 2)).catch((e: unknown) => e)
      assert.ok(isCityError(notReady))
      assert.is(notReady.code, 'NOT_READY')
      const bad = await client.submitBatch(['00' as unknown as Uint8Array]).catch((e: unknown) => e)
      assert.instance(bad, TypeError)
    },
    {},
    { maxBatchTxs: 2 },
  )
})

test('submitBatch: an answer that is not one result per envelope is BAD_RESPONSE', async () => {
  const answers: unknown[] = [{ results: [] }, { results: [{}] }, [], { results: [{ hash: 'zz' }] }]
  for (const answer of answers) {
    const client = createClient({
      url: 'http://127.0.0.1:1',
      fetch: async () =>
        new Response(JSON.stringify(answer), {
          status: 200,
          headers: { 'content-type': 'application/json' },
        }),
    })
    const err = await client.submitBatch([signed().bytes]).catch((e: unknown) => e)
    assert.ok(isCityError(err), JSON.stringify(answer))
    assert.is(err.code, 'BAD_RESPONSE', JSON.stringify(answer))
  }
})

test.run()
