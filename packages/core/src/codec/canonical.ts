import type { Value } from './msgpack.ts'

/**
 * The fast path of strict decoding: one pass over the bytes that builds the value and checks, as it
 * goes, that the bytes are exactly what the engine's encoder writes for that value (so no re-encoding
 * is needed). It accepts only the canonical grammar below and gives up (`NOT_FAST`) on anything else,
 * including every defect: the caller then runs the full decode-check-re-encode path, which decides
 * whether to refuse and with which code. So an input the fast path accepts is one the full path
 * accepts with an equal value, and every other input gets the full path's answer.
 *
 * Canonical grammar (msgpackr with the engine's options, see `msgpack.ts`):
 * - nil c0, false c2, true c3;
 * - integers in the shortest form: fixint 0..127, uint8 128..255, uint16, uint32, negative fixint
 *   -32..-1, int8 -128..-33, int16, int32; a safe integer outside the 32-bit ranges is a float64 (cb);
 *   no uint64/int64, no float32, no float64 that is not such an integer (no -0);
 * - strings and byte strings with the shortest length header; strings that are not ASCII are checked
 *   one by one against the encoder (its handling of unusual UTF-8 is the rule);
 * - arrays and maps with the shortest length header; map keys are strings, no duplicates, no
 *   `__proto__`, in the order JavaScript enumerates the decoded object (array-index keys first);
 * - containers nested at most `maxDepth` (the top level is 1); nothing after the value.
 */
export const NOT_FAST: unique symbol = Symbol('not fast')

/** Thrown inside the decoder to leave it; never escapes this module. */
class GiveUp {}
const GIVE_UP = new GiveUp()

// Node's own latin1 decoder (the same for ASCII, and much faster than building the string in JS).
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice: (start: number, end: number) => string })
  .latin1Slice

let src: Uint8Array = new Uint8Array(0)
let pos = 0
let end = 0
let view: DataView | undefined
let limit = 0
let checkString: (bytes: Uint8Array) => string | undefined = () => undefined

/**
 * Decodes `bytes` if they are in canonical form within the grammar above, else returns NOT_FAST.
 * `exact(bytes)` decides a non-ASCII string given its whole encoding (header included): the string,
 * or undefined if the encoder would not write exactly those bytes for it.
 */
export function decodeCanonical(
  bytes: Uint8Array,
  maxDepth: number,
  exact: (bytes: Uint8Array) => string | undefined,
): Value | typeof NOT_FAST {
  src = bytes
  pos = 0
  end = bytes.length
  view = undefined
  limit = maxDepth
  checkString = exact
  try {
    const v = read(1)
    return pos === end ? v : NOT_FAST
  } catch (err) {
    if (err === GIVE_UP) return NOT_FAST
    throw err
  } finally {
    src = new Uint8Array(0)
    checkString = () => undefined
  }
}

function need(n: number): void {
  if (pos + n > end) throw GIVE_UP
}

function u8(): number {
  need(1)
  return src[pos++]!
}

function u16(): number {
  need(2)
  const v = (src[pos]! << 8) | src[pos + 1]!
  pos += 2
  return v
}

function u32(): number {
  need(4)
  const v = src[pos]! * 0x1000000 + ((src[pos + 1]! << 16) | (src[pos + 2]! << 8) | src[pos + 3]!)
  pos += 4
  return v
}

