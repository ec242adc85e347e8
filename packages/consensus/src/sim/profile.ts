import { consensusMessageLimit } from '@cityledger/core'

/**
 * The node's real limits, as `packages/node` sets them (`DEFAULT_CONSENSUS` in
 * `packages/node/src/config/genesis.ts`, the p2p limits in `packages/node/src/node/createNode.ts`).
 * The consensus package cannot import the node; `test/sim-liveness-frame.test.ts` checks that these
 * numbers still match it.
 */
export const NODE_LIMITS = {
  /** Genesis default `consensus.maxBlockBytes`: the largest block a proposer builds. */
  maxBlockBytes: 8 * 1024 * 1024,
  /**
   * p2p frame limit of the consensus protocol and the replica's `maxMessageBytes` (createNode passes
   * `consensusMessageLimit(maxBlockBytes)` to both): 12 MiB.
   */
  consensusFrameBytes: consensusMessageLimit(8 * 1024 * 1024),
  /** Genesis default `consensus.blockIntervalMs`: how long a primary batches txs before proposing. */
  blockIntervalMs: 200,
} as const

/** Replica and node parameters of a simulation. */
export interface SimProfile {
  checkpointInterval: number
  windowSize: number
  /** Undefined: the replica's default (L), as the node leaves it. */
  maxInFlight?: number
  viewTimeoutMs: number
  /** Undefined: the replica's default (6). */
  maxBackoffExponent?: number
  /** Retransmission period = timeout / this, passed to the replica; undefined: the replica's default (timeout / 4). */
  retransmitDivisor?: number
  /**
   * The node builds a block only on top of its head (a block names its parent's state root) and
   * validates only proposals whose parent is its head (`ConsensusDriver`): one height in flight.
   */
  proposeOnHead: boolean
}

/**
 * - sim: small and fast (K=5, L=20, 2 heights in flight, 300 ms timeouts, backoff capped at 2^4), the
 *   default of the sweeps;
 * - node: what `createNode` passes with the genesis defaults (K=16, L=64, 3 s timeouts, the replica's
 *   defaults for the rest: L in flight, backoff cap 2^6, retransmission every timeout/4) and the
 *   driver's pacing (propose and validate on top of the head only, after `blockIntervalMs`).
 */
export const PROFILES = {
  sim: {
    checkpointInterval: 5,
    windowSize: 20,
    maxInFlight: 2,
    viewTimeoutMs: 300,
    maxBackoffExponent: 4,
    retransmitDivisor: 3,
    proposeOnHead: false,
  },
  node: {
    checkpointInterval: 16,
    windowSize: 64,
    viewTimeoutMs: 3000,
    proposeOnHead: true,
  },
} as const satisfies Record<string, SimProfile>

export type ProfileName = keyof typeof PROFILES

/** Replica defaults the node relies on (see `resolveConfig`). */
export const REPLICA_DEFAULTS = { maxBackoffExponent: 6 } as const
