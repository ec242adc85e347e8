import type { SignatureCheck } from '@cityledger/core'
import { type ReplicaConfig, maxFaulty } from '../config.ts'
import type { Replica } from '../replica/replica.ts'
import type { ByzantineBehavior } from './byzantine.ts'
import type { SimKey } from './crypto.ts'
import type { ProfileName } from './profile.ts'

/**
 * Every fault the simulator can inject. Network faults stop when the network heals; Byzantine replicas
 * never stop; replicas crashed for good never come back.
 */
export const FAULT_KINDS = [
  'loss',
  'delay',
  'reorder',
  'duplicate',
  'partition',
  'linkFault',
  'crash',
  'crashLoseTail',
  'crashForever',
  'equivocate',
  'conflictingVotes',
  'invalidBlocks',
  'silent',
  'lyingViewChange',
  'lyingNewView',
  'lyingStatus',
  'replay',
  'garbage',
  'twins',
  'bigBlocks',
] as const
export type FaultKind = (typeof FAULT_KINDS)[number]

/** The fault kinds played by Byzantine validators (each one is also a behavior of `Byzantine`). */
export const BYZANTINE_KINDS = [
  'equivocate',
  'conflictingVotes',
  'invalidBlocks',
  'silent',
  'lyingViewChange',
  'lyingNewView',
  'lyingStatus',
] as const satisfies readonly (FaultKind & ByzantineBehavior)[]

/** One link that fails during the faulty period: down (loss 1) or lossy. */
export interface LinkFault {
  a: number
  b: number
  fromMs: number
  toMs: number
  /** Probability that a message on the link is dropped; 1 = link down. */
  loss: number
}

/** A replica crashed for good: at a time, or when its node has committed a height (whichever is given). */
export interface PermanentCrash {
  validator: number
  atMs?: number
  atHeight?: number
}

export interface SimOptions {
  seed: number
  /** Validators (n = 3f+1 is the interesting case: 4, 7, 10...). */
  n: number
  /** Replica and node parameters (`PROFILES`): 'sim' (default, fast) or 'node' (the node's defaults). */
  profile?: ProfileName
  /** Fault kinds that may be injected (each run picks a random subset and intensity from the seed). Default: all. */
  faults?: readonly FaultKind[]
  /** Inject every enabled kind rather than a random subset. */
  allFaults?: boolean
  /** Byzantine validators (Twins counts as one); default: random 1..f when a Byzantine kind is enabled. Capped at f unless `allowOverFaulty`. */
  byzantine?: number
  /**
   * Explicit Byzantine validators and what they do (scenario tests); replaces the random choice.
   * `silentTo`: whom a silent one ignores (empty: it withholds its pre-prepares at some heights).
   */
  byzantineSpec?: { validator: number; behaviors: ByzantineBehavior[]; silentTo?: number[] }[]
  /** Explicit replicas crashed for good (scenario tests), in addition to those `crashForever` draws. */
  downForever?: PermanentCrash[]
  /** Explicit single-link faults (scenario tests), in addition to those `linkFault` draws. */
  links?: LinkFault[]
  /** Size of every block in bytes (scenario tests); `bigBlocks` draws sizes up to `maxBlockBytes`. */
  blockBytes?: number
  /** Largest block a proposer builds. Default: the node's genesis default (8 MiB). */
  maxBlockBytes?: number
  /** Largest consensus message the network carries (p2p refuses larger ones). Default: the node's (12 MiB). */
  frameBytes?: number
  /** Lets tests exceed f on purpose. */
  allowOverFaulty?: boolean
  /** Length of the faulty period in simulated ms; the network heals after it. Default 1500. */
  faultPhaseMs?: number
  /** Heights every live honest replica must commit after the heal for the run to end. Default 2K + 1. */
  heightsAfterHeal?: number
  checkpointInterval?: number
  windowSize?: number
  maxInFlight?: number
  viewTimeoutMs?: number
  maxBackoffExponent?: number
  /** Bound on the time from heal to liveness, ms. Default: see `livenessBound`. */
  livenessBoundMs?: number
  /** Safety net on simulated events. Default 300,000. */
  maxSteps?: number
  /** Deliberate replica bugs (to prove the checks can fail). */
  bug?: ReplicaConfig['faultInjection']
  /** Real keys instead of the fast simulated scheme. */
  crypto?: { keys: SimKey[]; verify: (c: SignatureCheck) => boolean }
  /** Crash events per enabled crash kind; default random 1..f+1. */
  crashes?: number
  /** Stop at the first violation (default true). */
  stopOnViolation?: boolean
  /**
   * Fold every handled event (time, kind, node, message length) into `SimResult.eventDigest`, so two
   * builds of the simulator can be shown to replay a seed event for event (`cli.ts --digests`).
   */
  traceEvents?: boolean
}

