import { type AddResult, type CityError, type Mempool, decodeStrict, encode } from '@cityledger/core'
import type { Logger } from '../log/index.ts'
import { type Clock, systemClock, TokenBucket } from '../p2p/index.ts'
import { TX_BATCH_MAX_BYTES, TX_BATCH_MAX_TXS, TX_FRAME_BYTES } from './protocols.ts'

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

/** Refusals that say something about us (full, verifier down, a bug), never about the sender. */
const OURS = new Set(['MEMPOOL_FULL', 'VERIFIER_FAILED', 'INTERNAL', 'CHECK_FAILED'])

/**
 * Useless txs (duplicates, and refusals an honest peer can cause by a race: stale nonce, expired, ...)
 * a peer may relay at once, and per second after that. A reconnecting peer re-sends what is pending
 * (at most RECONNECT_PUSH_TXS), so the burst covers one such push with room to spare.
 */
export const USELESS_TX_BUDGET = { burst: 25_000, perSecond: 2_000 }

/** What a reconnecting peer is sent of our pending txs (fits the txs protocol's byte burst of 16 MiB). */
const RECONNECT_PUSH_TXS = 20_000
const RECONNECT_PUSH_BYTES = 8 * 1024 * 1024

/**
 * Pending txs are sent to every peer again, because one broadcast can be lost (a frame written into a
 * connection that a simultaneous dial replaced, a peer that restarted): `firstMs` after this node first
 * sees a tx pending, then every `everyMs` while it stays pending, at most `maxTxs` a call (the oldest
 * executable ones). Peers count the copies they already hold as useless: with three peers doing this,
 * at most ~150 copies per second, well inside USELESS_TX_BUDGET.
 */
export const REBROADCAST = { firstMs: 2_000, everyMs: 10_000, maxTxs: 512, intervalMs: 1_000 }

export interface GossipOptions {
  mempool: Mempool
  broadcast: (bytes: Uint8Array) => void
  penalize: (peer: string, reason: string) => void
  /** Called after txs were admitted (the primary may propose sooner). */
  onAdmitted: () => void
  logger: Logger
  /** Time for the per-peer useless-tx budget (default the system clock). */
  clock?: Clock
}

/**
 * Transaction gossip between validators (a full mesh, so no re-relay): txs admitted from RPC are sent
 * to every peer in batches (one message per tick, at most 512 txs and 1 MiB); txs from peers go through
 * the same admission as RPC (each node verifies each tx once). Peers relaying invalid txs are penalised
 * per tx; peers relaying duplicates or other useless txs beyond USELESS_TX_BUDGET, once per batch.
 */
export class TxGossip {
  private readonly o: GossipOptions
  private readonly clock: Clock
  private outbox: Uint8Array[] = []
  private flushing = false
  private readonly useless = new Map<string, TokenBucket>()
  /** When each tx pending at the last `rebroadcast` is due to be sent again (by hash hex). */
  private readonly due = new Map<string, number>()

  constructor(o: GossipOptions) {
    this.o = o
    this.clock = o.clock ?? systemClock
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
    if (this.outbox.length >= TX_BATCH_MAX_TXS) this.flush()
    else if (!this.flushing) {
      this.flushing = true
      setImmediate(() => this.flush())
    }
  }

  private flush(): void {
    this.flushing = false
    const list = this.outbox
    this.outbox = []
    for (const batch of batches(list)) this.o.broadcast(batch)
  }

  /**
   * A peer (re)connected: hand it what is pending here, so txs admitted while it was away (it may be
   * the next primary) are not stuck in the other validators' mempools.
   */
  peerConnected(send: (bytes: Uint8Array) => void): void {
    const pending = this.o.mempool.reap({ maxTxs: RECONNECT_PUSH_TXS, maxBytes: RECONNECT_PUSH_BYTES })
    for (const batch of batches(pending.map((t) => t.bytes))) send(batch)
  }

  /**
   * Sends pending txs again (see REBROADCAST); the node calls it every `REBROADCAST.intervalMs`. A tx
   * that committed or left the pool is forgotten here at the next call.
   */
  rebroadcast(): void {
    const now = this.clock.now()
    const pending = this.o.mempool.reap({ maxTxs: REBROADCAST.maxTxs, maxBytes: RECONNECT_PUSH_BYTES })
    const seen = new Set<string>()
    const again: Uint8Array[] = []
    for (const tx of pending) {
      const key = Buffer.from(tx.hash).toString('hex')
      seen.add(key)
      const at = this.due.get(key)
      if (at === undefined) this.due.set(key, now + REBROADCAST.firstMs)
      else if (now >= at) {
        again.push(tx.bytes)
        this.due.set(key, now + REBROADCAST.everyMs)
      }
    }
    for (const key of this.due.keys()) if (!seen.has(key)) this.due.delete(key)
    for (const batch of batches(again)) this.o.broadcast(batch)
  }

  /** A batch from a peer. */
  async received(peer: string, data: Uint8Array): Promise<void> {
    let list: unknown
    try {
      list = decodeStrict(data, { maxBytes: TX_FRAME_BYTES, maxDepth: 1 })
    } catch (err) {
      this.o.penalize(peer, `gossip:${(err as CityError).code ?? 'MALFORMED'}`)
      return
    }
    if (
      !Array.isArray(list) ||
      list.length > TX_BATCH_MAX_TXS ||
      !list.every((x) => x instanceof Uint8Array)
    ) {
      this.o.penalize(peer, 'gossip:BAD_BATCH')
      return
    }
    const results: AddResult[] = await this.o.mempool.addMany(list as Uint8Array[])
    let admitted = 0
    let useless = 0
    for (const r of results) {
      if (r.ok) admitted++
      else if (PENALIZED.has(r.error.code)) {
        this.o.penalize(peer, `gossip:${r.error.code}`)
        this.o.logger.debug({ peer, code: r.error.code }, 'peer relayed an invalid tx')
      } else if (!OURS.has(r.error.code)) useless++
    }
    if (useless > 0 && !this.uselessBudget(peer).tryTake(useless)) {
      // Everything it had left is spent too, so a steady flood is penalised on every batch.
      this.uselessBudget(peer).tryTake(this.uselessBudget(peer).available())
      this.o.penalize(peer, 'gossip:USELESS_TXS')
      this.o.logger.debug({ peer, useless }, 'peer relays duplicate or stale txs beyond its budget')
    }
    if (admitted) this.o.onAdmitted()
  }

  private uselessBudget(peer: string): TokenBucket {
    let b = this.useless.get(peer)
    if (!b) {
      b = new TokenBucket(USELESS_TX_BUDGET.perSecond, USELESS_TX_BUDGET.burst, this.clock)
      this.useless.set(peer, b)
    }
    return b
  }
}

/** Encoded batches of at most TX_BATCH_MAX_TXS txs and TX_BATCH_MAX_BYTES envelope bytes (one tx at least). */
export function batches(txs: readonly Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = []
  let batch: Uint8Array[] = []
  let bytes = 0
  for (const tx of txs) {
    if (batch.length > 0 && (batch.length >= TX_BATCH_MAX_TXS || bytes + tx.length > TX_BATCH_MAX_BYTES)) {
      out.push(encode(batch))
      batch = []
      bytes = 0
    }
    batch.push(tx)
    bytes += tx.length
  }
  if (batch.length > 0) out.push(encode(batch))
  return out
}
