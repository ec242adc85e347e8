import { type SignatureCheck, equalBytes, sha256, toHex } from '@cityledger/core'
import { Rng } from '@cityledger/core/testing'
import { verifyCommitCertificate } from '../certificate.ts'
import { type ReplicaConfig, maxFaulty } from '../config.ts'
import { type JournalEntry, compactJournal } from '../journal.ts'
import { Replica } from '../replica/replica.ts'
import type { Input, Output } from '../replica/types.ts'
import { type SimBlock, encodeSimBlock, simValidate } from './blocks.ts'
import { Byzantine, type ByzantineBehavior, garbageFrom } from './byzantine.ts'
import { type SimKey, simCrypto } from './crypto.ts'
import { EventQueue } from './queue.ts'

/** Every fault the simulator can inject. Network faults stop when the network heals; Byzantine replicas never stop. */
export const FAULT_KINDS = [
  'loss',
  'delay',
  'reorder',
  'duplicate',
  'partition',
  'crash',
  'crashLoseTail',
  'equivocate',
  'conflictingVotes',
  'invalidBlocks',
  'replay',
  'garbage',
  'twins',
] as const
export type FaultKind = (typeof FAULT_KINDS)[number]

export interface SimOptions {
  seed: number
  /** Validators (n = 3f+1 is the interesting case: 4, 7, 10...). */
  n: number
  /** Fault kinds that may be injected (each run picks a random subset and intensity from the seed). Default: all. */
  faults?: readonly FaultKind[]
  /** Inject every enabled kind rather than a random subset. */
  allFaults?: boolean
  /** Byzantine validators (Twins counts as one); default: random 1..f when a Byzantine kind is enabled. Capped at f unless `allowOverFaulty`. */
  byzantine?: number
  /** Lets tests exceed f on purpose. */
  allowOverFaulty?: boolean
  /** Length of the faulty period in simulated ms; the network heals after it. Default 1500. */
  faultPhaseMs?: number
  /** Heights every honest replica must commit after the heal for the run to end. Default 2K + 1. */
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
}

/**
 * - agreement: two honest replicas committed different blocks at one height;
 * - integrity: a height committed twice or out of order, or a block that fails validation;
 * - certificate: a committed block whose certificate `verifyCommitCertificate` refuses;
 * - equivocation: an honest replica signed two conflicting messages (caught by a peer);
 * - penalizedHonest: a peer penalised an honest replica for a message it sent;
 * - liveness: after the heal, not every honest replica committed the required heights within the bound;
 * - memory: a replica's collections outgrew their bounds; exception: a replica threw.
 */
export type ViolationKind =
  | 'agreement'
  | 'integrity'
  | 'certificate'
  | 'equivocation'
  | 'liveness'
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
  violations: Violation[]
  /** Lowest and highest committed height among honest replicas at the end. */
  committedHeights: { min: number; max: number }
  /** View changes started by honest replicas (sum over replicas). */
  viewChanges: number
  /** Highest view reached by an honest replica. */
  maxView: number
  faultsInjected: Partial<Record<string, number>>
  byzantine: { validator: number; behaviors: string[] }[]
  steps: number
  simTimeMs: number
  healAtMs: number
  /** Simulated ms from the heal until every honest replica committed `heightsAfterHeal` more heights. */
  livenessMs?: number
  livenessBoundMs: number
  /** True when the step budget ran out before the run finished (not a violation, but reported). */
  incomplete: boolean
  rejects: Partial<Record<string, number>>
  maxJournal: number
  /** Each node's replica at the end (node order; Twins adds one node). */
  finalStatus: ({ node: number; honest: boolean; up: boolean; stored: number } & Partial<
    ReturnType<Replica['status']>
  >)[]
}

/** Default liveness bound: f+2 view changes at the longest timeout, plus slack for sync and retransmission. */
export function livenessBound(n: number, viewTimeoutMs: number, maxBackoffExponent: number): number {
  return (maxFaulty(n) + 3) * 2 * viewTimeoutMs * 2 ** maxBackoffExponent + 20 * viewTimeoutMs
}

