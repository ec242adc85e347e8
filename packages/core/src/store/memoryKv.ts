import { StoreError } from './errors.ts'
import { checkOps, checkRange } from './checkOps.ts'
import type { KvOp, KvRange, KvStore, KvWriteOptions } from './kv.ts'

// Lowercase hex keeps byte order: comparing two hex strings compares the bytes they encode.
const hexOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
const bytesOf = (hex: string): Uint8Array => {
  const b = Buffer.from(hex, 'hex')
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
}

/** First index in sorted `keys` whose key is >= `k`. */
function lowerBound(keys: readonly string[], k: string): number {
  let lo = 0
  let hi = keys.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (keys[mid]! < k) lo = mid + 1
    else hi = mid
  }
  return lo
}

/**
 * An in-memory KvStore with the same semantics as the LevelDB one (ordered keys, atomic batches,
 * iterators that see the data as it was when they started). For tests and throwaway nodes.
 */
export function openMemoryKv(): KvStore {
  const data = new Map<string, Uint8Array>()
  let sorted: string[] | null = []
  let closed = false

  const live = (): void => {
    if (closed) throw new StoreError('STORE_CLOSED', 'store is closed')
  }
  const sortedKeys = (): string[] => {
    if (sorted === null) sorted = [...data.keys()].sort()
    return sorted
  }

  return {
    async get(key: Uint8Array): Promise<Uint8Array | undefined> {
      live()
      if (!(key instanceof Uint8Array)) throw new StoreError('STORE_BAD_INPUT', 'key: expected bytes')
      return data.get(hexOf(key))?.slice()
    },
    async getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
      live()
      return keys.map((key, i) => {
        if (!(key instanceof Uint8Array))
          throw new StoreError('STORE_BAD_INPUT', `keys[${i}]: expected bytes`)
        return data.get(hexOf(key))?.slice()
      })
    },
    async write(ops: readonly KvOp[], _options?: KvWriteOptions): Promise<void> {
      live()
      checkOps(ops)
      for (const op of ops) {
        const k = hexOf(op.key)
        if (op.type === 'put') {
          if (!data.has(k)) sorted = null
          data.set(k, op.value.slice())
        } else if (data.delete(k)) {
          sorted = null
        }
      }
    },
    iterate(range: KvRange): AsyncIterable<[Uint8Array, Uint8Array]> {
      live()
      checkRange(range)
      const keys = sortedKeys()
      const from = range.gte ? lowerBound(keys, hexOf(range.gte)) : 0
      const to = range.lt ? lowerBound(keys, hexOf(range.lt)) : keys.length
      let slice = keys.slice(from, Math.max(from, to))
      if (range.reverse) slice.reverse()
      if (range.limit !== undefined && range.limit >= 0) slice = slice.slice(0, range.limit)
      // Snapshot now: later writes must not show up in an iterator that already started.
      const entries = slice.map((k) => [k, data.get(k)!] as const)
      return {
        async *[Symbol.asyncIterator]() {
          for (const [k, v] of entries) {
            live()
            yield [bytesOf(k), v.slice()] as [Uint8Array, Uint8Array]
          }
        },
      }
    },
    // Deleted entries leave the map at once: nothing to reclaim.
    async compact(range: { gte: Uint8Array; lt: Uint8Array }): Promise<void> {
      live()
      checkRange(range)
    },
    async close(): Promise<void> {
      closed = true
      data.clear()
      sorted = []
    },
  }
}
