import type { SignatureCheck } from '@cityledger/core'
import { Rng } from '@cityledger/core/testing'
import { maxFaulty } from '../config.ts'
import type { JournalEntry } from '../journal.ts'
import type { Replica } from '../replica/replica.ts'
import type { Input, Output } from '../replica/types.ts'
import type { Byzantine } from './byzantine.ts'
import { type CheckedNode, OutputChecks } from './checks.ts'
import { type SimKey, simCrypto } from './crypto.ts'
import { SimNetwork } from './network.ts'
import { type FaultCast, castFaults } from './plan.ts'
import { NODE_LIMITS, PROFILES, REPLICA_DEFAULTS, type SimProfile } from './profile.ts'
import { EventQueue } from './queue.ts'
import {
  type FaultKind,
  type SimOptions,
  type Violation,
  type ViolationKind,
  livenessBound,
} from './types.ts'

/** What the event queue holds: every step of a run is one of these, handled at its time. */
export type Event =
  | { k: 'deliver'; to: number; from: number | 'adversary'; bytes: Uint8Array }
  | { k: 'input'; node: number; inc: number; input: Input }
  | { k: 'timer'; node: number; inc: number; timer: 'progress' | 'viewChange' | 'retransmit'; token: number }
  | { k: 'crash'; node: number; loseTail: boolean; forever?: boolean }
  | { k: 'restart'; node: number }
  | { k: 'garbage' }
  | { k: 'replay' }
  | { k: 'lie'; node: number }
  | { k: 'propose'; node: number; inc: number }
  | { k: 'heal' }

export interface StoredBlock {
  digest: Uint8Array
  block: Uint8Array
  certificate: Extract<Output, { type: 'commit' }>['certificate']
}

/** One simulated node: its replica (while up), its journal and its block store (which survive crashes). */
export interface SimNode {
  id: number
  validator: number
  honest: boolean
  byz?: Byzantine
  replica?: Replica
  up: boolean
  /** Crashed for good: never restarted, not expected to be live. */
  downForever: boolean
  /** Crash for good once the node has committed this height. */
  crashAtHeight?: number
  inc: number
  durable: JournalEntry[]
  pending: JournalEntry[]
  store: StoredBlock[]
  stateDigest: Uint8Array
  execAt: number
  syncedTo: number
  lastCommitAt: number
  /** Node profile: proposals wanted (height -> view) and validations waiting for their parent. */
  wanted: Map<number, number>
  validations: Extract<Output, { type: 'validate' }>[]
}

/** The options with their defaults filled in (those without a default stay optional). */
export type ResolvedOptions = Required<
  Omit<
    SimOptions,
    | 'crypto'
    | 'bug'
    | 'byzantine'
    | 'faults'
    | 'crashes'
    | 'byzantineSpec'
    | 'downForever'
    | 'links'
    | 'blockBytes'
    | 'maxInFlight'
    | 'maxBackoffExponent'
    | 'profile'
    | 'traceEvents'
  >
> &
  SimOptions

export const CHAIN = 'sim-chain'

/**
 * The state of one run, shared by its parts (fault scheduling in faults.ts, the nodes in nodes.ts, the
 * end-of-run checks in outcome.ts). Two random streams: `rng` for the scenario and the nodes, `net` (forked
 * from it first) for the network and the adversary; the order of draws on each is part of a seed's outcome.
 */
export class SimWorld {
  readonly o: ResolvedOptions
  readonly profile: SimProfile
  readonly rng: Rng
  readonly net: Rng
  readonly q = new EventQueue<Event>()
  readonly nodes: SimNode[] = []
  readonly keys: SimKey[]
  readonly verify: (c: SignatureCheck) => boolean
  readonly cast: FaultCast
  readonly faults: Set<FaultKind>
  readonly network: SimNetwork
  /** Set once the faults are scheduled (describeScenario needs the drawn links). */
  scenario!: string
  now = 0
  steps = 0
  readonly healAt: number
  readonly violations: Violation[] = []
  readonly checks: OutputChecks
  readonly counts: Record<string, number> = {}
  readonly rejects: Record<string, number> = {}
  /** Messages sent, for the replay fault (at most 256, replaced at random once full). */
  readonly replayBuffer: { bytes: Uint8Array; from: number }[] = []
  viewChanges = 0
  maxView = 0
  heightAtHeal = -1
  livenessMs?: number
  done = false
  maxJournal = 0
  maxMessage = 0
  nonce = 0
  /** FNV-1a over the handled events, with `traceEvents` (0x811c9dc5 is the FNV offset basis). */
  eventHash = 0x811c9dc5
  /** Highest height any replica committed: the highest height a certificate proves. */
  maxCommitted = 0
  readonly livenessBoundMs: number
  readonly retransmitMs: number
  readonly f: number

  constructor(opts: SimOptions) {
    this.profile = PROFILES[opts.profile ?? 'sim']
    const K = opts.checkpointInterval ?? this.profile.checkpointInterval
    this.o = {
      faultPhaseMs: 1500,
      heightsAfterHeal: 2 * K + 1,
      checkpointInterval: K,
      windowSize: opts.windowSize ?? (opts.checkpointInterval ? 4 * K : this.profile.windowSize),
      viewTimeoutMs: this.profile.viewTimeoutMs,
      livenessBoundMs: 0,
      maxSteps: 300_000,
      stopOnViolation: true,
      allFaults: false,
      allowOverFaulty: false,
      maxBlockBytes: NODE_LIMITS.maxBlockBytes,
      frameBytes: NODE_LIMITS.consensusFrameBytes,
      ...opts,
    }
    this.f = maxFaulty(opts.n)
    const exponent =
      opts.maxBackoffExponent ?? this.profile.maxBackoffExponent ?? REPLICA_DEFAULTS.maxBackoffExponent
    this.livenessBoundMs = opts.livenessBoundMs ?? livenessBound(opts.n, this.o.viewTimeoutMs, exponent)
    this.retransmitMs = Math.max(1, Math.floor(this.o.viewTimeoutMs / (this.profile.retransmitDivisor ?? 4)))
    this.rng = new Rng(opts.seed)
    this.net = this.rng.fork()
    this.network = new SimNetwork({
      rng: this.net,
      frameBytes: this.o.frameBytes,
      now: () => this.now,
      count: (k) => this.count(k),
      deliver: (time, from, to, bytes) => this.q.push(time, { k: 'deliver', to, from, bytes }),
    })
    this.healAt = this.o.faultPhaseMs
    this.cast = castFaults(this.rng, this.o, this.f)
    this.faults = this.cast.faults
    const crypto = opts.crypto ?? simCrypto(opts.n)
    this.keys = crypto.keys
    this.verify = crypto.verify
    this.checks = new OutputChecks({
      chainId: CHAIN,
      validators: this.keys.map((k) => k.publicKey),
      verify: this.verify,
      retransmitMs: this.retransmitMs,
      scenario: () => this.scenario,
      report: (kind, message) => this.violation(kind, message),
      count: (k) => this.count(k),
    })
  }

  count(kind: string, by = 1): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + by
  }

  violation(kind: ViolationKind, message: string): void {
    this.violations.push({
      kind,
      message: `seed ${this.o.seed}: ${message}`,
      timeMs: this.now,
      step: this.steps,
    })
  }

  checked(node: SimNode): CheckedNode {
    return { id: node.id, validator: node.validator, honest: node.honest, stored: node.store.length }
  }
}