type Event =
  | { k: 'deliver'; to: number; from: number | 'adversary'; bytes: Uint8Array }
  | { k: 'input'; node: number; inc: number; input: Input }
  | { k: 'timer'; node: number; inc: number; timer: 'progress' | 'viewChange' | 'retransmit'; token: number }
  | { k: 'crash'; node: number; loseTail: boolean }
  | { k: 'restart'; node: number }
  | { k: 'garbage' }
  | { k: 'replay' }
  | { k: 'heal' }

interface StoredBlock {
  digest: Uint8Array
  block: Uint8Array
  certificate: Extract<Output, { type: 'commit' }>['certificate']
}

interface SimNode {
  id: number
  validator: number
  honest: boolean
  byz?: Byzantine
  replica?: Replica
  up: boolean
  inc: number
  durable: JournalEntry[]
  pending: JournalEntry[]
  store: StoredBlock[]
  stateDigest: Uint8Array
  execAt: number
  syncedTo: number
}

const CHAIN = 'sim-chain'

/**
 * Runs one seeded scenario: n replicas, an in-memory network, a manual clock. Everything random comes
 * from `seed`, so a run replays identically from it. Safety properties are checked at every commit
 * output (agreement, integrity, certificates), memory every 64 steps, liveness after the heal.
 */
export function runSimulation(opts: SimOptions): SimResult {
  return new Simulation(opts).run()
}

class Simulation {
  private readonly o: Required<Omit<SimOptions, 'crypto' | 'bug' | 'byzantine' | 'faults' | 'crashes'>> &
    SimOptions
  private readonly rng: Rng
  private readonly net: Rng
  private readonly q = new EventQueue<Event>()
  private readonly nodes: SimNode[] = []
  private readonly keys: SimKey[]
  private readonly verify: (c: SignatureCheck) => boolean
  private readonly faults: Set<FaultKind>
  private now = 0
  private steps = 0
  private healed = false
  private readonly healAt: number
  private readonly violations: Violation[] = []
  private readonly committed = new Map<number, string>()
  private readonly counts: Record<string, number> = {}
  private readonly rejects: Record<string, number> = {}
  private readonly replayBuffer: { bytes: Uint8Array; from: number }[] = []
  private partitions: { from: number; to: number; side: Set<number> }[] = []
  private lossRate = 0
  private dupRate = 0
  private delayRate = 0
  private jitter = 0
  private viewChanges = 0
  private maxView = 0
  private heightAtHeal = -1
  private livenessMs?: number
  private done = false
  private maxJournal = 0
  private nonce = 0
  private readonly livenessBoundMs: number
  private readonly f: number

  constructor(opts: SimOptions) {
    const K = opts.checkpointInterval ?? 5
    this.o = {
      faultPhaseMs: 1500,
      heightsAfterHeal: 2 * K + 1,
      checkpointInterval: K,
      windowSize: opts.windowSize ?? 4 * K,
      maxInFlight: 2,
      viewTimeoutMs: 300,
      maxBackoffExponent: 4,
      livenessBoundMs: 0,
      maxSteps: 300_000,
      stopOnViolation: true,
      allFaults: false,
      allowOverFaulty: false,
      ...opts,
    }
    this.f = maxFaulty(opts.n)
    this.livenessBoundMs =
      opts.livenessBoundMs ?? livenessBound(opts.n, this.o.viewTimeoutMs, this.o.maxBackoffExponent)
    this.rng = new Rng(opts.seed)
    this.net = this.rng.fork()
    this.healAt = this.o.faultPhaseMs
    const enabled = opts.faults ?? FAULT_KINDS
    this.faults = new Set(this.o.allFaults ? enabled : enabled.filter(() => this.rng.chance(0.6)))
    const crypto = opts.crypto ?? simCrypto(opts.n)
    this.keys = crypto.keys
    this.verify = crypto.verify
    this.setup()
  }

