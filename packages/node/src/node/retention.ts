import { type ChainStore, isCityError } from '@cityledger/core'
import type { Logger } from '../log/index.ts'

/** Blocks between two prunes at most: each prune is then a few small batches, not one per commit. */
export const PRUNE_EVERY_BLOCKS = 64
/**
 * Blocks between two state-history sweeps at most (`ChainStore.pruneState`): a sweep walks the pages of
 * every kept version and lists all pages, so it runs far less often than the block prune.
 */
export const SWEEP_STATE_EVERY_BLOCKS = 1024

/** What `BlockRetention` needs. */
export interface BlockRetentionOptions {
  store: Pick<ChainStore, 'prune' | 'prunedBelow' | 'pruneState'>
  /** `store.retainBlocks`: blocks of history kept; 0 = archive (never prune). */
  retainBlocks: number
  logger: Logger
  /** Blocks between prunes (default `PRUNE_EVERY_BLOCKS`). */
  every?: number
  /** Blocks between state-history sweeps (default `SWEEP_STATE_EVERY_BLOCKS`). */
  sweepEvery?: number
  /** Awaited before each prune (the node builds its validator history from what the prune deletes). */
  beforePrune?: () => Promise<void>
  /** A height to keep, with everything above it, whatever `retainBlocks` says (offerHolds.ts). */
  holdFrom?: () => number | undefined
}

/**
 * Keeps the last `retainBlocks` blocks of history (at least 2: the store never prunes the head or the
 * block below it). `committed` is called after each commit; a prune runs in the background, at most
 * one at a time and at most once every `every` blocks, and never fails the commit: an error is
 * logged and the next due prune tries again. A prune cut short by the store closing is not an error.
 * After a prune, at most once every `sweepEvery` blocks, the state history of the pruned heights goes
 * too (`pruneState`: the tree pages only pruned versions reached), in the same background run.
 *
 * @example
 * const retention = new BlockRetention({ store, retainBlocks: 10_000, logger })
 * onCommitted: (c) => retention.committed(c.block.header.height)
 */
export class BlockRetention {
  readonly #o: BlockRetentionOptions
  #next = 0
  #nextSweep = 0
  #running: Promise<void> | undefined

  constructor(o: BlockRetentionOptions) {
    this.#o = o
  }

  /** The prune in progress, if any (tests). */
  get running(): Promise<void> | undefined {
    return this.#running
  }

  committed(height: number): void {
    const { store, retainBlocks, logger } = this.#o
    if (retainBlocks <= 0 || this.#running || height < this.#next) return
    const keepFrom = Math.min(height - retainBlocks + 1, height - 1, this.#o.holdFrom?.() ?? height)
    // Only once there is a block to prune (height 0 has no block, only its state root).
    if (keepFrom <= Math.max(1, store.prunedBelow)) return
    this.#next = height + (this.#o.every ?? PRUNE_EVERY_BLOCKS)
    const started = Date.now()
    const sweep = height >= this.#nextSweep
    if (sweep) this.#nextSweep = height + (this.#o.sweepEvery ?? SWEEP_STATE_EVERY_BLOCKS)
    this.#running = Promise.resolve(this.#o.beforePrune?.())
      .then(() => store.prune(keepFrom))
      .then(async (r) => {
        logger.debug(
          { prunedBelow: r.prunedBelow, blocks: r.blocks, deleted: r.deleted, ms: Date.now() - started },
          'pruned block history',
        )
        if (!sweep) return
        const at = Date.now()
        const s = await store.pruneState()
        logger.debug({ ...s, ms: Date.now() - at }, 'pruned state history')
      })
      .then(
        () => {},
        (err) => {
          if (isCityError(err, 'STORE_CLOSED')) logger.debug({ keepFrom }, 'prune ended: the store closed')
          else logger.warn({ err: String(err), keepFrom, height }, 'pruning history failed')
        },
      )
      .finally(() => {
        this.#running = undefined
      })
  }
}
