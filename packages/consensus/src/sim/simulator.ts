import { type SignatureCheck, sha256, toHex } from '@cityledger/core'
import { Rng } from '@cityledger/core/testing'
import { type ReplicaConfig, maxFaulty } from '../config.ts'
import { type JournalEntry, compactJournal } from '../journal.ts'
import { Replica } from '../replica/replica.ts'
import { VOTED_BLOCKS_PER_HEIGHT } from '../replica/state.ts'
import type { Input, Output } from '../replica/types.ts'
import { type SimBlock, encodeSimBlock, simBlockDigest, simValidate } from './blocks.ts'
import { Byzantine, type ByzantineBehavior, garbageFrom } from './byzantine.ts'
import { decodeForReplica } from './decodeCache.ts'
import { type SimKey, simCrypto } from './crypto.ts'
import { makeLie } from './lies.ts'
import { type FaultCast, castFaults, describeScenario, drawLinks } from './plan.ts'
import { NODE_LIMITS, PROFILES, REPLICA_DEFAULTS, type SimProfile } from './profile.ts'
import { SimNetwork } from './network.ts'
import { EventQueue } from './queue.ts'
import { type CheckedNode, OutputChecks } from './checks.ts'
import {
  type FaultKind,
  type SimOptions,
  type SimResult,
  type Violation,
  type ViolationKind,
  livenessBound,
} from './types.ts'

export {
  FAULT_KINDS,
  BYZANTINE_KINDS,
  type FaultKind,
  type LinkFault,
  type PermanentCrash,
  type SimOptions,
  type SimResult,
  type Violation,
  type ViolationKind,
  livenessBound,
} from './types.ts'

type Event =
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

const CHAIN = 'sim-chain'

/**
 * Runs one seeded scenario: n replicas, an in-memory network, a manual clock. Everything random comes
 * from `seed`, so a run replays identically from it. Safety properties are checked at every commit
 * output (agreement, integrity, certificates), sync and amplification at every output, memory every 64
 * steps, liveness after the heal.
 */
export function runSimulation(opts: SimOptions): SimResult {
  return new Simulation(opts).run()
}

