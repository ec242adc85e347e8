import type { Tx } from '../codec/tx.ts'
import type { SignatureVerifier } from '../crypto/verifier.ts'
import type { CityError } from '../errors/index.ts'
import type { HashLike } from './hashSet.ts'
import type { VerifiedCache } from './verifiedCache.ts'

/** Capacity limits. Every one of them yields an error to the caller when hit, never a silent drop. */
export interface MempoolLimits {
  /** Transactions held at once (pending plus being admitted). */
  maxTxs: number
  /** Sum of envelope sizes held at once, bytes. */
  maxBytes: number
  /** One envelope, bytes (checked before decoding). At most `LIMITS.maxTxBytes` is useful. */
  maxTxBytes: number
  /**
   * How far ahead of its committed nonce a signer may queue: nonces up to committed + maxPerSigner.
   * Beyond it: `MEMPOOL_FULL` when the signer already holds that many (back-pressure), else `NONCE_GAP`.
   */
  maxPerSigner: number
  /**
   * Blocks a pending tx may wait behind a missing nonce of its signer before it is dropped (reason
   * `gap`); default `GAP_WAIT_BLOCKS` (20). Txs that arrive slightly out of order wait; stuck ones leave.
   */
  maxGapWaitBlocks?: number
}

/**
 * What the mempool needs from the node. Everything is injected, nothing is global.
 *
 * @example
 * const mempool = createMempool({
 *   chainId: 'seoul-1',
 *   verifier,
 *   committedNonce: (signer) => state.nonceOf(signer),
 *   check: (tx) => runtime.check(tx),
 *   height: () => chain.height,
 *   limits: { maxTxs: 50_000, maxBytes: 64 << 20, maxTxBytes: LIMITS.maxTxBytes, maxPerSigner: 64 },
 *   verifiedCache,
 * })
 */
export interface MempoolOptions {
  chainId: string
  /** Checks signatures in batches (a worker pool on the hot path). */
  verifier: SignatureVerifier
  /** The last nonce of `signer` in committed state (0 when it never sent a transaction). */
  committedNonce(signer: Uint8Array): number
  /**
   * Service-level admission check (authorization, argument schema) against committed state. Throws a
   * CityError to refuse; runs after the signature passed, and again on every `update`.
   */
  check?(tx: Tx): void
  /** Height of the last committed block. A tx with `expiry` (non-zero) at or below it has expired. */
  height(): number
  limits: MempoolLimits
  /** The node's shared "verified once" cache; a private one is created when absent. */
  verifiedCache?: VerifiedCache
  /** Largest batch handed to `verifier.verifyBatch` (default 256). */
  maxSignatureBatch?: number
  /** Hashes of committed transactions remembered for duplicate detection (default 100,000). */
  recentCapacity?: number
}

/** One item of `addMany`: the hash when admitted, the error otherwise. */
export type AddResult = { ok: true; hash: Uint8Array } | { ok: false; error: CityError }

/** Limits for one block's batch. */
export interface ReapLimits {
  maxTxs: number
  /** Sum of envelope sizes, bytes (the block's own framing is the caller's margin). */
  maxBytes: number
}

/**
 * Why a pending transaction left the pool in `update`: included, its nonce used by another tx, expired,
 * failed the re-check, or waited too long behind a missing nonce (`gap`).
 */
export type RemovalReason = 'committed' | 'nonce' | 'expired' | 'check' | 'gap'

/** What `update` needs to know about the block just committed (call it after the store commit). */
export interface MempoolUpdate {
  /** The transactions of the block just committed, as Txs or as their 32-byte hashes. */
  committed: readonly (Tx | Uint8Array)[]
  /** Height of that block. */
  height: number
}

/** What `update` removed, by reason, plus the codes the re-check failed with (for metrics). */
export interface UpdateResult {
  removed: Record<RemovalReason, number>
  /** Pending transactions the service check ran on again. */
  rechecked: number
  /** Re-check failures by error code. */
  checkFailures: Record<string, number>
}

/** Counters since creation, for metrics. */
export interface MempoolStats {
  /** Pending transactions and their bytes. */
  txs: number
  bytes: number
  /** Transactions whose signature is being checked. */
  admitting: number
  /** Transactions admitted since creation. */
  added: number
  /** Refusals of `add` by error code. */
  rejected: Record<string, number>
  /** Removals by `update`, by reason. */
  removed: Record<RemovalReason, number>
  signatures: {
    /** Calls to `verifier.verifyBatch`. */
    batches: number
    /** Signatures handed to the verifier. */
    checked: number
    /** Signatures skipped because the verified cache already held the exact bytes. */
    cacheHits: number
  }
  /** Exceptions thrown by `onAdded` listeners (caught so they cannot fail an admission). */
  listenerErrors: number
}

/**
 * Pending transactions of one node: admission (limits, strict decoding, nonces, micro-batched
 * signature checks, service check), a fair batch per block, and clean-up after each commit.
 * Single-threaded; all methods except `add`/`addMany` are synchronous.
 */
export interface Mempool {
  /** Admits the envelope or rejects with a CityError whose code says why. */
  add(bytes: Uint8Array): Promise<{ hash: Uint8Array }>
  /** Admits a list (a gossip batch); one result per item, in order. Signatures go out in shared batches. */
  addMany(list: readonly Uint8Array[]): Promise<AddResult[]>
  /**
   * A batch for the next block: per signer the contiguous run of nonces from committed + 1, taken
   * round-robin across signers (each round in order of arrival), within the limits. Does not remove
   * anything: `update` does after the commit. The same pool state always gives the same batch.
   */
  reap(limits: ReapLimits): Tx[]
  /** After a commit: drops included, stale and expired transactions, re-checks the rest (no signatures). */
  update(update: MempoolUpdate): UpdateResult
  /** Pending transactions (admission finished). */
  size(): number
  /** Pending transactions plus those being admitted (their signatures in flight): what holds a slot. */
  held(): number
  /** Sum of the envelope sizes of pending transactions. */
  bytes(): number
  has(hash: HashLike): boolean
  get(hash: HashLike): Tx | undefined
  stats(): MempoolStats
  /** Called with each newly admitted transaction (e.g. to gossip it). Returns an unsubscribe function. */
  onAdded(listener: (tx: Tx) => void): () => void
  /** The verified-signature cache in use (the shared one when given). */
  readonly verifiedCache: VerifiedCache
}
