/**
 * How many txs this node puts in the next block it proposes, so that a round (proposal to commit) stays
 * well inside the view-change timeout whatever the machine can do.
 *
 * Why: backups change view when no height commits within the timeout. A full block (5,000 txs) on a
 * slow or shared machine takes longer than that to build, validate and commit, so every such block
 * ended in a view change and the network committed almost nothing under load (issue #14: four
 * validators on two cores, ~70 tx/s with 10-12 view changes in 20 s). The genesis limit stays the
 * ceiling; this only lowers the cap while rounds are slow, and raises it again while full blocks
 * commit fast. Each node measures its own rounds; only the proposer's cap matters for a block, and
 * blocks need not be the same size on every node (validity does not depend on it).
 */
export interface BlockBudgetOptions {
  /** The genesis limit: never above it. */
  maxTxs: number
  /** Longest round wanted, ms (the node uses half the view-change timeout minus the block interval). */
  targetRoundMs: number
  /** Never below this many txs (small blocks have a fixed cost too). */
  minTxs?: number
  /** The cap before any round was measured (default min(maxTxs, 1000)). */
  initialTxs?: number
}

export class BlockBudget {
  private readonly max: number
  private readonly min: number
  private readonly target: number
  private cap: number

  constructor(o: BlockBudgetOptions) {
    this.max = Math.max(1, o.maxTxs)
    this.min = Math.min(this.max, Math.max(1, o.minTxs ?? 50))
    this.target = Math.max(1, o.targetRoundMs)
    this.cap = this.clamp(o.initialTxs ?? Math.min(this.max, 1000))
  }

  /** Txs for the next proposal. */
  get maxTxs(): number {
    return this.cap
  }

  /**
   * A block of `txs` txs took `roundMs` from its proposal (or, at a backup, from its arrival for
   * validation) until this node committed it. Slow rounds shrink the cap in proportion (with a 20%
   * margin); fast rounds of nearly full blocks grow it by half.
   */
  observe(txs: number, roundMs: number): void {
    if (txs <= 0 || !Number.isFinite(roundMs) || roundMs < 0) return
    if (roundMs > this.target) this.cap = this.clamp(Math.floor(((txs * this.target) / roundMs) * 0.8))
    else if (txs >= this.cap * 0.8 && roundMs < this.target * 0.6)
      this.cap = this.clamp(Math.ceil(this.cap * 1.5))
  }

  private clamp(x: number): number {
    return Math.min(this.max, Math.max(this.min, x))
  }
}
