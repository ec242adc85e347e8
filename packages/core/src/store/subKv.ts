import { StoreError } from './errors.ts'
import { type KvOp, type KvRange, type KvStore, type KvWriteOptions, prefixEnd } from './kv.ts'

/**
 * A view of one namespace of `kv`: every key is stored under `prefix` (e.g. `STORE_PREFIX.journal`
 * for the consensus journal), and iteration never leaves it. `close()` closes the view only; the
 * owner of `kv` closes it.
 */
export function subKv(kv: KvStore, prefix: number | Uint8Array): KvStore {
  const pre = typeof prefix === 'number' ? Uint8Array.of(prefix) : Uint8Array.from(prefix)
  if (pre.length === 0) throw new StoreError('STORE_BAD_INPUT', 'prefix: must not be empty')
  const end = prefixEnd(pre)
  let closed = false
  const live = (): void => {
    if (closed) throw new StoreError('STORE_CLOSED', 'store is closed')
  }
  const wrap = (key: Uint8Array): Uint8Array => {
    if (!(key instanceof Uint8Array)) throw new StoreError('STORE_BAD_INPUT', 'key: expected bytes')
    const k = new Uint8Array(pre.length + key.length)
    k.set(pre)
    k.set(key, pre.length)
    return k
  }
  return {
    async get(key) {
      live()
      return kv.get(wrap(key))
    },
    async getMany(keys) {
      live()
      return kv.getMany(keys.map(wrap))
    },
    async write(ops: readonly KvOp[], options?: KvWriteOptions) {
      live()
      if (!Array.isArray(ops)) throw new StoreError('STORE_BAD_INPUT', 'batch: expected an array of ops')
      return kv.write(
        ops.map((op) =>
          op?.type === 'put'
            ? { type: 'put', key: wrap(op.key), value: op.value }
            : { ...op, key: wrap(op?.key) },
        ),
        options,
      )
    },
    iterate(range: KvRange) {
      live()
      const inner: KvRange = { gte: range.gte ? wrap(range.gte) : pre }
      const lt = range.lt ? wrap(range.lt) : end
      if (lt) inner.lt = lt
      if (range.reverse) inner.reverse = true
      if (range.limit !== undefined) inner.limit = range.limit
      if (range.keysOnly) inner.keysOnly = true
      const source = kv.iterate(inner)
      return {
        async *[Symbol.asyncIterator]() {
          for await (const [k, v] of source) yield [k.subarray(pre.length), v] as [Uint8Array, Uint8Array]
        },
      }
    },
    async close() {
      closed = true
    },
  }
}
