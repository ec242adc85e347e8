import { type CommitCertificate, type SignatureCheck, toHex } from '@cityledger/core'
import { Rng } from '@cityledger/core/testing'
import { type ValidatorSchedule, genesisSchedule, verifyCertificateAt } from '../epochs.ts'
import type { JournalEntry } from '../journal.ts'
import type { Replica } from '../replica/replica.ts'
import type { Input, TimerId } from '../replica/types.ts'
import { type SimKey, simCrypto } from './crypto.ts'
import { EventQueue } from './queue.ts'

// The state of one reconfiguration run (reconfig.ts runs it, reconfigNodes.ts is the node side,
// reconfigAttack.ts the leavers turned Byzantine).

/** One validator-set change: put into the first block built at or after `atHeight` (like a governance tx). */
export interface PlannedChange {
  atHeight: number
  /** Key indexes of the new set, in order. */
  validators: number[]
}

export interface ReconfigOptions {
  seed: number
  /** Keys in the run; a node per key, validator indexes refer to them. */
  keys: number
  /** Key indexes of the genesis set. */
  genesis: number[]
  changes: PlannedChange[]
  /** K. Default 4. */
  checkpointInterval?: number
  /** L. Default 4K. */
  windowSize?: number
  /** Default 200 ms. */
  viewTimeoutMs?: number
  /** Message loss probability before the heal. Default 0.05. */
  loss?: number
  /** Time the network heals (no more loss); the liveness bound counts from the latest of it, the restarts and late starts. Default 1500. */
  healAtMs?: number
  /** A node crashes once it stored `atHeight` (or at `atMs`), and restarts `restartAfterMs` later. */
  crashes?: { node: number; atHeight?: number; atMs?: number; restartAfterMs: number; loseTail?: boolean }[]
  /** Nodes that start at `atMs` (an empty store: they catch up by block sync). */
  late?: { node: number; atMs: number }[]
  /** Nodes that turn Byzantine once they have left the validator set (before, they behave). */
  byzantineLeavers?: number[]
  /** Heights the final set must commit after its epoch starts for the run to end. Default 2K + 1. */
  heightsAfterLastChange?: number
  maxSteps?: number
  /** Deliberate driver bug, to prove the checks catch it: never feed `epochEnd`. */
  skipEpochEnd?: boolean
}

export interface ReconfigResult {
  seed: number
  violations: string[]
  /** Height stored per node at the end (node order). */
  stored: number[]
  /** The validator sets as executed: first height and key indexes. */
  epochs: { epoch: number; firstHeight: number; validators: number[] }[]
  /** Simulated ms from the heal until every live honest member of the final set committed the target. */
  livenessMs?: number
  livenessBoundMs: number
  targetHeight?: number
  /** Commit certificates checked with verifyCertificateAt. */
  certificatesChecked: number
  /** Per epoch, per key index: COMMIT votes the node broadcast (how much each validator took part). */
  commitVotes: Record<number, number>[]
  /** Per node: the epoch of its current replica at the end (-1: none, it follows by sync or left). */
  finalEpoch: number[]
  rejects: Record<string, number>
  steps: number
  simTimeMs: number
}

/** A replica instance of one epoch on one node; `rid` tells its events from any other's. */
export interface EpochRun {
  rid: number
  epoch: number
  replica: Replica
  validators: readonly Uint8Array[]
}

export interface Stored {
  digest: Uint8Array
  block: Uint8Array
  certificate: CommitCertificate
}

export interface ReconfigNode {
  id: number
  key: SimKey
  honest: boolean
  up: boolean
  started: boolean
  inc: number
  /** Committed blocks (index h-1) and the state digest after each height (index h, 0 = genesis). */
  store: Stored[]
  digests: Uint8Array[]
  /** The schedule as this node executed it. */
  schedule: ValidatorSchedule
  /** Height whose `executed` notice the replicas got: the node validates and builds only on top of it. */
  executed: number
  current?: EpochRun
  retired?: EpochRun
  journal: { epoch: number; durable: JournalEntry[]; pending: JournalEntry[] }
  wanted: { rid: number; height: number; view: number }[]
  validations: { rid: number; height: number; view: number; digest: Uint8Array; block: Uint8Array }[]
  syncedTo: number
  /** Last time a message of a later epoch made this node sync. */
  lastHintAt: number
  crashAtHeight?: { restartAfterMs: number; loseTail: boolean; height: number }
  /** Leaver turned Byzantine (after its node executed the end of its last epoch). */
  turned: boolean
  byzantineLeaver: boolean
  /** Messages seen while honest, for replays. */
  seen: Uint8Array[]
}

export type ReconfigEvent =
  | { k: 'deliver'; to: number; from: number; bytes: Uint8Array }
  | { k: 'timer'; node: number; rid: number; timer: TimerId; token: number }
  | { k: 'input'; node: number; rid: number; input: Input }
  | { k: 'exec'; node: number; inc: number; height: number }
  | { k: 'syncBlock'; node: number; inc: number; height: number; entry: Stored }
  | { k: 'crash'; node: number; loseTail: boolean; restartAfterMs: number }
  | { k: 'restart'; node: number }
  | { k: 'start'; node: number }
  | { k: 'poll'; node: number; inc: number }
  | { k: 'attack'; node: number }

