// A rate-limited client's batch costs one request's worth per envelope (issue #11's bounds): before,
// a batch counted as one request, so a client at its limit could submit up to maxBatchTxs times more
// txs a second than through POST /v1/txs, and every one of them is decoded and checked.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { toHex } from '@cityledger/core'
import { postJson, signed, withServer } from './rpcHarness.ts'

const batch = (url: string, from: number, n: number) =>
  postJson(
    url,
    '/v1/txs/batch',
    JSON.stringify(Array.from({ length: n }, (_, i) => toHex(signed({ nonce: from + i }).bytes))),
  )

test('a batch takes one token per envelope; past the bucket it is refused as a whole (429)', async () => {
  let now = 0
  await withServer(
    async ({ fake, url }) => {
      // Burst 10: a batch of 8 passes, the next batch of 8 finds 2 tokens and is refused whole.
      const first = await batch(url, 1, 8)
      assert.is(first.status, 200)
      assert.is(fake.pending().length, 8)
      const second = await batch(url, 9, 8)
      assert.is(second.status, 429, JSON.stringify(second.body))
      assert.is(second.body.error.code, 'RATE_LIMITED')
      assert.is(fake.pending().length, 8, 'nothing of the refused batch admitted')
      // A second later (10 tokens a second) it passes.
      now += 1000
      assert.is((await batch(url, 9, 8)).status, 200)
      // More envelopes than the burst can never pass for this client: said so.
      now += 5000
      const big = await batch(url, 17, 11)
      assert.is(big.status, 429)
      assert.match(big.body.error.message, /11 envelopes.*burst of 10/)
    },
    { now: () => now },
    { rateLimitPerSecond: 10, rateLimitBurst: 10 },
  )
})

test.run()
