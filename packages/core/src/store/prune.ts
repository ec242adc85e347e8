import { CityError } from '../errors/index.ts'
import { corrupt } from './errors.ts'
import { STORE_PREFIX, heightKey, metaKey, readU64, u64 } from './keys.ts'
import type { KvOp, KvStore } from './kv.ts'
import { decodeStored } from './storedValues.ts'
import { pushBlockDeletes } from './blockDeletes.ts'

// Pruning of block history: everything a block indexes (B, H, C, T, R, E, X, U and its state root S)
// goes for the heights below `keepFrom`. The state itself (tree pages N, latest values V) stays: the
// head's state and proofs are untouched, and pages are shared between versions anyway.

/**
 * `M prunedBelow` -> u64: the first height whose block history is kept. Absent (read as 0) in a store
 * that never pruned. Every height below it is gone, every height from it on is intact: each prune
 * batch deletes a run of heights and moves this mark past them atomically.
 */
export const PRUNED_BELOW_KEY = metaKey('prunedBelow')

/** Heights one prune batch covers at most (a batch also stops early at `MAX_BATCH_OPS`). */
export const PRUNE_BATCH_HEIGHTS = 256
/** Deletes per batch before it is written (a batch always takes at least one whole height). */
export const MAX_BATCH_OPS = 50_000

/** Heights of one namespace compacted at a time once their deletes are written. */
export const COMPACT_HEIGHTS = 4096

/** Codes of pruning: a read of a pruned height, and a `keepFrom` that may not be pruned to. */
export type PruneErrorCode = 'PRUNED' | 'PRUNE_BAD_HEIGHT'

/** What one `pruneBlocks` call did. */
export interface PruneResult {
  /** The first retained height before the call. */
  from: number
  /** The first retained height now (`keepFrom`, or `from` when that was already higher). */
  prunedBelow: number
  /** Blocks whose history was deleted by this call. */
  blocks: number
  /** Kv entries deleted. */
  deleted: number
}

/** The first retained height recorded in `kv` (0: never pruned). */
export async function readPrunedBelow(kv: KvStore): Promise<number> {
  const v = await kv.get(PRUNED_BELOW_KEY)
  if (v === undefined) return 0
  if (v.length !== 8) throw corrupt('metadata prunedBelow', `${v.length} bytes instead of 8`)
  return readU64(v, 0)
}

/**
 * Throws `PRUNED` when `height` (an integer) is below the first retained height `prunedBelow`; `what`
 * names the read ("block", "certificate"...). Other heights pass: the caller's own checks apply.
 */
export function checkRetained(height: number, prunedBelow: number, what: string): void {
  if (Number.isSafeInteger(height) && height >= 0 && height < prunedBelow)
    throw new CityError<PruneErrorCode>(
      'PRUNED',
      `${what} of height ${height} was pruned: this store keeps heights from ${prunedBelow} on`,
      { height, prunedBelow },
    )
}

/** What `pruneBlocks` needs from its caller, the store that owns `kv`. */
export interface PruneContext {
  kv: KvStore
  /** The head height now (it only grows while a prune runs). */
  height(): number
  /**
   * Runs one batch under the store's lock, so that no batch interleaves with a commit (commits may
   * run between batches). Rejects once the store is closed, which ends the prune there.
   */
  serial<T>(fn: () => Promise<T>): Promise<T>
  /**
   * Hears each batch's new mark just before its write (and the old one again if the write fails), so
   * a reader that checks the mark after reading can tell pruned data from damage.
   */
  setMark(prunedBelow: number): void
}

/**
 * Deletes the block history of the heights below `keepFrom` (see the top of this file), in batches of
 * at most `PRUNE_BATCH_HEIGHTS` heights, each moving `prunedBelow` in the same atomic synced write, then
 * compacts the deleted ranges when `kv` can (`KvStore.compact`). `keepFrom` at or below the current
 * mark does nothing (idempotent; concurrent calls share the work). The head and the block below it are
 * never pruned (rollback and the node's checkpoint need them): `keepFrom > height() - 1` is
 * `PRUNE_BAD_HEIGHT`, and nothing is written.
 */