function read(depth: number): Value {
  const t = u8()
  if (t < 0x80) return t
  if (t >= 0xe0) return t - 0x100
  if (t >= 0xa0 && t < 0xc0) return str(t - 0xa0, pos - 1)
  if (t < 0x90) return map(t - 0x80, depth)
  if (t < 0xa0) return array(t - 0x90, depth)
  switch (t) {
    case 0xc0:
      return null
    case 0xc2:
      return false
    case 0xc3:
      return true
    case 0xc4:
      return bin(u8())
    case 0xc5: {
      const n = u16()
      if (n < 0x100) throw GIVE_UP
      return bin(n)
    }
    case 0xc6: {
      const n = u32()
      if (n < 0x10000) throw GIVE_UP
      return bin(n)
    }
    case 0xcb: {
      need(8)
      view ??= new DataView(src.buffer, src.byteOffset, src.byteLength)
      const v = view.getFloat64(pos)
      pos += 8
      // The encoder writes float64 only for numbers outside both 32-bit integer ranges (-0 is not).
      if (!Number.isSafeInteger(v) || v >>> 0 === v || v >> 0 === v) throw GIVE_UP
      return v
    }
    case 0xcc: {
      const v = u8()
      if (v < 0x80) throw GIVE_UP
      return v
    }
    case 0xcd: {
      const v = u16()
      if (v < 0x100) throw GIVE_UP
      return v
    }
    case 0xce: {
      const v = u32()
      if (v < 0x10000) throw GIVE_UP
      return v
    }
    case 0xd0: {
      const v = (u8() << 24) >> 24
      if (v >= -0x20) throw GIVE_UP
      return v
    }
    case 0xd1: {
      const v = (u16() << 16) >> 16
      if (v >= -0x80) throw GIVE_UP
      return v
    }
    case 0xd2: {
      const v = u32() | 0
      if (v >= -0x8000) throw GIVE_UP
      return v
    }
    case 0xd9: {
      const n = u8()
      if (n < 0x20) throw GIVE_UP
      return str(n, pos - 2)
    }
    case 0xda: {
      const n = u16()
      if (n < 0x100) throw GIVE_UP
      return str(n, pos - 3)
    }
    case 0xdb: {
      const n = u32()
      if (n < 0x10000) throw GIVE_UP
      return str(n, pos - 5)
    }
    case 0xdc: {
      const n = u16()
      if (n < 0x10) throw GIVE_UP
      return array(n, depth)
    }
    case 0xdd: {
      const n = u32()
      if (n < 0x10000) throw GIVE_UP
      return array(n, depth)
    }
    case 0xde: {
      const n = u16()
      if (n < 0x10) throw GIVE_UP
      return map(n, depth)
    }
    case 0xdf: {
      const n = u32()
      if (n < 0x10000) throw GIVE_UP
      return map(n, depth)
    }
    default:
      // 64-bit integers, float32, extensions and the never-used byte are never canonical.
      throw GIVE_UP
  }
}

/** A string of `n` bytes at `pos`, whose header started at `start`. */
function str(n: number, start: number): string {
  need(n)
  const from = pos
  pos += n
  for (let i = from; i < pos; i++) {
    if (src[i]! >= 0x80) {
      const s = checkString(src.subarray(start, pos))
      if (s === undefined) throw GIVE_UP
      return s
    }
  }
  return n === 0 ? '' : latin1Slice.call(src, from, pos)
}

function bin(n: number): Uint8Array {
  need(n)
  const b = src.subarray(pos, (pos += n))
  return b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
}

function array(n: number, depth: number): Value[] {
  if (depth > limit) throw GIVE_UP
  // Each element takes at least one byte: a length larger than what is left is not worth allocating.
  if (n > end - pos) throw GIVE_UP
  const out: Value[] = new Array(n)
  for (let i = 0; i < n; i++) out[i] = read(depth + 1)
  return out
}

function map(n: number, depth: number): { [key: string]: Value } {
  if (depth > limit) throw GIVE_UP
  if (2 * n > end - pos) throw GIVE_UP
  const out: { [key: string]: Value } = {}
  let keys: string[] | undefined
  for (let i = 0; i < n; i++) {
    const t = u8()
    let k: string
    if (t >= 0xa0 && t < 0xc0) k = str(t - 0xa0, pos - 1)
    else if (t === 0xd9) {
      const len = u8()
      if (len < 0x20) throw GIVE_UP
      k = str(len, pos - 2)
    } else if (t === 0xda) {
      const len = u16()
      if (len < 0x100) throw GIVE_UP
      k = str(len, pos - 3)
    } else throw GIVE_UP
    if (k === '__proto__' || Object.hasOwn(out, k)) throw GIVE_UP
    out[k] = read(depth + 1)
    // Keys that look like array indices are enumerated first, in numeric order, whatever the order in
    // which they were set: then the bytes must already be in that order.
    const c = k.charCodeAt(0)
    if (keys === undefined && c >= 0x30 && c <= 0x39) keys = []
    keys?.push(k)
  }
  if (keys !== undefined) {
    const order = Object.keys(out)
    // `keys` holds the keys from the first index-like one on; they must be the tail of `order`.
    const skip = order.length - keys.length
    for (let i = 0; i < keys.length; i++) if (order[skip + i] !== keys[i]) throw GIVE_UP
  }
  return out
}