  private count(kind: string, by = 1): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + by
  }

  private setup(): void {
    const n = this.o.n
    const byzKinds = (['equivocate', 'conflictingVotes', 'invalidBlocks'] as const).filter((k) =>
      this.faults.has(k),
    )
    const twins = this.faults.has('twins')
    const wanted = this.o.byzantine ?? (byzKinds.length || twins ? this.rng.range(1, Math.max(1, this.f)) : 0)
    const nByz = this.o.allowOverFaulty ? wanted : Math.min(wanted, this.f)
    const byzValidators = this.rng.shuffle([...Array(n).keys()]).slice(0, nByz)
    // A faulty primary is where equivocation and invalid proposals bite: make view 0's primary faulty often.
    if (nByz > 0 && !byzValidators.includes(0) && this.rng.chance(0.5)) byzValidators[0] = 0
    const twinValidator = twins && nByz > 0 ? byzValidators[0]! : -1
    for (let v = 0; v < n; v++) {
      const isByz = byzValidators.includes(v)
      const behaviors: ByzantineBehavior[] =
        v === twinValidator ? [] : isByz ? byzKinds.filter(() => this.rng.chance(0.7)) : []
      if (isByz && v !== twinValidator && behaviors.length === 0 && byzKinds.length)
        behaviors.push(this.rng.pick(byzKinds))
      this.addNode(v, !isByz, behaviors)
      if (v === twinValidator) {
        this.addNode(v, false, [])
        this.count('twins')
      }
    }
    // Network fault intensities for this run.
    if (this.faults.has('loss')) this.lossRate = this.rng.pick([0.02, 0.05, 0.1, 0.2, 0.3])
    if (this.faults.has('duplicate')) this.dupRate = this.rng.pick([0.02, 0.1, 0.3])
    if (this.faults.has('delay')) this.delayRate = this.rng.pick([0.02, 0.1, 0.3])
    if (this.faults.has('reorder')) this.jitter = this.rng.pick([5, 20, 60])
    if (this.faults.has('partition') || twins) {
      const count = this.rng.range(1, 3)
      for (let i = 0; i < count; i++) {
        const from = this.rng.int(this.healAt)
        const to = Math.min(this.healAt, from + this.rng.range(100, this.healAt))
        const side = new Set<number>()
        if (twins && i === 0) {
          // Twins: split the two instances of the shared key, each with part of the honest replicas.
          const tw = this.nodes.filter((x) => x.validator === twinValidator)
          side.add(tw[0]!.id)
          for (const x of this.nodes)
            if (x.validator !== twinValidator && this.rng.chance(0.5)) side.add(x.id)
        } else {
          for (const x of this.nodes) if (this.rng.chance(0.4)) side.add(x.id)
        }
        this.partitions.push({ from, to, side })
        this.count('partition')
      }
    }
    for (const kind of ['crash', 'crashLoseTail'] as const) {
      if (!this.faults.has(kind)) continue
      const crashes = this.o.crashes ?? this.rng.range(1, this.f + 1)
      for (let i = 0; i < crashes; i++) {
        const node = this.rng.pick(this.nodes)
        const at = this.rng.int(this.healAt)
        this.q.push(at, { k: 'crash', node: node.id, loseTail: kind === 'crashLoseTail' })
        this.q.push(Math.min(this.healAt, at + this.rng.range(50, this.healAt)), {
          k: 'restart',
          node: node.id,
        })
      }
    }
    if (this.faults.has('garbage'))
      for (let t = this.rng.int(50); t < this.healAt; t += this.rng.range(5, 80))
        this.q.push(t, { k: 'garbage' })
    if (this.faults.has('replay'))
      for (let t = this.rng.range(50, 100); t < this.healAt; t += this.rng.range(5, 80))
        this.q.push(t, { k: 'replay' })
    this.q.push(this.healAt, { k: 'heal' })
    for (const node of this.nodes) this.startReplica(node, 0)
  }

  private addNode(validator: number, honest: boolean, behaviors: ByzantineBehavior[]): void {
    const id = this.nodes.length
    const node: SimNode = {
      id,
      validator,
      honest,
      up: true,
      inc: 0,
      durable: [],
      pending: [],
      store: [],
      stateDigest: new Uint8Array(32),
      execAt: 0,
      syncedTo: 0,
    }
    if (behaviors.length) node.byz = new Byzantine(behaviors, this.keys[validator]!, this.rng.fork(), CHAIN)
    this.nodes.push(node)
  }

  private replicaConfig(validator: number): ReplicaConfig {
    const key = this.keys[validator]!
    return {
      chainId: CHAIN,
      validators: this.keys.map((k) => k.publicKey),
      publicKey: key.publicKey,
      sign: key.sign,
      verify: this.verify,
      checkpointInterval: this.o.checkpointInterval,
      windowSize: this.o.windowSize,
      maxInFlight: this.o.maxInFlight,
      viewTimeoutMs: this.o.viewTimeoutMs,
      maxBackoffExponent: this.o.maxBackoffExponent,
      retransmitMs: Math.floor(this.o.viewTimeoutMs / 3),
      ...(this.o.bug ? { faultInjection: this.o.bug } : {}),
    }
  }

  private startReplica(node: SimNode, at: number): void {
    node.replica = new Replica(this.replicaConfig(node.validator))
    node.up = true
    node.inc++
    node.syncedTo = node.store.length
    node.execAt = at
    const journal = node.durable.length ? [...node.durable] : undefined
    this.apply(
      node,
      node.replica.step({
        type: 'start',
        committedHeight: node.store.length,
        ...(journal ? { journal } : {}),
      }),
    )
  }

  run(): SimResult {
    const deadline = this.healAt + this.livenessBoundMs
    while (!this.done) {
      const e = this.q.pop()
      if (!e) break
      if (e.time > deadline) {
        this.now = deadline
        this.checkLivenessAtDeadline()
        break
      }
      this.now = e.time
      if (++this.steps > this.o.maxSteps) break
      try {
        this.handle(e.item)
      } catch (err) {
        this.violation('exception', (err as Error).stack ?? String(err))
      }
      if ((this.steps & 63) === 0) this.checkMemory()
      if (this.violations.length && this.o.stopOnViolation) break
    }
    const honest = this.nodes.filter((x) => x.honest)
    const heights = honest.map((x) => x.store.length)
    return {
      seed: this.o.seed,
      n: this.o.n,
      f: this.f,
      violations: this.violations,
      committedHeights: { min: Math.min(...heights), max: Math.max(...heights) },
      viewChanges: this.viewChanges,
      maxView: this.maxView,
      faultsInjected: { ...this.counts },
      byzantine: this.nodes
        .filter((x) => !x.honest)
        .map((x) => ({ validator: x.validator, behaviors: x.byz ? [...x.byz.behaviors] : ['twin'] })),
      steps: this.steps,
      simTimeMs: this.now,
      healAtMs: this.healAt,
      ...(this.livenessMs !== undefined ? { livenessMs: this.livenessMs } : {}),
      livenessBoundMs: this.livenessBoundMs,
      incomplete: !this.done && this.violations.length === 0 && this.steps > this.o.maxSteps,
      rejects: { ...this.rejects },
      maxJournal: this.maxJournal,
      finalStatus: this.nodes.map((x) => ({
        node: x.id,
        honest: x.honest,
        up: x.up,
        stored: x.store.length,
        ...(x.replica?.status() ?? {}),
      })),
    }
  }

  private violation(kind: ViolationKind, message: string): void {
    this.violations.push({
      kind,
      message: `seed ${this.o.seed}: ${message}`,
      timeMs: this.now,
      step: this.steps,
    })
  }

  private handle(e: Event): void {
    switch (e.k) {
      case 'deliver': {
        const node = this.nodes[e.to]!
        if (!node.up || !node.replica) return
        node.byz?.observe(e.bytes)
        const from = e.from === 'adversary' ? 'adversary' : String(e.from)
        this.apply(node, node.replica.step({ type: 'message', bytes: e.bytes, from }))
        return
      }
      case 'input':
      case 'timer': {
        const node = this.nodes[e.node]!
        if (!node.up || !node.replica || node.inc !== e.inc) return
        const input: Input = e.k === 'timer' ? { type: 'timeout', timer: e.timer, token: e.token } : e.input
        this.apply(node, node.replica.step(input))
        return
      }
      case 'crash': {
        const node = this.nodes[e.node]!
        if (!node.up) return
        node.up = false
        node.replica = undefined
        if (e.loseTail) {
          this.count('crashLoseTail')
          this.count('journalEntriesLost', node.pending.length)
        } else {
          this.count('crash')
          node.durable.push(...node.pending)
        }
        node.pending = []
        return
      }
      case 'restart': {
        const node = this.nodes[e.node]!
        if (node.up) return
        this.count('restart')
        this.startReplica(node, this.now)
        return
      }
      case 'garbage': {
        const to = this.net.int(this.nodes.length)
        const sample = this.replayBuffer.length ? this.net.pick(this.replayBuffer).bytes : new Uint8Array(0)
        this.count('garbage')
        this.q.push(this.now + 1, {
          k: 'deliver',
          to,
          from: 'adversary',
          bytes: garbageFrom(this.net, sample),
        })
        return
      }
      case 'replay': {
        if (!this.replayBuffer.length) return
        const m = this.net.pick(this.replayBuffer)
        this.count('replay')
        this.q.push(this.now + 1, {
          k: 'deliver',
          to: this.net.int(this.nodes.length),
          from: 'adversary',
          bytes: m.bytes,
        })
        return
      }
      case 'heal': {
        this.healed = true
        this.heightAtHeal = Math.max(0, ...this.nodes.filter((x) => x.honest).map((x) => x.store.length))
        for (const node of this.nodes) if (!node.up) this.startReplica(node, this.now)
        this.checkLiveness()
        return
      }
    }
  }

  // ------------------------------------------------------------- network

  private partitioned(a: number, b: number): boolean {
    if (this.healed) return false
    for (const p of this.partitions)
      if (this.now >= p.from && this.now < p.to && p.side.has(a) !== p.side.has(b)) return true
    return false
  }

  private deliver(from: SimNode, to: SimNode, bytes: Uint8Array): void {
    if (this.partitioned(from.id, to.id)) {
      this.count('partitionDrops')
      return
    }
    const faulty = !this.healed
    if (faulty && this.lossRate && this.net.chance(this.lossRate)) {
      this.count('loss')
      return
    }
    let delay = this.net.range(1, 10)
    if (faulty && this.jitter) {
      delay += this.net.int(this.jitter)
      this.count('reorder')
    }
    if (faulty && this.delayRate && this.net.chance(this.delayRate)) {
      delay += this.net.range(100, 800)
      this.count('delay')
    }
    this.q.push(this.now + delay, { k: 'deliver', to: to.id, from: from.id, bytes })
    if (faulty && this.dupRate && this.net.chance(this.dupRate)) {
      this.count('duplicate')
      this.q.push(this.now + delay + this.net.range(0, 50), { k: 'deliver', to: to.id, from: from.id, bytes })
    }
  }

  private transmit(
    from: SimNode,
    kind: Extract<Output, { type: 'send' }>['kind'],
    bytes: Uint8Array,
    toValidator?: number,
  ): void {
    if (this.replayBuffer.length < 256) this.replayBuffer.push({ bytes, from: from.id })
    else this.replayBuffer[this.net.int(256)] = { bytes, from: from.id }
    for (const to of this.nodes) {
      if (to.id === from.id) continue
      if (toValidator !== undefined && to.validator !== toValidator) continue
      if (from.byz) {
        const variants = from.byz.transform(kind, bytes, to.validator)
        if (variants.length !== 1 || variants[0] !== bytes) this.count(from.byz.lastAction)
        for (const b of variants) this.deliver(from, to, b)
      } else {
        this.deliver(from, to, bytes)
      }
    }
  }

  // ------------------------------------------------------------- node side

  private flush(node: SimNode): void {
    if (node.pending.length) {
      node.durable.push(...node.pending)
      node.pending = []
      this.maxJournal = Math.max(this.maxJournal, node.durable.length)
    }
  }

  private apply(node: SimNode, outputs: Output[]): void {
    for (const o of outputs) {
      switch (o.type) {
        case 'journal':
          node.pending.push(o.entry)
          break
        case 'broadcast':
          this.flush(node)
          this.transmit(node, o.kind, o.bytes)
          break
        case 'send':
          this.flush(node)
          this.transmit(node, o.kind, o.bytes, o.to)
          break
        case 'setTimer':
          this.q.push(this.now + o.ms, {
            k: 'timer',
            node: node.id,
            inc: node.inc,
            timer: o.timer,
            token: o.token,
          })
          break
        case 'cancelTimer':
          break
        case 'requestProposal': {
          const b: SimBlock = {
            height: o.height,
            view: o.view,
            proposer: node.validator,
            nonce: this.nonce++,
            valid: true,
          }
          if (node.byz?.behaviors.has('invalidBlocks') && this.rng.chance(0.5)) {
            b.valid = false
            this.count('invalidBlocks')
          }
          const block = encodeSimBlock(b)
          const input: Input = {
            type: 'proposal',
            height: o.height,
            view: o.view,
            block,
            digest: sha256(block),
          }
          this.q.push(this.now + this.rng.range(20, 60), { k: 'input', node: node.id, inc: node.inc, input })
          break
        }
        case 'validate': {
          const input: Input = {
            type: 'validated',
            height: o.height,
            view: o.view,
            digest: o.digest,
            ok: simValidate(o.block, o.height),
          }
          this.q.push(this.now + this.rng.range(0, 3), { k: 'input', node: node.id, inc: node.inc, input })
          break
        }
        case 'commit':
          this.onCommit(node, o)
          break
        case 'requestSync':
          this.onRequestSync(node, o.fromHeight, o.toHeight)
          break
        case 'compactJournal':
          this.flush(node)
          node.durable = compactJournal(node.durable, o.stableHeight)
          break
        case 'reject':
          this.rejects[o.code] = (this.rejects[o.code] ?? 0) + 1
          if (o.penalize && node.honest) {
            // Evidence convicts its signer; other refusals blame the peer that sent the bytes.
            const blamed =
              o.offender !== undefined
                ? this.nodes.filter((x) => x.validator === o.offender)
                : o.from !== undefined && o.from !== 'adversary'
                  ? [this.nodes[Number(o.from)]!]
                  : []
            if (blamed.length && blamed.every((x) => x.honest)) {
              // An honest replica caught signing two conflicting messages is a safety failure in itself.
              this.violation(
                o.code === 'EQUIVOCATION' ? 'equivocation' : 'penalizedHonest',
                `node ${node.id} penalised honest ${o.offender !== undefined ? `validator ${o.offender}` : `node ${o.from}`}: ${o.code} ${o.reason}`,
              )
            }
          }
          break
        case 'viewChanged':
          if (node.honest && o.changing) this.viewChanges++
          if (node.honest) this.maxView = Math.max(this.maxView, o.view)
          break
        case 'stableCheckpoint':
          break
      }
    }
  }

  private onCommit(node: SimNode, o: Extract<Output, { type: 'commit' }>): void {
    const h = o.height
    if (node.honest) {
      if (h !== node.store.length + 1) {
        this.violation('integrity', `node ${node.id} committed height ${h} after ${node.store.length}`)
        return
      }
      if (!o.isNull && !simValidate(o.block, h))
        this.violation('integrity', `node ${node.id} committed an invalid block at ${h}`)
      if (o.isNull !== equalBytes(o.digest, new Uint8Array(32)))
        this.violation('integrity', `node ${node.id}: null flag mismatch at ${h}`)
      if (!o.isNull && !equalBytes(sha256(o.block), o.digest))
        this.violation('integrity', `node ${node.id}: block does not match digest at ${h}`)
      const cert = verifyCommitCertificate(
        o.certificate,
        this.keys.map((k) => k.publicKey),
        CHAIN,
        this.verify,
      )
      if (!cert.ok)
        this.violation('certificate', `node ${node.id} height ${h}: ${cert.code} ${cert.detail ?? ''}`)
      else if (o.certificate.height !== h || !equalBytes(o.certificate.blockHash, o.digest)) {
        this.violation('certificate', `node ${node.id} height ${h}: certificate for another block`)
      }
      const hex = toHex(o.digest)
      const prev = this.committed.get(h)
      if (prev === undefined) this.committed.set(h, hex)
      else if (prev !== hex)
        this.violation(
          'agreement',
          `height ${h}: node ${node.id} committed ${hex.slice(0, 12)}, another honest node ${prev.slice(0, 12)}`,
        )
    } else if (h !== node.store.length + 1) {
      return
    }
    node.store.push({ digest: o.digest, block: o.block, certificate: o.certificate })
    node.stateDigest = sha256(node.stateDigest, o.digest)
    node.execAt = Math.max(node.execAt, this.now) + 1
    this.q.push(node.execAt, {
      k: 'input',
      node: node.id,
      inc: node.inc,
      input: { type: 'executed', height: h, stateDigest: node.stateDigest },
    })
    if (this.healed) this.checkLiveness()
  }

  /** Block sync as a node does it: fetch committed blocks with certificates from a reachable peer. */
  private onRequestSync(node: SimNode, from: number, to: number): void {
    if (node.syncedTo >= to) return
    const peers = this.nodes.filter(
      (p) => p.id !== node.id && p.up && p.store.length >= from && !this.partitioned(p.id, node.id),
    )
    if (!peers.length) return
    const peer = this.net.pick(peers)
    const last = Math.min(to, peer.store.length)
    this.count('syncedBlocks', last - from + 1)
    let t = this.now
    for (let h = from; h <= last; h++) {
      const b = peer.store[h - 1]!
      t += 2
      this.q.push(t, {
        k: 'input',
        node: node.id,
        inc: node.inc,
        input: { type: 'syncBlock', height: h, block: b.block, digest: b.digest, certificate: b.certificate },
      })
    }
    node.syncedTo = last
  }

  // ------------------------------------------------------------- properties

  private checkLiveness(): void {
    if (this.heightAtHeal < 0) return
    const target = this.heightAtHeal + this.o.heightsAfterHeal
    if (this.nodes.every((x) => !x.honest || x.store.length >= target)) {
      this.livenessMs = this.now - this.healAt
      this.done = true
    }
  }

  private checkLivenessAtDeadline(): void {
    const target = this.heightAtHeal + this.o.heightsAfterHeal
    const behind = this.nodes
      .filter((x) => x.honest && x.store.length < target)
      .map((x) => `${x.id}@${x.store.length}/v${x.replica?.status().view}`)
    this.violation(
      'liveness',
      `not every honest replica reached height ${target} within ${this.livenessBoundMs} ms of the heal: ${behind.join(' ')}`,
    )
  }

  private checkMemory(): void {
    const L = this.o.windowSize
    for (const node of this.nodes) {
      if (!node.honest || !node.replica) continue
      const fp = node.replica.footprint()
      if (
        fp.slots > L ||
        fp.viewChanges > this.o.n ||
        fp.checkpointVoteHeights > 4 * this.o.n + 1 ||
        fp.votes > 2 * L * 3 * this.o.n
      ) {
        this.violation('memory', `node ${node.id}: ${JSON.stringify(fp)}`)
      }
    }
  }
}