/**
 * - agreement: two honest replicas committed different blocks at one height (or would store different
 *   null fillers there);
 * - integrity: a height committed twice or out of order, or a block that fails validation;
 * - certificate: a committed block whose certificate `verifyCommitCertificate` refuses;
 * - equivocation: an honest replica signed two conflicting messages (caught by a peer);
 * - penalizedHonest: a peer penalised an honest replica for a message it sent;
 * - liveness: after the heal, not every live honest replica committed the required heights within the bound;
 * - sync: an honest replica asked its node to sync towards a height nobody has committed (a lie it believed);
 * - amplification: an honest replica answered a refused (penalised) message, or answered one peer's
 *   STATUS more than 3 times within a retransmission period;
 * - memory: a replica's collections outgrew their bounds; exception: a replica threw.
 */
export type ViolationKind =
  | 'agreement'
  | 'integrity'
  | 'certificate'
  | 'equivocation'
  | 'liveness'
  | 'sync'
  | 'amplification'
  | 'memory'
  | 'penalizedHonest'
  | 'exception'

export interface Violation {
  kind: ViolationKind
  message: string
  timeMs: number
  step: number
}

export interface SimResult {
  seed: number
  n: number
  f: number
  /** One line: profile, faults drawn, Byzantine validators, replicas down for good, link faults, block size. */
  scenario: string
  violations: Violation[]
  /** Lowest and highest committed height among live honest replicas at the end. */
  committedHeights: { min: number; max: number }
  /** View changes started by honest replicas (sum over replicas). */
  viewChanges: number
  /** Highest view reached by an honest replica. */
  maxView: number
  faultsInjected: Partial<Record<string, number>>
  byzantine: { validator: number; behaviors: string[] }[]
  /** Validators crashed for good. */
  downForever: number[]
  steps: number
  simTimeMs: number
  healAtMs: number
  /** Simulated ms from the heal until every live honest replica committed `heightsAfterHeal` more heights. */
  livenessMs?: number
  livenessBoundMs: number
  /** True when the step budget ran out before the run finished (not a violation, but reported). */
  incomplete: boolean
  rejects: Partial<Record<string, number>>
  maxJournal: number
  /** Largest message sent by an honest replica, bytes. */
  maxMessageBytes: number
  /** Per node (node order): hex SHA-256 chain over the digests it stored, in height order. */
  commitLogs: string[]
  /** With `traceEvents`: a 32-bit FNV-1a fold of the handled events (hex). */
  eventDigest?: string
  /** Each node's replica at the end (node order; Twins adds one node). */
  finalStatus: ({ node: number; honest: boolean; up: boolean; stored: number } & Partial<
    ReturnType<Replica['status']>
  >)[]
}

/**
 * Default liveness bound, from the heal: f+3 view changes, each at most two of the longest timeouts
 * (the progress timer, then the view-change timer: `viewTimeoutMs · 2^maxBackoffExponent` each), plus
 * 20 base timeouts for block sync and retransmission. With at most f faulty validators (Byzantine or
 * down for good) at most f consecutive primaries are faulty, so f+1 view changes reach a live one.
 */
export function livenessBound(n: number, viewTimeoutMs: number, maxBackoffExponent: number): number {
  return (maxFaulty(n) + 3) * 2 * viewTimeoutMs * 2 ** maxBackoffExponent + 20 * viewTimeoutMs
}
