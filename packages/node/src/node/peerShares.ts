// Each peer's share of the consensus driver's input queue (messages and bytes waiting), so that one
// peer cannot fill the queue: past its share its messages are dropped (driver.ts `push`).

/** The messages and bytes each peer has waiting in the driver's queue, against one bound. */
export class PeerShares {
  private readonly queued = new Map<string, { messages: number; bytes: number }>()
  private readonly max: { messages: number; bytes: number }

  constructor(max: { messages: number; bytes: number }) {
    this.max = max
  }

  /** Counts a message of `bytes` from `peer` in, or returns what it already has waiting when over its share. */
  admit(peer: string, bytes: number): { messages: number; bytes: number } | undefined {
    const q = this.queued.get(peer) ?? { messages: 0, bytes: 0 }
    if (q.messages + 1 > this.max.messages || q.bytes + bytes > this.max.bytes) return { ...q }
    q.messages++
    q.bytes += bytes
    this.queued.set(peer, q)
    return undefined
  }

  /** A message of `peer` left the queue. */
  release(peer: string, bytes: number): void {
    const q = this.queued.get(peer)
    if (!q) return
    q.messages--
    q.bytes -= bytes
    if (q.messages <= 0) this.queued.delete(peer)
  }
}
