import type { SignatureCheck } from '@cityledger/core'
import { ZERO_HASH, consensusMessageLimit, sha256 } from '@cityledger/core'
import { epochChainId } from './epochs.ts'
import { decodeMessage } from './messages/codec.ts'
import type { ConsensusMessage } from './messages/types.ts'
import { maxFaulty, quorumSize } from './quorum.ts'

/**
 * Everything a replica is handed. It never reaches for a network, a disk or a clock: signing and
 * verifying are injected functions, time comes only through timer inputs.
 */
export interface ReplicaConfig {
  /** The chain id; an epoch's replica signs with `epochChainId(chainId, epoch)` (the chain id itself in epoch 0). */
  chainId: string
  /** The epoch this replica runs (validator-set reconfiguration, epochs.ts). Default 0. */
  epoch?: number
  /**
   * The height the epoch starts after (0 for epoch 0): a multiple of K. Its checkpoint (with digest
   * `genesisDigest`, the executed state of that height) is this replica's genesis checkpoint, and nothing at
   * or below it is ever proposed, voted or committed. Default 0.
   */
  baseHeight?: number
  /**
   * The last height of the epoch, when known at start (else given later by an `epochEnd` input): nothing
   * above it is proposed, prepared, committed or filled with nulls by this replica.
   */
  lastHeight?: number
  /** Validator public keys in a fixed order shared by all replicas; primary(view) = validators[view mod n]. */
  validators: Uint8Array[]
  /** This replica's public key; must be one of `validators`. */
  publicKey: Uint8Array
  /** Signs a complete signing message (domain prefix included) with this replica's key. */
  sign: (message: Uint8Array) => Uint8Array
  /** Synchronous signature check (the node passes a native verifier's `verify`). */
  verify: (check: SignatureCheck) => boolean
  /** Digest of an opaque block (the node passes `bytes => decodeBlock(bytes).hash`); may throw on garbage. Default SHA-256. */
  blockDigest?: (block: Uint8Array) => Uint8Array
  /** K: a checkpoint every K heights. Default 10. */
  checkpointInterval?: number
  /** L: heights accepted above the stable checkpoint (watermarks h..h+L). A multiple of K, at least 2K. Default 4K. */
  windowSize?: number
  /** Heights a primary keeps proposed but not yet committed. Default L. */
  maxInFlight?: number
  /** Base progress/view-change timeout in ms; doubled on every view change without progress. Default 2000. */
  viewTimeoutMs?: number
  /** Cap on the doubling: the longest timeout is viewTimeoutMs * 2^maxBackoffExponent. Default 6. */
  maxBackoffExponent?: number
  /** Period of retransmissions and catch-up requests, ms. Default viewTimeoutMs / 4. */
  retransmitMs?: number
  /**
   * For nodes that do not propose empty blocks while idle: the longest time, ms, the primary's node waits
   * without txs before it proposes an (empty) block. While this replica's node reports no pending work
   * (`pending` input), its progress timer allows this much more than the view timeout. Default 0: one
   * timeout whatever the node reports (an empty block about every second keeps the timer short). At
   * most 86,400,000 (one day).
   */
  heartbeatMs?: number
  /**
   * Largest consensus message accepted, bytes. Default `consensusMessageLimit()` (for LIMITS.maxBlockBytes);
   * a node passes `consensusMessageLimit(genesis maxBlockBytes)`, the same number as its p2p frame limit.
   */
  maxMessageBytes?: number
  /** State digest of the genesis checkpoint (height `baseHeight`, 0 by default). Default 32 zero bytes. */
  genesisDigest?: Uint8Array
  /**
   * How received bytes become a message. Default: the codec's strict `decodeMessage`. The simulator
   * passes a memoised one (one decode per bytes object, shared by its replicas); a replacement must give
   * exactly what `decodeMessage(bytes, { maxBytes })` gives, errors included, and a result the replica
   * does not modify.
   */
  decodeMessage?: (bytes: Uint8Array, maxBytes: number) => ConsensusMessage
  /**
   * Deliberate bugs, for tests that prove the simulator finds safety violations. Never set in production.
   * - quorumDelta: added to every quorum size (-1 makes quorums one vote too small);
   * - forgetVotesOnRestart: restores only view and checkpoint from the journal, not what was signed;
   * - newViewIgnoresPrepared: NEW-VIEW re-proposes null blocks even where a block was prepared.
   */
  faultInjection?: { quorumDelta?: number; forgetVotesOnRestart?: boolean; newViewIgnoresPrepared?: boolean }
}

