// POST /v1/txs/batch against a real node (mempool, runtime check, consensus of one validator): a
// signer's txs that arrive out of order, inside one batch or across batches, wait in the mempool and
// commit in nonce order (issue #14); a bad envelope in the batch is refused alone.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair, toHex } from '@cityledger/core'
import { seedFor } from '@cityledger/core/testing'
import { createClient } from '../src/client/index.ts'
import { startLocalNode, subjectTx } from './nodeHarness.ts'

test('out-of-order nonces in a batch and across batches are admitted and commit in nonce order', async () => {
  const n = await startLocalNode()
  try {
    const client = createClient({ url: n.url })
    const key = generateKeyPair(seedFor('batch-node-signer'))
    const tx = (nonce: number) => subjectTx(n.chainId, key, nonce, 'batch-node')
    // Nonces 3, 2 first (nothing reapable yet), then 1 and a bad envelope in a second batch.
    const first = await client.submitBatch([tx(3).bytes, tx(2).bytes])
    assert.equal(
      first.map((r) => r.ok),
      [true, true],
    )
    const second = await client.submitBatch([new Uint8Array([1, 2, 3]), tx(1).bytes])
    assert.is(second[0]!.ok, false)
    assert.equal(second[1], { ok: true, hash: toHex(tx(1).hash) })
    const heights: number[] = []
    for (const nonce of [1, 2, 3]) {
      const s = await client.waitForTx(tx(nonce).hash, { timeoutMs: 20_000 })
      assert.is(s.status, 'committed', `nonce ${nonce}`)
      heights.push(s.height! * 10_000 + s.index!)
    }
    assert.equal(
      [...heights].sort((a, b) => a - b),
      heights,
      'committed in nonce order',
    )
  } finally {
    await n.close()
  }
})

test('config rpc.maxBatchTxs bounds a batch on a running node (413 TOO_LARGE, nothing admitted)', async () => {
  const n = await startLocalNode((config) => (config.rpc.maxBatchTxs = 2))
  try {
    const client = createClient({ url: n.url })
    const key = generateKeyPair(seedFor('batch-node-limit'))
    const txs = [1, 2, 3].map((nonce) => subjectTx(n.chainId, key, nonce, 'batch-limit'))
    const err = await client.submitBatch(txs.map((t) => t.bytes)).catch((e) => e)
    assert.is(err.code, 'TOO_LARGE', String(err))
    assert.is((await client.tx(txs[0]!.hash)).status, 'unknown', 'nothing admitted')
    const ok = await client.submitBatch(txs.slice(0, 2).map((t) => t.bytes))
    assert.equal(
      ok.map((r) => r.ok),
      [true, true],
    )
  } finally {
    await n.close()
  }
})

test.run()
