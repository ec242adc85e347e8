import { type AddResult, type CityError, type Mempool, decodeStrict, encode } from '@cityledger/core'
import type { Logger } from '../log/index.ts'

/** Codes that mean the sender relayed something no honest node would: penalise it. */
const PENALIZED = new Set([
  'BAD_SIGNATURE',
  'MALFORMED',
  'TRAILING_BYTES',
  'NON_CANONICAL',
  'BAD_FIELD',
  'TOO_LARGE',
  'TX_TOO_LARGE',
  'WRONG_CHAIN',
])

const MAX_BATCH = 512

export interface GossipOptions {
  mempool: Mempool
  broadcast: (bytes: Uint8Array) => void
  penalize: (peer: string, reason: string) => void
  /** Called after txs were admitted (the primary may propose sooner). */
  onAdmitted: () => void
  logger: Logger
}

/**
 * Transaction gossip between validators (a full mesh, so no re-relay): txs admitted from RPC are sent
 * to every peer in batches (one message per tick, at most 512 txs); txs from peers go through the
 * same admission as RPC (each node verifies each tx once), and peers relaying invalid txs are penalised.
 */
export class TxGossip {
  private readonly o: GossipOptions
  private outbox: Uint8Array[] = []
  private flushing = false

  constructor(o: GossipOptions) {
    this.o = o
  }

  /** RPC admission: the caller learns the outcome; admitted txs are queued for gossip. */
  async submit(bytes: Uint8Array): Promise<{ hash: Uint8Array }> {
    const r = await this.o.mempool.add(bytes)
    this.queue(bytes)
    this.o.onAdmitted()
    return r
  }

  private queue(bytes: Uint8Array): void {
    this.outbox.push(bytes)
    if (this.outbox.length >= MAX_BATCH) this.flush()
    else if (!this.flushing) {
      this.flushing = true
      setImmediate(() => this.flush())
    }
  }

  private flush(): void {
    this.flushing = false
    while (this.outbox.length) this.o.broadcast(encode(this.outbox.splice(0, MAX_BATCH)))
  }

  /**
   * A peer (re)connected: hand it what is pending here, so txs admitted while it was away (it may be
   * the next primary) are not stuck in the other validators' mempools.
   */
  peerConnected(send: (bytes: Uint8Array) => void): void {
    const pending = this.o.mempool.reap({ maxTxs: 20_000, maxBytes: 64 * 1024 * 1024 })
    for (let i = 0; i < pending.length; i += MAX_BATCH)
      send(encode(pending.slice(i, i + MAX_BATCH).map((t) => t.bytes)))
  }

  /** A batch from a peer. */
  async received(peer: string, data: Uint8Array): Promise<void> {
    let list: unknown
    try {
      list = decodeStrict(data, { maxBytes: 8 * 1024 * 1024, maxDepth: 1 })
    } catch (err) {
      this.o.penalize(peer, `gossip:${(err as CityError).code ?? 'MALFORMED'}`)
      return
    }
    if (!Array.isArray(list) || list.length > MAX_BATCH || !list.every((x) => x instanceof Uint8Array)) {
      this.o.penalize(peer, 'gossip:BAD_BATCH')
      return
    }
    const results: AddResult[] = await this.o.mempool.addMany(list as Uint8Array[])
    let admitted = 0
    for (const r of results) {
      if (r.ok) admitted++
      else if (PENALIZED.has(r.error.code)) {
        this.o.penalize(peer, `gossip:${r.error.code}`)
        this.o.logger.debug({ peer, code: r.error.code }, 'peer relayed an invalid tx')
      }
    }
    if (admitted) this.o.onAdmitted()
  }
}