export async function pruneBlocks(ctx: PruneContext, keepFrom: number): Promise<PruneResult> {
  const { kv } = ctx
  if (!Number.isSafeInteger(keepFrom) || keepFrom < 0)
    throw new CityError<PruneErrorCode>(
      'PRUNE_BAD_HEIGHT',
      `keepFrom: expected a height (integer >= 0), got ${String(keepFrom)}`,
      { field: 'keepFrom' },
    )
  const height = ctx.height()
  if (keepFrom > height - 1)
    throw new CityError<PruneErrorCode>(
      'PRUNE_BAD_HEIGHT',
      `keepFrom: ${keepFrom} would prune the head or the block below it; at most ${height - 1} (head ${height})`,
      { field: 'keepFrom', keepFrom, max: height - 1 },
    )
  let from: number | undefined
  let mark = -1
  let deleted = 0
  while (mark < keepFrom) {
    // The mark is read under the lock: another prune may have moved it since the last batch.
    const step = await ctx.serial(async () => {
      const at = await readPrunedBelow(kv)
      if (at >= keepFrom) return { at, to: at, ops: 0 }
      const ops: KvOp[] = []
      let h = at
      while (h < keepFrom && h - at < PRUNE_BATCH_HEIGHTS && (h === at || ops.length < MAX_BATCH_OPS)) {
        await pushHeightOps(kv, ops, h)
        h++
      }
      const n = ops.length
      ops.push({ type: 'put', key: PRUNED_BELOW_KEY, value: u64(h) })
      // The mark moves before the data goes: a read that finds its data missing then sees the new mark.
      ctx.setMark(h)
      try {
        await kv.write(ops, { sync: true })
      } catch (err) {
        ctx.setMark(at)
        throw err
      }
      return { at, to: h, ops: n }
    })
    from ??= step.at
    mark = step.to
    deleted += step.ops
  }
  from ??= mark
  // The namespaces keyed by height are contiguous ranges, cheap to compact. H, T and X are keyed by
  // hash or term, so their deleted keys are spread over the whole namespace: compacting those would
  // rewrite all of it each time; LevelDB's own compaction drops their deletes as it goes. In pieces
  // under the lock: `close()` waits for one piece at most, and a commit never waits long.
  const compact = kv.compact?.bind(kv)
  if (compact)
    for (let lo = from; lo < mark; lo += COMPACT_HEIGHTS) {
      const hi = Math.min(mark, lo + COMPACT_HEIGHTS)
      for (const prefix of HEIGHT_KEYED)
        await ctx.serial(() => compact({ gte: heightKey(prefix, lo), lt: heightKey(prefix, hi) }))
    }
  return { from, prunedBelow: mark, blocks: Math.max(0, mark - Math.max(from, 1)), deleted }
}

const HEIGHT_KEYED = [
  STORE_PREFIX.block,
  STORE_PREFIX.certificate,
  STORE_PREFIX.result,
  STORE_PREFIX.blockEvents,
  STORE_PREFIX.undo,
  STORE_PREFIX.stateRoot,
]

/** The deletes of height `h`'s block history (height 0 has only its state root). */
async function pushHeightOps(kv: KvStore, ops: KvOp[], h: number): Promise<void> {
  if (h === 0) {
    ops.push({ type: 'del', key: heightKey(STORE_PREFIX.stateRoot, h) })
    return
  }
  const bytes = await kv.get(heightKey(STORE_PREFIX.block, h))
  if (bytes === undefined) throw corrupt(`block at height ${h}`, 'missing (above the pruned heights)')
  const block = decodeStored(bytes, `block at height ${h}`, h)
  await pushBlockDeletes(kv, ops, h, block)
}
