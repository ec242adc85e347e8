import type { Rng } from '@cityledger/core/testing'
import type { LinkFault } from './types.ts'

/** A partition during the faulty period: nodes in `side` cannot reach the others. */
export interface Partition {
  from: number
  to: number
  side: Set<number>
}

/** Where the network puts a message: the node and the time it arrives. */
export type Deliver = (time: number, from: number, to: number, bytes: Uint8Array) => void

/**
 * The simulated network: drops what p2p refuses (over the frame limit), what partitions and faulty links
 * cut, and lost messages; delays (latency, size, jitter, spikes) and duplicates the rest. All faults
 * stop at the heal; the frame limit never does.
 */
export class SimNetwork {
  readonly partitions: Partition[] = []
  readonly links: LinkFault[] = []
  lossRate = 0
  dupRate = 0
  delayRate = 0
  jitter = 0
  healed = false
  private readonly rng: Rng
  private readonly frameBytes: number
  private readonly now: () => number
  private readonly count: (kind: string) => void
  private readonly put: Deliver

  constructor(o: {
    rng: Rng
    frameBytes: number
    now: () => number
    count: (kind: string) => void
    deliver: Deliver
  }) {
    this.rng = o.rng
    this.frameBytes = o.frameBytes
    this.now = o.now
    this.count = o.count
    this.put = o.deliver
  }

  partitioned(a: number, b: number): boolean {
    if (this.healed) return false
    const now = this.now()
    for (const p of this.partitions)
      if (now >= p.from && now < p.to && p.side.has(a) !== p.side.has(b)) return true
    return false
  }

  /** Single-link faults: the message is lost with the link's loss rate while the link is faulty. */
  private linkDrops(a: number, b: number): boolean {
    const now = this.now()
    for (const l of this.links) {
      if (!((l.a === a && l.b === b) || (l.a === b && l.b === a))) continue
      if (now >= l.fromMs && now < l.toMs && (l.loss >= 1 || this.rng.chance(l.loss))) return true
    }
    return false
  }

  send(from: number, to: number, bytes: Uint8Array): void {
    // p2p refuses to send a message over the protocol's frame limit (P2P_MESSAGE_TOO_LARGE).
    if (bytes.length > this.frameBytes) {
      this.count('oversizeDrops')
      return
    }
    if (this.partitioned(from, to)) {
      this.count('partitionDrops')
      return
    }
    if (this.links.length && this.linkDrops(from, to)) {
      this.count('linkFault')
      return
    }
    const faulty = !this.healed
    if (faulty && this.lossRate && this.rng.chance(this.lossRate)) {
      this.count('loss')
      return
    }
    // 1-10 ms of latency, plus the time to move the bytes at 100 MB/s.
    let delay = this.rng.range(1, 10) + Math.floor(bytes.length / 100_000)
    if (faulty && this.jitter) {
      delay += this.rng.int(this.jitter)
      this.count('reorder')
    }
    if (faulty && this.delayRate && this.rng.chance(this.delayRate)) {
      delay += this.rng.range(100, 800)
      this.count('delay')
    }
    const now = this.now()
    this.put(now + delay, from, to, bytes)
    if (faulty && this.dupRate && this.rng.chance(this.dupRate)) {
      this.count('duplicate')
      this.put(now + delay + this.rng.range(0, 50), from, to, bytes)
    }
  }
}
