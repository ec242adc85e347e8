import { corrupt } from './errors.ts'
import { STORE_PREFIX, bytesKey, namespace } from './keys.ts'
import type { KvOp, KvStore } from './kv.ts'
import { EMPTY, type Hash32, hashBytes, hashFromBytes } from './stateHash.ts'
import { pageRefs } from './statePage.ts'

/**
 * State history pruning. Tree pages (`N`) are content-addressed and shared between versions, so a page
 * can be deleted only when no kept version reaches it. After block history is pruned (prune.ts deletes
 * the state roots `S` below `prunedBelow` with the blocks), a sweep marks every page reachable from the
 * roots still stored, then deletes the others and compacts `N`:
 *
 * - marking walks each kept root, skipping pages already marked (consecutive versions share all but the
 *   pages along the paths a block wrote), so it costs about the pages of the kept versions;
 * - commits go on meanwhile: from the moment the roots are read (under the store's lock, so no commit
 *   falls between) the store reports the pages each commit writes (`watch`), and a page reported is
 *   never deleted, even one whose content (so hash) reappeared after being unreachable;
 * - deletes go in batches under the lock, each checked against the reported pages at that moment.
 *
 * Memory: one entry per marked page (~100 bytes), so about 100 bytes times the pages of the kept versions.
 */

/** Pages deleted per batch (each batch is one atomic write under the store's lock). */
export const SWEEP_BATCH_PAGES = 4096

/** What `sweepStatePages` needs from the store that owns `kv`. */
export interface SweepContext {
  kv: KvStore
  /** Runs `fn` under the store's commit lock; rejects once the store is closed. */
  serial<T>(fn: () => Promise<T>): Promise<T>
  /**
   * From now until `unwatch`, the store adds the hash (`Hash32`) of every page a commit writes to the
   * returned set, before the commit's write. Called under the lock.
   */
  watch(): Set<Hash32>
  unwatch(): void
}

export interface SweepResult {
  /** Distinct state roots kept (one per stored height, fewer when blocks left the state unchanged). */
  roots: number
  /** Pages reachable from them. */
  kept: number
  /** Pages deleted. */
  deleted: number
}

const pageKey = (h: Hash32): Uint8Array => bytesKey(STORE_PREFIX.stateNode, hashBytes(h))

/** Marks every page reachable from `roots` into `marked`. */
async function mark(kv: KvStore, roots: Iterable<Hash32>, marked: Set<Hash32>): Promise<void> {
  const stack: Hash32[] = []
  for (const root of roots) {
    if (root === EMPTY || marked.has(root)) continue
    stack.push(root)
    while (stack.length > 0) {
      const h = stack.pop()!
      if (marked.has(h)) continue
      const bytes = await kv.get(pageKey(h))
      if (bytes === undefined)
        throw corrupt(`state page ${Buffer.from(hashBytes(h)).toString('hex')}`, 'missing')
      marked.add(h)
      for (const r of pageRefs(bytes, h)) if (!marked.has(r)) stack.push(r)
    }
  }
}

/**
 * Deletes every tree page no stored state root reaches (see the top of this file), then compacts the
 * page namespace when `kv` can. Safe beside commits; `close()` of the store ends it at its next batch
 * (`STORE_CLOSED`), leaving every kept version whole.
 */
export async function sweepStatePages(ctx: SweepContext): Promise<SweepResult> {
  const { kv } = ctx
  const roots = new Set<Hash32>()
  const fresh = await ctx.serial(async () => {
    for await (const [, v] of kv.iterate(namespace(STORE_PREFIX.stateRoot))) {
      if (v.length !== 32) throw corrupt('state root', `${v.length} bytes instead of 32`)
      roots.add(hashFromBytes(v))
    }
    return ctx.watch()
  })
  try {
    const marked = new Set<Hash32>()
    await mark(kv, roots, marked)
    let deleted = 0
    let batch: Hash32[] = []
    const flush = async (): Promise<void> => {
      const doomed = batch
      batch = []
      deleted += await ctx.serial(async () => {
        const ops: KvOp[] = []
        for (const h of doomed) if (!fresh.has(h)) ops.push({ type: 'del', key: pageKey(h) })
        if (ops.length > 0) await kv.write(ops, { sync: false })
        return ops.length
      })
    }
    // The iterator reads a snapshot: pages written after it opened are all in `fresh` anyway.
    for await (const [k] of kv.iterate(namespace(STORE_PREFIX.stateNode))) {
      const h = hashFromBytes(k.subarray(1))
      if (marked.has(h)) continue
      batch.push(h)
      if (batch.length >= SWEEP_BATCH_PAGES) await flush()
    }
    if (batch.length > 0) await flush()
    const compact = kv.compact?.bind(kv)
    // In 16 pieces under the lock, so that a commit or `close()` never waits for all of it.
    if (compact && deleted > 0)
      for (let i = 0; i < 16; i++) {
        const gte = Uint8Array.of(STORE_PREFIX.stateNode, i << 4)
        const lt =
          i < 15
            ? Uint8Array.of(STORE_PREFIX.stateNode, (i + 1) << 4)
            : Uint8Array.of(STORE_PREFIX.stateNode + 1)
        await ctx.serial(() => compact({ gte, lt }))
      }
    return { roots: roots.size, kept: marked.size, deleted }
  } finally {
    ctx.unwatch()
  }
}
