// Overload (issue #14): a node refuses clients early once a few blocks' worth of txs are pending
// (MEMPOOL_FULL, 429 with Retry-After) instead of queueing up to the mempool's memory limit, where
// every acknowledged tx waited half a minute. The txs here wait behind a missing nonce, so nothing
// commits and the backlog only grows.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@cityledger/core'
import { seedFor } from '@cityledger/core/testing'
import { createClient } from '../src/client/index.ts'
import { startLocalNode, subjectTx } from './nodeHarness.ts'
import { postBytes } from './rpcHarness.ts'

/** Submits nonces from..from+n-1 of `key` in batches of 256; returns how many were admitted before the first refusal. */
async function fill(url: string, chainId: string, seed: string, n: number) {
  const client = createClient({ url })
  const key = generateKeyPair(seedFor(seed))
  let admitted = 0
  // Nonce 1 is never sent: nothing is executable, nothing commits.
  for (let nonce = 2; nonce < 2 + n; nonce += 256) {
    const txs = Array.from({ length: Math.min(256, 2 + n - nonce) }, (_, i) =>
      subjectTx(chainId, key, nonce + i, seed),
    )
    const out = await client.submitBatch(txs.map((t) => t.bytes))
    for (const r of out) {
      if (!r.ok) return { admitted, refusal: r, key }
      admitted++
    }
  }
  return { admitted, refusal: undefined, key }
}

test('past backlogBlocks x the block cap pending, clients get MEMPOOL_FULL (429, Retry-After); with 0, no such limit', async () => {
  // One block of backlog: the limit is the node's block cap (at most 1,000 before any round).
  const n = await startLocalNode((c) => {
    c.mempool.backlogBlocks = 1
    c.mempool.backlogMinTxs = 1
    c.mempool.maxPerSigner = 2_000
  })
  try {
    const r = await fill(n.url, n.chainId, 'backlog-on', 1_100)
    assert.ok(r.refusal, `refused before 1,100 pending (admitted ${r.admitted})`)
    assert.is(r.refusal!.ok ? '' : r.refusal!.code, 'MEMPOOL_FULL')
    const limit = Number(/backlog limit is (\d+)/.exec(r.refusal!.ok ? '' : r.refusal!.message)?.[1])
    assert.is(r.admitted, limit, 'admitted exactly up to the limit')
    assert.ok(limit >= 1 && limit <= 1_000, `limit ${limit}`)
    // A single submit is refused the same way, with a Retry-After for the client.
    const one = await postBytes(n.url, subjectTx(n.chainId, r.key, 5_000, 'x').bytes)
    assert.is(one.status, 429, JSON.stringify(one.body))
    assert.is(one.body.error.code, 'MEMPOOL_FULL')
    assert.is(one.headers.get('retry-after'), '1')
  } finally {
    await n.close()
  }
  const off = await startLocalNode((c) => {
    c.mempool.backlogBlocks = 0
    c.mempool.maxPerSigner = 2_000
  })
  try {
    const r = await fill(off.url, off.chainId, 'backlog-off', 1_100)
    assert.is(r.refusal, undefined, JSON.stringify(r.refusal))
    assert.is(r.admitted, 1_100)
  } finally {
    await off.close()
  }
})

test.run()