export const RECONFIG_CHAIN = 'sim-epochs'

export class ReconfigWorld {
  readonly o: Required<Omit<ReconfigOptions, 'crashes' | 'late' | 'byzantineLeavers' | 'skipEpochEnd'>> &
    ReconfigOptions
  readonly rng: Rng
  readonly q = new EventQueue<ReconfigEvent>()
  readonly nodes: ReconfigNode[] = []
  readonly verify: (c: SignatureCheck) => boolean
  readonly keyIndex = new Map<string, number>()
  readonly violations: string[] = []
  readonly rejects: Record<string, number> = {}
  /** The schedule as the first honest node executed it; every other must agree. */
  schedule: ValidatorSchedule
  /** Digest per height, from the first honest commit. */
  readonly agreed = new Map<number, string>()
  nextRid = 1
  nonce = 0
  now = 0
  steps = 0
  certificatesChecked = 0
  readonly commitVotes: Record<number, number>[] = []
  /** Highest height stored by an honest node when the network healed (-1 before). */
  heightAtHeal = -1
  readonly healAt: number
  readonly retransmitMs: number

  constructor(o: ReconfigOptions) {
    const K = o.checkpointInterval ?? 4
    this.o = {
      checkpointInterval: K,
      windowSize: 4 * K,
      viewTimeoutMs: 200,
      loss: 0.05,
      healAtMs: 1500,
      heightsAfterLastChange: 2 * K + 1,
      maxSteps: 400_000,
      ...o,
    }
    this.rng = new Rng(o.seed)
    const crypto = simCrypto(o.keys)
    this.verify = crypto.verify
    crypto.keys.forEach((k, i) => this.keyIndex.set(toHex(k.publicKey), i))
    this.schedule = genesisSchedule(
      o.genesis.map((i) => crypto.keys[i]!.publicKey),
      K,
    )
    this.retransmitMs = Math.max(1, Math.floor(this.o.viewTimeoutMs / 4))
    const restarts = (o.crashes ?? []).map((c) => (c.atMs ?? 0) + c.restartAfterMs)
    this.healAt = Math.max(this.o.healAtMs, ...(o.late ?? []).map((l) => l.atMs), ...restarts)
    for (let i = 0; i < o.keys; i++) {
      this.nodes.push({
        id: i,
        key: crypto.keys[i]!,
        honest: !(o.byzantineLeavers ?? []).includes(i),
        byzantineLeaver: (o.byzantineLeavers ?? []).includes(i),
        up: false,
        started: false,
        inc: 0,
        store: [],
        digests: [new Uint8Array(32)],
        schedule: this.schedule,
        executed: 0,
        journal: { epoch: 0, durable: [], pending: [] },
        wanted: [],
        validations: [],
        syncedTo: 0,
        lastHintAt: Number.NEGATIVE_INFINITY,
        turned: false,
        seen: [],
      })
    }
  }

  violation(message: string): void {
    this.violations.push(`seed ${this.o.seed}, t=${this.now}: ${message}`)
  }

  keysOf(validators: readonly Uint8Array[]): number[] {
    return validators.map((v) => this.keyIndex.get(toHex(v)) ?? -1)
  }

  /** Agreement and certificates, at every block an honest node stores. */
  checkStored(node: ReconfigNode, height: number, s: Stored): void {
    if (!node.honest) return
    const hex = toHex(s.digest)
    const prev = this.agreed.get(height)
    if (prev === undefined) this.agreed.set(height, hex)
    else if (prev !== hex)
      this.violation(
        `agreement: node ${node.id} stored ${hex.slice(0, 8)} at ${height}, others ${prev.slice(0, 8)}`,
      )
    this.certificatesChecked++
    const v = verifyCertificateAt(s.certificate, this.schedule, RECONFIG_CHAIN, this.verify)
    if (!v.ok || s.certificate.height !== height)
      this.violation(`certificate: node ${node.id} height ${height}: ${v.ok ? 'wrong height' : v.code}`)
  }

  /** The schedule an honest node executed must be everyone's. */
  checkSchedule(node: ReconfigNode): void {
    if (!node.honest) return
    const mine = node.schedule.epochs
    const all = this.schedule.epochs
    const shared = Math.min(mine.length, all.length)
    for (let i = 0; i < shared; i++)
      if (
        mine[i]!.firstHeight !== all[i]!.firstHeight ||
        toHex(Buffer.concat(mine[i]!.validators)) !== toHex(Buffer.concat(all[i]!.validators))
      )
        this.violation(`agreement: node ${node.id} executed a different epoch ${i}`)
    if (mine.length > all.length) this.schedule = node.schedule
  }
}
