// Wrappers that measure what the node's components do without those components knowing about
// metrics: the verifier, the key-value store, the ledger's store and the commit stream.
import {
  type Block,
  type KvStore,
  type SignatureCheck,
  type SignatureVerifier,
  type Tx,
  decodeCertificate,
  toHex,
} from '@cityledger/core'
import type { LedgerStore } from '../chain/ledger.ts'
import type { Metrics } from './index.ts'

/**
 * Counts every signature `v` checks into `cityledger_crypto_signatures_verified_total{path}` and
 * tracks the batch queue (`..._verifier_pending_signatures`, and the pool's chunks when `v` is a pool).
 * Returns `v` itself when metrics are off.
 */
export function instrumentVerifier(
  v: SignatureVerifier,
  m: Metrics | undefined,
  path: 'batch' | 'inline',
): SignatureVerifier {
  if (!m) return v
  const counted = m.sigVerified.labels({ path })
  const pool = v as { stats?: () => { outstanding: number; waiting: number } }
  if (pool.stats) m.watchPool(() => pool.stats!())
  return {
    name: v.name,
    verify(check: SignatureCheck) {
      const ok = v.verify(check)
      counted.inc()
      return ok
    },
    async verifyBatch(checks: readonly SignatureCheck[]) {
      m.sigPending.inc(checks.length)
      try {
        const verdicts = await v.verifyBatch(checks)
        counted.inc(checks.length)
        return verdicts
      } finally {
        m.sigPending.dec(checks.length)
      }
    },
    close: () => v.close(),
  }
}

/** `kv` with each `write` timed into `cityledger_store_write_seconds{store}`. */
export function timedKv(kv: KvStore, m: Metrics | undefined, store: 'chain' | 'journal'): KvStore {
  if (!m) return kv
  const h = m.storeWrite.labels({ store })
  return {
    get: (k) => kv.get(k),
    getMany: (ks) => kv.getMany(ks),
    async write(ops, options) {
      const end = h.startTimer()
      try {
        await kv.write(ops, options)
      } finally {
        end()
      }
    },
    iterate: (r) => kv.iterate(r),
    close: () => kv.close(),
  }
}

/**
 * The ledger's store, reading each commit certificate on its way to disk: how many validators did
 * not sign it (`..._certificate_missing_signers`) and which (`..._missing_signatures_total{validator}`).
 * A PBFT certificate needs 2f+1 signatures, so up to f missing is normal; the same validator missing
 * from every certificate is one that is down or cut off.
 */
export function instrumentLedgerStore(
  s: LedgerStore,
  m: Metrics | undefined,
  validatorsHex: readonly string[],
): LedgerStore {
  if (!m) return s
  return {
    ...s,
    async commitBlock(entry) {
      const root = await s.commitBlock(entry)
      try {
        const signed = new Set(decodeCertificate(entry.certificate).signatures.map((x) => toHex(x.validator)))
        let missing = 0
        for (const v of validatorsHex) {
          if (signed.has(v)) continue
          missing++
          m.missingSignatures.inc({ validator: v })
        }
        m.missingSigners.set(missing)
      } catch {
        // A certificate this node cannot decode was not committed by the ledger: nothing to count.
      }
      return root
    },
  }
}

/** Header time of the committed block and the interval since the previous one (both from headers). */
export function observeBlock(
  m: Metrics,
  block: Block,
  previous: { height: number; time: number } | undefined,
) {
  m.lastBlockTime.set(block.header.time / 1000)
  // Genesis has no block before it: its time is the chain's start, not a block's.
  if (
    previous &&
    previous.height >= 1 &&
    previous.height === block.header.height - 1 &&
    block.header.time >= previous.time
  )
    m.blockInterval.observe((block.header.time - previous.time) / 1000)
}

/** Remembers when this node accepted each tx over RPC, to observe submit-to-commit once committed. */
export interface SubmitTracker {
  submitted(hash: Uint8Array): void
  committed(txs: readonly Tx[]): void
}

/**
 * Times since `submitted` are read from `now` (ms). At most `max` txs are remembered: a tx that expires
 * or is dropped never commits, and the oldest entries go first.
 */
export function createSubmitTracker(m: Metrics, now: () => number, max = 20_000): SubmitTracker {
  const at = new Map<string, number>()
  return {
    submitted(hash) {
      at.set(toHex(hash), now())
      if (at.size > max) at.delete(at.keys().next().value!)
    },
    committed(txs) {
      if (at.size === 0) return
      const t = now()
      for (const tx of txs) {
        const key = toHex(tx.hash)
        const since = at.get(key)
        if (since === undefined) continue
        at.delete(key)
        m.submitToCommit.observe((t - since) / 1000)
      }
    },
  }
}
