// A tiny scripted network of replicas for regression tests: zero-latency FIFO delivery, a virtual clock
// that moves only when told, per-link filters, and the node-side answers (proposals, validations,
// executions). Deterministic: no randomness, no wall clock.
import { encode, sha256 } from '@cityledger/core'
import {
  type Input,
  type MessageKind,
  type Output,
  type Replica,
  type ReplicaConfig,
  type TimerId,
  createReplica,
  decodeMessage,
  simCrypto,
} from '@cityledger/consensus'

export const CHAIN = 'unit-chain'

/** One message a replica sent (broadcasts are logged once per receiver). */
export interface Sent {
  at: number
  from: number
  to: number
  kind: MessageKind
  bytes: Uint8Array
  delivered: boolean
}

export interface NetOptions {
  n: number
  /** Replicas that are down for good: never started, receive nothing, send nothing. */
  down?: number[]
  config?: Partial<ReplicaConfig>
  /** Block bytes the primary proposes at a height (default a small tagged block). */
  blockFor?: (height: number, view: number) => Uint8Array
  /** Heights above this are never proposed. Default unlimited. */
  maxHeight?: number
  /** Messages larger than this are dropped like a p2p frame limit would. */
  frameLimit?: number
}

export class ReplicaNet {
  readonly crypto
  readonly replicas: Replica[]
  readonly n: number
  now = 0
  readonly sent: Sent[] = []
  readonly committed: number[][]
  readonly commitOutputs: Extract<Output, { type: 'commit' }>[][]
  readonly outputs: Output[][]
  /** Return true to drop a message from -> to. */
  drop: (from: number, to: number, kind: MessageKind, bytes: Uint8Array) => boolean = () => false
  private readonly down: Set<number>
  private readonly timers: Map<TimerId, { at: number; token: number }>[]
  private readonly queue: { to: number; input: Input }[] = []
  private readonly o: NetOptions

  constructor(o: NetOptions) {
    this.o = o
    this.n = o.n
    this.crypto = simCrypto(o.n)
    this.down = new Set(o.down ?? [])
    this.replicas = Array.from({ length: o.n }, (_, i) => createReplica(this.config(i)))
    this.timers = this.replicas.map(() => new Map())
    this.committed = this.replicas.map(() => [])
    this.commitOutputs = this.replicas.map(() => [])
    this.outputs = this.replicas.map(() => [])
  }

  config(i: number): ReplicaConfig {
    return {
      chainId: CHAIN,
      validators: this.crypto.keys.map((k) => k.publicKey),
      publicKey: this.crypto.keys[i]!.publicKey,
      sign: this.crypto.keys[i]!.sign,
      verify: this.crypto.verify,
      viewTimeoutMs: 1000,
      checkpointInterval: 2,
      windowSize: 8,
      ...this.o.config,
    }
  }

  isDown(i: number): boolean {
    return this.down.has(i)
  }

  start(): void {
    for (let i = 0; i < this.n; i++)
      if (!this.down.has(i)) this.handle(i, this.replicas[i]!.step({ type: 'start' }))
    this.deliver()
  }

  /** Steps replica `i` with `input` and carries out its outputs (messages are queued, not delivered). */
  step(i: number, input: Input): Output[] {
    const out = this.replicas[i]!.step(input)
    this.handle(i, out)
    return out
  }

  /** Delivers queued inputs until none is left. */
  deliver(): void {
    for (let steps = 0; this.queue.length; steps++) {
      if (steps > 1_000_000) throw new Error('replicaNet: message storm')
      const { to, input } = this.queue.shift()!
      this.handle(to, this.replicas[to]!.step(input))
    }
  }

  /** Moves the clock forward by `ms`, firing timers in time order and delivering everything after each. */
  advance(ms: number): void {
    const end = this.now + ms
    this.deliver()
    for (;;) {
      let next: { i: number; timer: TimerId; at: number; token: number } | undefined
      this.timers.forEach((m, i) => {
        for (const [timer, t] of m)
          if (t.at <= end && (!next || t.at < next.at || (t.at === next.at && i < next.i)))
            next = { i, timer, ...t }
      })
      if (!next) break
      this.now = next.at
      this.timers[next.i]!.delete(next.timer)
      this.handle(
        next.i,
        this.replicas[next.i]!.step({ type: 'timeout', timer: next.timer, token: next.token }),
      )
      this.deliver()
    }
    this.now = end
  }

  private handle(i: number, outs: Output[]): void {
    this.outputs[i]!.push(...outs)
    const send = (to: number, kind: MessageKind, bytes: Uint8Array) => {
      const ok =
        !this.down.has(to) &&
        !this.drop(i, to, kind, bytes) &&
        (this.o.frameLimit === undefined || bytes.length <= this.o.frameLimit)
      this.sent.push({ at: this.now, from: i, to, kind, bytes, delivered: ok })
      if (ok) this.queue.push({ to, input: { type: 'message', bytes, from: String(i) } })
    }
    for (const o of outs) {
      switch (o.type) {
        case 'broadcast':
          for (let j = 0; j < this.n; j++) if (j !== i) send(j, o.kind, o.bytes)
          break
        case 'send':
          send(o.to, o.kind, o.bytes)
          break
        case 'setTimer':
          this.timers[i]!.set(o.timer, { at: this.now + o.ms, token: o.token })
          break
        case 'cancelTimer':
          this.timers[i]!.delete(o.timer)
          break
        case 'requestProposal': {
          if (this.o.maxHeight !== undefined && o.height > this.o.maxHeight) break
          const block = (this.o.blockFor ?? ((h, v) => encode(['block', h, v])))(o.height, o.view)
          this.queue.push({
            to: i,
            input: { type: 'proposal', height: o.height, view: o.view, block, digest: sha256(block) },
          })
          break
        }
        case 'validate':
          this.queue.push({
            to: i,
            input: { type: 'validated', height: o.height, view: o.view, digest: o.digest, ok: true },
          })
          break
        case 'commit':
          this.committed[i]!.push(o.height)
          this.commitOutputs[i]!.push(o)
          this.queue.push({ to: i, input: { type: 'executed', height: o.height, stateDigest: o.digest } })
          break
      }
    }
  }

  /** Kinds of the messages sent, for assertions. */
  kindOf(bytes: Uint8Array): MessageKind {
    return decodeMessage(bytes).type
  }
}
