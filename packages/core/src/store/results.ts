import { CodecError, decodeStrict, encode, expectArray, expectBytes, type Value } from '../codec/msgpack.ts'
import type { ServiceEvent, TxResult } from '../runtime/executor.ts'

/** Where a committed transaction is and how it ended (the runtime's `TxResult`). */
export interface StoredTx {
  height: number
  index: number
  result: TxResult
}

/** Largest encoded result of one transaction, or events of one block's end hooks. */
export const MAX_RESULT_BYTES = 4 * 1024 * 1024
/**
 * Nesting a stored result may have. Event data sits three levels down (result, event list, event),
 * and the runtime lets a value nest 25 levels (`sizeBound`), so 28 reads back everything it can emit.
 */
export const MAX_RESULT_DEPTH = 28
/** Nesting of one event's data that `decodeTxResult` reads back (what the store accepts). */
export const MAX_EVENT_DATA_DEPTH = MAX_RESULT_DEPTH - 3

const encodeEvents = (events: readonly ServiceEvent[]): Value[] =>
  events.map((e) => [e.service, e.name, e.data])

function decodeEvents(list: Value | undefined, field: string): ServiceEvent[] {
  if (!Array.isArray(list)) throw new CodecError('BAD_FIELD', `${field}: expected an array`)
  return list.map((e, i) => {
    const p = expectArray(e, 3, `${field}[${i}]`)
    if (typeof p[0] !== 'string' || typeof p[1] !== 'string')
      throw new CodecError('BAD_FIELD', `${field}[${i}]: expected service and name`)
    return { service: p[0], name: p[1], data: p[2]! }
  })
}

/** `[hash, code, message, [[service, name, data]...]]` as canonical msgpack (code, message: null when absent). */
export function encodeTxResult(r: TxResult): Uint8Array {
  return encode([r.hash, r.code, r.message ?? null, encodeEvents(r.events)])
}

/** Strict inverse of `encodeTxResult`; throws CodecError. */
export function decodeTxResult(bytes: Uint8Array): TxResult {
  const f = expectArray(
    decodeStrict(bytes, { maxBytes: MAX_RESULT_BYTES, maxDepth: MAX_RESULT_DEPTH }),
    4,
    'tx result',
  )
  const hash = Uint8Array.from(expectBytes(f[0], 'result.hash', 32))
  const code = f[1]
  if (code !== null && typeof code !== 'string')
    throw new CodecError('BAD_FIELD', 'result.code: expected a string or null')
  const message = f[2]
  if (message !== null && typeof message !== 'string')
    throw new CodecError('BAD_FIELD', 'result.message: expected a string or null')
  const result: TxResult = { hash, code, events: decodeEvents(f[3], 'result.events') }
  if (message !== null) result.message = message
  return result
}

/** Events of a block's end-of-block hooks as canonical msgpack. */
export function encodeBlockEvents(events: readonly ServiceEvent[]): Uint8Array {
  return encode(encodeEvents(events))
}

export function decodeBlockEvents(bytes: Uint8Array): ServiceEvent[] {
  return decodeEvents(
    decodeStrict(bytes, { maxBytes: MAX_RESULT_BYTES, maxDepth: MAX_RESULT_DEPTH }),
    'blockEvents',
  )
}
