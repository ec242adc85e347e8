/** One write in an atomic batch. Keys and values are byte strings; keys order lexicographically. */
export type KvOp = { type: 'put'; key: Uint8Array; value: Uint8Array } | { type: 'del'; key: Uint8Array }

/** A key range for iteration: `gte <= key < lt`, ascending unless `reverse`, at most `limit` entries. */
export interface KvRange {
  gte?: Uint8Array
  lt?: Uint8Array
  reverse?: boolean
  limit?: number
  /**
   * Only the keys are wanted: a store may then hand back empty values instead of reading them
   * (LevelDB does; the in-memory store hands back the values anyway).
   */
  keysOnly?: boolean
}

export interface KvWriteOptions {
  /** Flush to stable storage before the promise resolves (fsync). Block commits always set it. */
  sync?: boolean
}

/**
 * The ordered key-value store under every persistent structure of the engine (LevelDB on disk, or
 * memory in tests). Namespaces are key prefixes (see `STORE_PREFIX`), so one `write` can change
 * several of them atomically: either every op of the batch is visible afterwards or none is.
 *
 * Values returned are fresh plain `Uint8Array`s that the caller may keep. After `close()` every call
 * rejects with `STORE_CLOSED`.
 *
 * @example
 * const kv = await openLevelKv('/var/lib/cityledger/db')
 * await kv.write([{ type: 'put', key, value }], { sync: true })
 * for await (const [k, v] of kv.iterate({ gte: prefix, lt: prefixEnd(prefix) })) use(k, v)
 */
export interface KvStore {
  get(key: Uint8Array): Promise<Uint8Array | undefined>
  /** Values in the order of `keys`, `undefined` where absent. */
  getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]>
  /** Applies every op in order, atomically. Later ops on the same key win. */
  write(ops: readonly KvOp[], options?: KvWriteOptions): Promise<void>
  iterate(range: KvRange): AsyncIterable<[Uint8Array, Uint8Array]>
  /**
   * Reclaims the space of deleted entries in `gte <= key < lt` (LevelDB: a manual compaction of that
   * range, so the folder shrinks now rather than whenever background compaction reaches it). Optional:
   * a store without it frees space by itself (memory) or never. Slow on large ranges; no other effect.
   */
  compact?(range: { gte: Uint8Array; lt: Uint8Array }): Promise<void>
  close(): Promise<void>
}

/** The smallest key greater than every key starting with `prefix` (undefined for an all-0xff prefix). */
export function prefixEnd(prefix: Uint8Array): Uint8Array | undefined {
  const end = Uint8Array.from(prefix)
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] !== 0xff) {
      end[i]! += 1
      return end.subarray(0, i + 1)
    }
  }
  return undefined
}