/** The config with defaults applied and derived quorum sizes. */
export interface ResolvedConfig extends Required<Omit<ReplicaConfig, 'faultInjection' | 'lastHeight'>> {
  faultInjection: NonNullable<ReplicaConfig['faultInjection']>
  /** The chain id as given (`chainId` is the epoch's: `epochChainId(baseChainId, epoch)`). */
  baseChainId: string
  lastHeight?: number
  n: number
  f: number
  /** Smallest set of validators any two of which share an honest one: floor(2n/3) + 1 (2f+1 when n = 3f+1). */
  quorum: number
  /** f + 1: a set that contains at least one honest validator. */
  weak: number
  index: number
  validatorHex: string[]
  indexOf: Map<string, number>
}

export { maxFaulty, quorumSize }

export const NULL_DIGEST: Uint8Array = ZERO_HASH

export function resolveConfig(c: ReplicaConfig): ResolvedConfig {
  const n = c.validators.length
  if (n < 1) throw new TypeError('validators: at least one validator is required')
  const validatorHex = c.validators.map((v) => Buffer.from(v).toString('hex'))
  if (new Set(validatorHex).size !== n) throw new TypeError('validators: duplicate public key')
  const indexOf = new Map(validatorHex.map((h, i) => [h, i]))
  const index = indexOf.get(Buffer.from(c.publicKey).toString('hex'))
  if (index === undefined) throw new TypeError('publicKey: not one of validators')
  const K = c.checkpointInterval ?? 10
  const L = c.windowSize ?? 4 * K
  if (!Number.isSafeInteger(K) || K < 1)
    throw new TypeError('checkpointInterval: expected a positive integer')
  if (!Number.isSafeInteger(L) || L < 2 * K || L % K !== 0)
    throw new TypeError('windowSize: expected a multiple of checkpointInterval, at least twice it')
  const epoch = c.epoch ?? 0
  const baseHeight = c.baseHeight ?? 0
  if (!Number.isSafeInteger(baseHeight) || baseHeight < 0 || baseHeight % K !== 0)
    throw new TypeError('baseHeight: expected a multiple of checkpointInterval, >= 0')
  if (epoch === 0 && baseHeight !== 0) throw new TypeError('baseHeight: epoch 0 starts at height 0')
  if (c.lastHeight !== undefined && (!Number.isSafeInteger(c.lastHeight) || c.lastHeight <= baseHeight))
    throw new TypeError('lastHeight: expected an integer above baseHeight')
  const timeout = c.viewTimeoutMs ?? 2000
  const heartbeat = c.heartbeatMs ?? 0
  // At most a day: the progress timer (heartbeat + backed-off timeout) must stay a valid timer delay.
  if (!Number.isSafeInteger(heartbeat) || heartbeat < 0 || heartbeat > 86_400_000)
    throw new TypeError('heartbeatMs: expected an integer from 0 to 86400000 (one day)')
  const bug = c.faultInjection ?? {}
  return {
    chainId: epochChainId(c.chainId, epoch),
    baseChainId: c.chainId,
    epoch,
    baseHeight,
    ...(c.lastHeight !== undefined ? { lastHeight: c.lastHeight } : {}),
    validators: c.validators.map((v) => Uint8Array.from(v)),
    publicKey: Uint8Array.from(c.publicKey),
    sign: c.sign,
    verify: c.verify,
    blockDigest: c.blockDigest ?? ((b) => sha256(b)),
    checkpointInterval: K,
    windowSize: L,
    maxInFlight: c.maxInFlight ?? L,
    viewTimeoutMs: timeout,
    maxBackoffExponent: c.maxBackoffExponent ?? 6,
    retransmitMs: c.retransmitMs ?? Math.max(1, Math.floor(timeout / 4)),
    heartbeatMs: heartbeat,
    maxMessageBytes: c.maxMessageBytes ?? consensusMessageLimit(),
    genesisDigest: c.genesisDigest ?? NULL_DIGEST,
    decodeMessage: c.decodeMessage ?? ((bytes, maxBytes) => decodeMessage(bytes, { maxBytes })),
    faultInjection: bug,
    n,
    f: maxFaulty(n),
    quorum: quorumSize(n) + (bug.quorumDelta ?? 0),
    weak: maxFaulty(n) + 1,
    index,
    validatorHex,
    indexOf,
  }
}
