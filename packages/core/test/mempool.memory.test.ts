import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { performance } from 'node:perf_hooks'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import {
  type SignatureCheck,
  type SignatureVerifier,
  createMempool,
  encode,
  encodeTxBody,
  toHex,
} from '@cityledger/core'
import { Rng, testSeed } from '@cityledger/core/testing'

// Scale sanity: 100,000 pending transactions from 10,000 signers. Signatures are fake (the verifier
// accepts everything) so the test measures the mempool, not Ed25519. Times and memory are logged, never asserted.

const SEED = testSeed(100_000)
const SIGNERS = 10_000
const PER_SIGNER = 10
const TOTAL = SIGNERS * PER_SIGNER

class AcceptAll implements SignatureVerifier {
  readonly name = 'test-accept-all'
  batches = 0
  checked = 0
  verify(_c: SignatureCheck): boolean {
    return true
  }
  async verifyBatch(checks: readonly SignatureCheck[]): Promise<boolean[]> {
    this.batches++
    this.checked += checks.length
    return checks.map(() => true)
  }
  async close(): Promise<void> {}
}

const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MB`

// A full collection before each heap reading, so the logged growth is what the pool retains.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const heapUsed = () => {
  gc()
  return process.memoryUsage().heapUsed
}

test(`100,000 pending txs from 10,000 signers: add, reap, update (seed ${SEED})`, async () => {
  const rng = new Rng(SEED)
  const signers = Array.from({ length: SIGNERS }, () => rng.bytes(32))
  const committed = new Map<string, number>()
  let height = 0
  const verifier = new AcceptAll()
  const pool = createMempool({
    chainId: 'seoul-1',
    verifier,
    committedNonce: (s) => committed.get(toHex(s)) ?? 0,
    height: () => height,
    check: () => {},
    limits: { maxTxs: 200_000, maxBytes: 256 << 20, maxTxBytes: 4096, maxPerSigner: 16 },
  })
  const sig = new Uint8Array(64)
  // Nonce-major order: every signer's nonce 1 first, as traffic from many clients would interleave.
  const envelopes: Uint8Array[] = []
  for (let nonce = 1; nonce <= PER_SIGNER; nonce++) {
    for (let s = 0; s < SIGNERS; s++) {
      const args = { to: signers[rng.int(SIGNERS)]!, amount: rng.range(1, 1_000_000), memo: 'wage' }
      const body = encodeTxBody({
        chainId: 'seoul-1',
        service: 'token',
        method: 'transfer',
        args,
        signer: signers[s]!,
        nonce,
        expiry: 0,
      })
      envelopes.push(encode([body, sig]))
    }
  }
  const heapBefore = heapUsed()
  let t = performance.now()
  for (let i = 0; i < TOTAL; i += 5000) {
    const results = await pool.addMany(envelopes.slice(i, i + 5000))
    const failed = results.find((r) => !r.ok)
    assert.ok(!failed, `seed ${SEED}: add ${i}: ${failed && !failed.ok ? failed.error.message : ''}`)
  }
  const addMs = performance.now() - t
  const heapAfter = heapUsed()
  assert.is(pool.size(), TOTAL)
  assert.is(verifier.checked, TOTAL)
  console.log(
    `  add: ${TOTAL} txs in ${addMs.toFixed(0)} ms (${((TOTAL / addMs) * 1000).toFixed(0)} tx/s), ${verifier.batches} verifyBatch calls, ` +
      `pool ${mb(pool.bytes())} of envelopes, heap +${mb(heapAfter - heapBefore)} (~${Math.round((heapAfter - heapBefore) / TOTAL)} B/tx)`,
  )

  t = performance.now()
  const batch = pool.reap({ maxTxs: 20_000, maxBytes: 16 << 20 })
  const reapMs = performance.now() - t
  console.log(`  reap: ${batch.length} of ${pool.size()} in ${reapMs.toFixed(1)} ms`)
  assert.is(batch.length, 20_000)
  // Round-robin: two full rounds over 10,000 signers, each signer's nonces 1 then 2.
  const next = new Map<string, number>()
  for (const tx of batch) {
    const k = toHex(tx.body.signer)
    const want = (next.get(k) ?? 0) + 1
    assert.is(tx.body.nonce, want, `seed ${SEED}: signer ${k} out of order`)
    next.set(k, want)
  }
  assert.is(next.size, SIGNERS)

  t = performance.now()
  for (const [k, n] of next) committed.set(k, n)
  height = 1
  const res = pool.update({ committed: batch, height })
  console.log(
    `  update: removed ${res.removed.committed}, re-checked ${res.rechecked} in ${(performance.now() - t).toFixed(0)} ms`,
  )
  assert.is(res.removed.committed, 20_000)
  assert.is(res.rechecked, TOTAL - 20_000)
  assert.is(pool.size(), TOTAL - 20_000)
  assert.is(verifier.checked, TOTAL, 'update verified nothing')

  t = performance.now()
  const small = pool.reap({ maxTxs: 500, maxBytes: 1 << 20 })
  console.log(`  reap of 500 from ${pool.size()}: ${(performance.now() - t).toFixed(1)} ms`)
  assert.ok(small.every((tx) => tx.body.nonce === 3))
})

test.run()
