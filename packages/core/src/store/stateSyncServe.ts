import { STORE_PREFIX, bytesKey, heightKey, namespace, readU64 } from './keys.ts'
import type { KvStore } from './kv.ts'
import { UNDO_PREFIX, decodeUndo } from './rollback.ts'

const ZERO = Uint8Array.of(0)

// What a node serves to a peer that state-syncs from it: everything is read from the store per
// request (no state kept per client), each answer bounded in entries and bytes.

/** The stored pages under `hashes` (32 bytes each), in order; undefined where none is stored. */
export async function readStatePages(
  kv: KvStore,
  hashes: readonly Uint8Array[],
): Promise<(Uint8Array | undefined)[]> {
  return kv.getMany(hashes.map((h) => bytesKey(STORE_PREFIX.stateNode, h)))
}

/** A page of candidate keys for a syncing peer, and the cursor to continue from. */
export interface StateKeysPage {
  keys: Uint8Array[]
  /**
   * Where to continue: `['latest', lastKey]` while latest keys remain, then `['deleted', height]` through
   * the rollback records above the synced height, undefined when all were sent.
   */
  next: StateKeysCursor | undefined
}

export type StateKeysCursor = ['latest', Uint8Array | null] | ['deleted', number]

/**
 * Keys that may belong to the state at `height` (at or below this store's head): the latest keys (`V`, in
 * order from `cursor`), then the keys deleted by the blocks above `height` (their rollback records,
 * `U`): every key of the state at `height` is in one of the two, as each block writes its deletes and
 * their record in one batch. At most `maxKeys` keys and about `maxBytes` key bytes per call.
 */
export async function readStateKeys(
  kv: KvStore,
  height: number,
  cursor: StateKeysCursor,
  maxKeys: number,
  maxBytes: number,
): Promise<StateKeysPage> {
  const keys: Uint8Array[] = []
  let bytes = 0
  if (cursor[0] === 'latest') {
    const ns = namespace(STORE_PREFIX.stateValue)
    const after = cursor[1]
    // The first key after `after` is `after || 0x00` (the range has no exclusive bound).
    const range =
      after === null
        ? ns
        : { gte: bytesKey(STORE_PREFIX.stateValue, Buffer.concat([after, ZERO])), lt: ns.lt }
    let last: Uint8Array | undefined
    for await (const [k] of kv.iterate({ ...range, limit: maxKeys, keysOnly: true })) {
      last = k.slice(1)
      keys.push(last)
      bytes += last.length
      if (bytes >= maxBytes) break
    }
    if (last !== undefined && keys.length >= 1 && (keys.length >= maxKeys || bytes >= maxBytes))
      return { keys, next: ['latest', last] }
    cursor = ['deleted', height + 1]
  }
  for await (const [k, v] of kv.iterate({
    gte: heightKey(UNDO_PREFIX, Math.max(cursor[1], height + 1)),
    lt: Uint8Array.of(UNDO_PREFIX + 1),
  })) {
    const h = readU64(k, 1)
    // Whole records only: a cursor is a height.
    if (keys.length > 0 && (keys.length >= maxKeys || bytes >= maxBytes))
      return { keys, next: ['deleted', h] }
    for (const key of decodeUndo(v, h)) {
      keys.push(key)
      bytes += key.length
    }
  }
  return { keys, next: undefined }
}