class Simulation {
  private readonly o: Required<
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
  private readonly profile: SimProfile
  private readonly rng: Rng
  private readonly net: Rng
  private readonly q = new EventQueue<Event>()
  private readonly nodes: SimNode[] = []
  private readonly keys: SimKey[]
  private readonly verify: (c: SignatureCheck) => boolean
  private readonly cast: FaultCast
  private readonly faults: Set<FaultKind>
  private readonly network: SimNetwork
  private readonly scenario: string
  private now = 0
  private steps = 0
  private readonly healAt: number
  private readonly violations: Violation[] = []
  private readonly checks: OutputChecks
  private readonly counts: Record<string, number> = {}
  private readonly rejects: Record<string, number> = {}
  private readonly replayBuffer: { bytes: Uint8Array; from: number }[] = []
  private viewChanges = 0
  private maxView = 0
  private heightAtHeal = -1
  private livenessMs?: number
  private done = false
  private maxJournal = 0
  private maxMessage = 0
  private nonce = 0
  /** FNV-1a over the handled events, with `traceEvents` (0x811c9dc5 is the FNV offset basis). */
  private eventHash = 0x811c9dc5
  /** Highest height any replica committed: the highest height a certificate proves. */
  private maxCommitted = 0
  private readonly livenessBoundMs: number
  private readonly retransmitMs: number
  private readonly f: number

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
    this.setup()
    this.scenario = describeScenario(this.o, opts.profile ?? 'sim', this.cast, this.network.links)
  }

  private count(kind: string, by = 1): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + by
  }

  private setup(): void {
    const n = this.o.n
    const byz = new Map(this.cast.byzantine.map((b) => [b.validator, b]))
    const twinValidator = this.cast.twin
    for (let v = 0; v < n; v++) {
      const b = byz.get(v)
      this.addNode(v, !b && v !== twinValidator, b?.behaviors ?? [], b?.silentTo ?? [])
      if (v === twinValidator) {
        this.addNode(v, false, [], [])
        this.count('twins')
      }
    }
    for (const b of this.cast.byzantine) for (const k of b.behaviors) this.count(`byzantine:${k}`, 0)
    // Network fault intensities for this run.
    const net = this.network
    if (this.faults.has('loss')) net.lossRate = this.rng.pick([0.02, 0.05, 0.1, 0.2, 0.3])
    if (this.faults.has('duplicate')) net.dupRate = this.rng.pick([0.02, 0.1, 0.3])
    if (this.faults.has('delay')) net.delayRate = this.rng.pick([0.02, 0.1, 0.3])
    if (this.faults.has('reorder')) net.jitter = this.rng.pick([5, 20, 60])
    const twins = this.faults.has('twins') && twinValidator >= 0
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
        net.partitions.push({ from, to, side })
        this.count('partition')
      }
    }
    if (this.faults.has('linkFault')) net.links.push(...drawLinks(this.rng, this.nodes.length, this.healAt))
    net.links.push(...(this.o.links ?? []))
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
    for (const d of this.cast.downForever) {
      const node = this.nodes.find((x) => x.validator === d.validator)!
      node.downForever = true
      if (d.atHeight !== undefined) node.crashAtHeight = d.atHeight
      else this.q.push(d.atMs ?? 0, { k: 'crash', node: node.id, loseTail: false, forever: true })
    }
    if (this.faults.has('garbage'))
      for (let t = this.rng.int(50); t < this.healAt; t += this.rng.range(5, 80))
        this.q.push(t, { k: 'garbage' })
    if (this.faults.has('replay'))
      for (let t = this.rng.range(50, 100); t < this.healAt; t += this.rng.range(5, 80))
        this.q.push(t, { k: 'replay' })
    for (const node of this.nodes)
      if (node.byz && this.lyingFamilies(node).length)
        this.q.push(this.rng.int(100), { k: 'lie', node: node.id })
    this.q.push(this.healAt, { k: 'heal' })
    for (const node of this.nodes) this.startReplica(node, 0)
  }

  private lyingFamilies(node: SimNode): ('lyingViewChange' | 'lyingNewView' | 'lyingStatus')[] {
    return (['lyingViewChange', 'lyingNewView', 'lyingStatus'] as const).filter((k) =>
      node.byz?.behaviors.has(k),
    )
  }

  private addNode(
    validator: number,
    honest: boolean,
    behaviors: ByzantineBehavior[],
    silentTo: number[],
  ): void {
    const id = this.nodes.length
    const node: SimNode = {
      id,
      validator,
      honest,
      up: true,
      downForever: false,
      inc: 0,
      durable: [],
      pending: [],
      store: [],
      stateDigest: new Uint8Array(32),
      execAt: 0,
      syncedTo: 0,
      lastCommitAt: 0,
      wanted: new Map(),
      validations: [],
    }
    if (behaviors.length)
      node.byz = new Byzantine(behaviors, this.keys[validator]!, this.rng.fork(), CHAIN, silentTo)
    this.nodes.push(node)
  }

  /** What the node passes to `createReplica` (the profile leaves out what the node leaves out). */
  private replicaConfig(validator: number): ReplicaConfig {
    const key = this.keys[validator]!
    const o = this.o
    const inFlight = o.maxInFlight ?? this.profile.maxInFlight
    const exponent = o.maxBackoffExponent ?? this.profile.maxBackoffExponent
    return {
      chainId: CHAIN,
      validators: this.keys.map((k) => k.publicKey),
      publicKey: key.publicKey,
      sign: key.sign,
      verify: this.verify,
      blockDigest: simBlockDigest,
      decodeMessage: decodeForReplica,
      maxMessageBytes: o.frameBytes,
      checkpointInterval: o.checkpointInterval,
      windowSize: o.windowSize,
      viewTimeoutMs: o.viewTimeoutMs,
      ...(inFlight !== undefined ? { maxInFlight: inFlight } : {}),
      ...(exponent !== undefined ? { maxBackoffExponent: exponent } : {}),
      ...(this.profile.retransmitDivisor !== undefined ? { retransmitMs: this.retransmitMs } : {}),
      ...(this.o.bug ? { faultInjection: this.o.bug } : {}),
    }
  }

  private startReplica(node: SimNode, at: number): void {
    if (node.downForever && !node.up) return
    node.replica = new Replica(this.replicaConfig(node.validator))
    node.up = true
    node.inc++
    node.syncedTo = node.store.length
    node.execAt = at
    node.wanted.clear()
    node.validations = []
    const journal = node.durable.length ? [...node.durable] : undefined
    this.apply(
      node,
      node.replica.step({
        type: 'start',
        committedHeight: node.store.length,
        ...(journal ? { journal } : {}),
        ...(node.store.length ? { certificate: node.store.at(-1)!.certificate } : {}),
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
      if (this.o.traceEvents) this.traceEvent(e.item)
      try {
        this.handle(e.item)
      } catch (err) {
        this.violation('exception', (err as Error).stack ?? String(err))
      }
      if ((this.steps & 63) === 0) this.checkMemory()
      if (this.violations.length && this.o.stopOnViolation) break
    }
    const live = this.nodes.filter((x) => x.honest && !x.downForever)
    const heights = live.map((x) => x.store.length)
    return {
      seed: this.o.seed,
      n: this.o.n,
      f: this.f,
      scenario: this.scenario,
      violations: this.violations,
      committedHeights: { min: Math.min(...heights), max: Math.max(...heights) },
      viewChanges: this.viewChanges,
      maxView: this.maxView,
      faultsInjected: { ...this.counts },
      byzantine: this.nodes
        .filter((x) => !x.honest)
        .map((x) => ({ validator: x.validator, behaviors: x.byz ? [...x.byz.behaviors] : ['twin'] })),
      downForever: this.nodes.filter((x) => x.downForever).map((x) => x.validator),
      steps: this.steps,
      simTimeMs: this.now,
      healAtMs: this.healAt,
      ...(this.livenessMs !== undefined ? { livenessMs: this.livenessMs } : {}),
      livenessBoundMs: this.livenessBoundMs,
      incomplete: !this.done && this.violations.length === 0 && this.steps > this.o.maxSteps,
      rejects: { ...this.rejects },
      maxJournal: this.maxJournal,
      maxMessageBytes: this.maxMessage,
      commitLogs: this.nodes.map((x) => toHex(x.stateDigest)),
      ...(this.o.traceEvents ? { eventDigest: this.eventHash.toString(16).padStart(8, '0') } : {}),
      finalStatus: this.nodes.map((x) => ({
        node: x.id,
        honest: x.honest,
        up: x.up,
        stored: x.store.length,
        ...(x.replica?.status() ?? {}),
      })),
    }
  }

  private traceEvent(e: Event): void {
    const node = e.k === 'deliver' ? e.to : 'node' in e ? e.node : -1
    const len = e.k === 'deliver' ? e.bytes.length : e.k === 'input' ? e.input.type.length : 0
    const fields = [this.now, e.k.length * 31 + e.k.charCodeAt(0), node, len]
    // A sample of the message bytes (both ends), cheap even for megabyte blocks.
    if (e.k === 'deliver')
      for (let i = 0; i < 8 && i < len; i++) fields.push(e.bytes[i]!, e.bytes[len - 1 - i]!)
    let h = this.eventHash
    for (const x of fields) h = Math.imul(h ^ (x & 0xffffffff), 16777619) >>> 0
    this.eventHash = h
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
        const outputs = node.replica.step({ type: 'message', bytes: e.bytes, from })
        if (node.honest) this.checks.answer(this.checked(node), e.bytes, outputs, this.now)
        this.apply(node, outputs)
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
        this.crash(node, e.loseTail, e.forever ?? false)
        return
      }
      case 'restart': {
        const node = this.nodes[e.node]!
        if (node.up || node.downForever) return
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
          bytes: garbageFrom(this.net, sample.length > 4096 ? sample.subarray(0, 4096) : sample),
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
      case 'lie':
        this.lie(this.nodes[e.node]!)
        return
      case 'propose': {
        const node = this.nodes[e.node]!
        if (node.up && node.inc === e.inc) this.proposeOnHead(node)
        return
      }
      case 'heal': {
        this.network.healed = true
        this.heightAtHeal = Math.max(
          0,
          ...this.nodes.filter((x) => x.honest && !x.downForever).map((x) => x.store.length),
        )
        for (const node of this.nodes) if (!node.up) this.startReplica(node, this.now)
        this.checkLiveness()
        return
      }
    }
  }

  private crash(node: SimNode, loseTail: boolean, forever: boolean): void {
    node.up = false
    node.replica = undefined
    if (forever) {
      node.downForever = true
      this.count('crashForever')
    }
    if (loseTail) {
      this.count('crashLoseTail')
      this.count('journalEntriesLost', node.pending.length)
    } else {
      if (!forever) this.count('crash')
      node.durable.push(...node.pending)
    }
    node.pending = []
  }

  /** A Byzantine replica's lie on its own initiative; it keeps lying for the whole run. */
  private lie(node: SimNode): void {
    this.q.push(this.now + this.rng.range(40, 250), { k: 'lie', node: node.id })
    if (!node.up || !node.replica || !node.byz) return
    const st = node.replica.status()
    const family = this.rng.pick(this.lyingFamilies(node))
    const lies = makeLie(family, node.byz.memory, this.rng, {
      view: st.view,
      committedHeight: st.committedHeight,
      n: this.o.n,
      index: node.validator,
      frameBytes: this.o.frameBytes,
    })
    for (const l of lies) {
      this.count(family)
      this.count(`lie:${l.name}`)
      for (const to of this.nodes) {
        if (to.id === node.id || (l.to !== 'all' && to.validator !== l.to)) continue
        this.deliver(node, to, l.bytes)
      }
    }
  }

  // ------------------------------------------------------------- network

  private deliver(from: SimNode, to: SimNode, bytes: Uint8Array): void {
    this.network.send(from.id, to.id, bytes)
  }

  private transmit(
    from: SimNode,
    kind: Extract<Output, { type: 'send' }>['kind'],
    bytes: Uint8Array,
    toValidator?: number,
  ): void {
    if (from.honest) this.maxMessage = Math.max(this.maxMessage, bytes.length)
    if (bytes.length <= 64 * 1024) {
      if (this.replayBuffer.length < 256) this.replayBuffer.push({ bytes, from: from.id })
      else this.replayBuffer[this.net.int(256)] = { bytes, from: from.id }
    }
    from.byz?.sent(kind, bytes)
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

  private buildBlock(node: SimNode, height: number, view: number): Uint8Array {
    const { size, fixed } = this.cast.blockBytes
    const b: SimBlock = {
      height,
      view,
      proposer: node.validator,
      nonce: this.nonce++,
      valid: true,
      padding: fixed ? size : Math.floor(size * (0.5 + 0.5 * this.rng.next())),
    }
    if (node.byz?.behaviors.has('invalidBlocks') && this.rng.chance(0.5)) {
      b.valid = false
      this.count('invalidBlocks')
    }
    if (size) this.count('bigBlocks')
    return encodeSimBlock(b)
  }

  private propose(node: SimNode, height: number, view: number, delay: number): void {
    const block = this.buildBlock(node, height, view)
    const input: Input = { type: 'proposal', height, view, block, digest: simBlockDigest(block) }
    this.q.push(this.now + delay, { k: 'input', node: node.id, inc: node.inc, input })
  }

  /**
   * Node profile (`ConsensusDriver`): a block is built only on top of the head (it names its parent's
   * state root), `blockIntervalMs` after the last commit; proposals wanted for later heights wait.
   */
  private proposeOnHead(node: SimNode): void {
    const head = node.store.length
    for (const h of node.wanted.keys()) if (h <= head) node.wanted.delete(h)
    const view = node.wanted.get(head + 1)
    if (view === undefined) return
    const at = node.lastCommitAt + NODE_LIMITS.blockIntervalMs
    if (at > this.now) {
      this.q.push(at, { k: 'propose', node: node.id, inc: node.inc })
      return
    }
    node.wanted.delete(head + 1)
    this.propose(node, head + 1, view, this.rng.range(5, 20))
  }

  /** Validation takes time in proportion to the block (20 MB/s), and in the node profile waits for the parent. */
  private validate(node: SimNode, o: Extract<Output, { type: 'validate' }>): void {
    const input: Input = {
      type: 'validated',
      height: o.height,
      view: o.view,
      digest: o.digest,
      ok: simValidate(o.block, o.height),
    }
    const delay = this.rng.range(0, 3) + Math.floor(o.block.length / 20_000)
    this.q.push(this.now + delay, { k: 'input', node: node.id, inc: node.inc, input })
  }

  private runValidations(node: SimNode): void {
    const head = node.store.length
    node.validations = node.validations.filter((v) => v.height > head)
    const ready = node.validations.filter((v) => v.height === head + 1)
    node.validations = node.validations.filter((v) => v.height !== head + 1)
    for (const v of ready) this.validate(node, v)
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
        case 'requestProposal':
          if (this.profile.proposeOnHead) {
            node.wanted.set(o.height, o.view)
            this.proposeOnHead(node)
          } else this.propose(node, o.height, o.view, this.rng.range(20, 60))
          break
        case 'validate':
          if (this.profile.proposeOnHead) {
            node.validations.push(o)
            this.runValidations(node)
          } else this.validate(node, o)
          break
        case 'commit':
          this.onCommit(node, o)
          break
        case 'requestSync':
          if (node.honest && o.toHeight > this.maxCommitted)
            this.violation(
              'sync',
              `node ${node.id} asked to sync to height ${o.toHeight}, but no replica committed above ${this.maxCommitted} (${this.scenario})`,
            )
          this.onRequestSync(node, o.fromHeight, o.toHeight)
          break
        case 'compactJournal':
          this.flush(node)
          node.durable = compactJournal(node.durable, o.stableHeight)
          break
        case 'reject':
          this.onReject(node, o)
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

  private onReject(node: SimNode, o: Extract<Output, { type: 'reject' }>): void {
    this.rejects[o.code] = (this.rejects[o.code] ?? 0) + 1
    // Evidence convicts its signer; other refusals blame the peer that sent the bytes.
    const blamed =
      o.offender !== undefined
        ? this.nodes.filter((x) => x.validator === o.offender)
        : o.from !== undefined && o.from !== 'adversary'
          ? [this.nodes[Number(o.from)]!]
          : []
    this.checks.reject(
      this.checked(node),
      o,
      blamed.map((x) => this.checked(x)),
    )
  }

  private checked(node: SimNode): CheckedNode {
    return { id: node.id, validator: node.validator, honest: node.honest, stored: node.store.length }
  }

  private onCommit(node: SimNode, o: Extract<Output, { type: 'commit' }>): void {
    const h = o.height
    if (node.honest) {
      if (!this.checks.commit(this.checked(node), o)) return
    } else if (h !== node.store.length + 1) {
      return
    }
    node.store.push({ digest: o.digest, block: o.block, certificate: o.certificate })
    this.maxCommitted = Math.max(this.maxCommitted, h)
    node.lastCommitAt = this.now
    node.stateDigest = sha256(node.stateDigest, o.digest)
    node.execAt = Math.max(node.execAt, this.now) + 1
    this.q.push(node.execAt, {
      k: 'input',
      node: node.id,
      inc: node.inc,
      input: { type: 'executed', height: h, stateDigest: node.stateDigest },
    })
    if (node.crashAtHeight !== undefined && node.store.length >= node.crashAtHeight && node.up) {
      node.crashAtHeight = undefined
      // After this step's outputs: the crash is an event of its own, right now.
      this.q.push(this.now, { k: 'crash', node: node.id, loseTail: false, forever: true })
    }
    if (this.profile.proposeOnHead) {
      this.proposeOnHead(node)
      this.runValidations(node)
    }
    if (this.network.healed) this.checkLiveness()
  }

  /** Block sync as a node does it: fetch committed blocks with certificates from a reachable peer. */
  private onRequestSync(node: SimNode, from: number, to: number): void {
    if (node.syncedTo >= to) return
    const peers = this.nodes.filter(
      (p) => p.id !== node.id && p.up && p.store.length >= from && !this.network.partitioned(p.id, node.id),
    )
    if (!peers.length) return
    const peer = this.net.pick(peers)
    const last = Math.min(to, peer.store.length)
    this.count('syncedBlocks', last - from + 1)
    let t = this.now
    for (let h = from; h <= last; h++) {
      const b = peer.store[h - 1]!
      t += 2 + Math.floor(b.block.length / 100_000)
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
    if (this.nodes.every((x) => !x.honest || x.downForever || x.store.length >= target)) {
      this.livenessMs = this.now - this.healAt
      this.done = true
    }
  }

  private checkLivenessAtDeadline(): void {
    const target = this.heightAtHeal + this.o.heightsAfterHeal
    const behind = this.nodes
      .filter((x) => x.honest && !x.downForever && x.store.length < target)
      .map((x) => {
        const st = x.replica?.status()
        return `${x.id}@${x.store.length}/v${st?.view}${st?.changingView ? '(changing)' : ''}`
      })
    this.violation(
      'liveness',
      `not every live honest replica reached height ${target} within ${this.livenessBoundMs} ms of the heal (heal at ${this.healAt} ms, height ${this.heightAtHeal} then): ${behind.join(' ')}; scenario: ${this.scenario}`,
    )
  }

  /** Bounds of `Replica.footprint()` (see ReplicaFootprint): a replica's memory is O(L·n) however long the run. */
  private checkMemory(): void {
    const L = this.o.windowSize
    const n = this.o.n
    for (const node of this.nodes) {
      if (!node.honest || !node.replica) continue
      const fp = node.replica.footprint() as ReturnType<Replica['footprint']> & {
        viewChangeEntries?: number
        missingBlocks?: number
      }
      if (
        fp.slots > L ||
        fp.viewChanges > n ||
        (fp.viewChangeEntries ?? 0) > 4 * n ||
        (fp.missingBlocks ?? 0) > L ||
        fp.checkpointVoteHeights > 4 * n + 1 ||
        // Per height: proposals of two views, the prepared and committed blocks, blocks named by commits
        // of two views (one per voter), and the voted-for blocks (VOTED_BLOCKS_PER_HEIGHT).
        fp.blocks > L * (2 + 2 + 2 * n + VOTED_BLOCKS_PER_HEIGHT) ||
        fp.votes > 2 * L * 3 * n
      ) {
        this.violation('memory', `node ${node.id}: ${JSON.stringify(fp)}`)
      }
    }
  }
}
