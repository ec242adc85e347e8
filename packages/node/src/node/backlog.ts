import { MempoolError } from '@cityledger/core'

/**
 * How many pending txs a node lets clients add to before it refuses new ones (issue #14, overload).
 *
 * Why: the mempool's own limit (`mempool.maxTxs`, 100,000) bounds memory, not waiting. Offered twice
 * what it could commit, a 4-validator network admitted ~32,000 txs in 20 s while ~90 a second
 * committed: every accepted tx waited half a minute, and admitting and gossiping them kept the nodes'
 * event loops too busy for fast rounds. A node now refuses a client (MEMPOOL_FULL, 429 with
 * Retry-After) once its mempool holds `blocks` blocks' worth of txs at its current block cap (see
 * blockBudget.ts), but never below `minTxs`: what is acknowledged commits within a few rounds, and a
 * client learns early that it must slow down. Txs from peers are not refused by it (they were
 * acknowledged by another validator); the mempool's hard limits still bound them.
 */
export interface BacklogOptions {
  /** Blocks' worth of pending txs at the current block cap; 0 turns the limit off. */
  blocks: number
  /** Never refuse while fewer than this many txs are pending. */
  minTxs: number
}

/** The pending-tx count past which client submissions are refused; Infinity when it is off. */
export function backlogLimit(o: BacklogOptions, blockTxsCap: number): number {
  if (o.blocks <= 0) return Number.POSITIVE_INFINITY
  return Math.max(o.minTxs, o.blocks * blockTxsCap)
}

/**
 * Throws MEMPOOL_FULL (429, Retry-After 1 s) when `pending` has reached the limit. One error object per
 * limit is thrown again and again: an overloaded node refuses tens of thousands of envelopes a second,
 * and building an Error (its stack) for each was 3 % of a node's CPU in the network benchmark.
 */
export class Backlog {
  private readonly o: BacklogOptions
  private refusal?: { limit: number; err: MempoolError }

  constructor(o: BacklogOptions) {
    this.o = o
  }

  check(pending: number, blockTxsCap: number): void {
    const limit = backlogLimit(this.o, blockTxsCap)
    if (pending < limit) return
    if (this.refusal?.limit !== limit) {
      const err = new MempoolError(
        'MEMPOOL_FULL',
        `node is behind: its backlog limit is ${limit} pending txs (${this.o.blocks} blocks of ${blockTxsCap}); retry after a commit`,
        { backlogLimit: limit, retryAfterSeconds: 1 },
      )
      this.refusal = { limit, err }
    }
    throw this.refusal.err
  }
}
