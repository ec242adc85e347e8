import { StoreError } from './errors.ts'
import type { KvOp, KvRange } from './kv.ts'

/** Refuses a malformed batch before anything is written, naming the first bad op. */
export function checkOps(ops: readonly KvOp[]): void {
  if (!Array.isArray(ops)) throw new StoreError('STORE_BAD_INPUT', 'batch: expected an array of ops')
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as KvOp | undefined
    if (op === null || typeof op !== 'object')
      throw new StoreError('STORE_BAD_INPUT', `batch[${i}]: not an op`)
    if (!(op.key instanceof Uint8Array))
      throw new StoreError('STORE_BAD_INPUT', `batch[${i}].key: expected bytes`)
    if (op.type === 'put') {
      if (!(op.value instanceof Uint8Array))
        throw new StoreError('STORE_BAD_INPUT', `batch[${i}].value: expected bytes`)
    } else if (op.type !== 'del') {
      throw new StoreError('STORE_BAD_INPUT', `batch[${i}].type: expected put or del`)
    }
  }
}

export function checkRange(range: KvRange): void {
  if (range === null || typeof range !== 'object')
    throw new StoreError('STORE_BAD_INPUT', 'range: expected an object')
  if (range.gte !== undefined && !(range.gte instanceof Uint8Array))
    throw new StoreError('STORE_BAD_INPUT', 'range.gte: expected bytes')
  if (range.lt !== undefined && !(range.lt instanceof Uint8Array))
    throw new StoreError('STORE_BAD_INPUT', 'range.lt: expected bytes')
  if (range.limit !== undefined && !(Number.isSafeInteger(range.limit) && range.limit >= -1)) {
    throw new StoreError('STORE_BAD_INPUT', 'range.limit: expected an integer >= 0')
  }
}
