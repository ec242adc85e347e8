import { Packr } from 'msgpackr'
import { CityError } from '../errors/index.ts'
import { NOT_FAST, decodeCanonical } from './canonical.ts'

/**
 * The values that may travel: msgpack nil, bool, safe integers, UTF-8 strings, byte strings, arrays and
 * maps with string keys. No floats (money is never floating point), no extensions, no undefined.
 */
export type Value = null | boolean | number | string | Uint8Array | Value[] | { [key: string]: Value }

export type CodecErrorCode = 'TOO_LARGE' | 'MALFORMED' | 'TRAILING_BYTES' | 'NON_CANONICAL' | 'BAD_FIELD'

export class CodecError extends CityError<CodecErrorCode> {
  constructor(code: CodecErrorCode, message: string, details: Record<string, unknown> = {}) {
    // Bytes that fail to decode always come from outside: whoever sent them is at fault.
    super(code, message, details, true)
    this.name = 'CodecError'
  }
}

export interface DecodeLimits {
  /** Refuse before decoding when the input is larger than this. */
  maxBytes: number
  /** Deepest nesting of arrays and maps (the top level counts as 1). */
  maxDepth?: number
}

// One configuration for the whole engine: the canonical form of a value is what this encoder writes.
const packr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  variableMapSize: true,
  int64AsType: 'number',
  moreTypes: false,
  bundleStrings: false,
} as ConstructorParameters<typeof Packr>[0])

/** Canonical msgpack bytes of `value` (a fresh plain Uint8Array). */
export function encode(value: unknown): Uint8Array {
  // A copy, so the result does not keep msgpackr's shared output buffer alive. Copied by the typed-array
  // constructor rather than ArrayBuffer.prototype.slice, which the SES shims replace with a slower one.
  return new Uint8Array(packr.pack(value))
}

/**
 * Strict decoding: the size cap is checked first, then the bytes are decoded, every value is checked
 * against `Value`, and the result must re-encode to exactly the input (no trailing bytes, no
 * alternative encodings, no duplicate map keys). Throws CodecError; never returns a partial value.
 */
export function decodeStrict(bytes: Uint8Array, limits: DecodeLimits): Value {
  if (!(bytes instanceof Uint8Array)) throw new CodecError('MALFORMED', 'input is not a byte array')
  if (bytes.length > limits.maxBytes) {
    throw new CodecError('TOO_LARGE', `input is ${bytes.length} bytes, limit ${limits.maxBytes}`, {
      size: bytes.length,
      limit: limits.maxBytes,
    })
  }
  if (bytes.length === 0) throw new CodecError('MALFORMED', 'empty input')
  // Canonical input (all that honest nodes and clients send) decodes in one pass; anything else takes
  // the full path below, which decides whether and why to refuse it.
  const fast = decodeCanonical(bytes, limits.maxDepth ?? 16, exactString)
  if (fast !== NOT_FAST) return fast
  return decodeFull(bytes, limits)
}

/**
 * A non-ASCII string, given its whole encoding: decoded and re-encoded by msgpackr, exactly as the
 * full path treats it inside a larger value (undefined when the re-encoding differs).
 */
function exactString(enc: Uint8Array): string | undefined {
  const buf = Buffer.from(enc.buffer, enc.byteOffset, enc.byteLength)
  let s: unknown
  try {
    s = packr.unpack(buf)
  } catch {
    return undefined
  }
  return typeof s === 'string' && packr.pack(s).equals(buf) ? s : undefined
}

/** Decode, check every value, re-encode and compare: the definition of strict decoding. */
function decodeFull(bytes: Uint8Array, limits: DecodeLimits): Value {
  let raw: unknown
  try {
    raw = packr.unpack(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
  } catch (err) {
    const msg = (err as Error).message ?? String(err)
    if (/end of buffer not reached|not reached/i.test(msg)) {
      throw new CodecError('TRAILING_BYTES', 'bytes remain after the value')
    }
    throw new CodecError('MALFORMED', `not valid msgpack: ${msg}`)
  }
  const value = checkValue(raw, limits.maxDepth ?? 16, 1, '$')
  const again = packr.pack(value)
  if (
    again.length !== bytes.length ||
    !again.equals(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
  ) {
    if (
      again.length < bytes.length &&
      Buffer.from(bytes.buffer, bytes.byteOffset, again.length).equals(again)
    ) {
      throw new CodecError('TRAILING_BYTES', 'bytes remain after the value')
    }
    throw new CodecError('NON_CANONICAL', 'value is not in canonical encoding')
  }
  return value
}

/**
 * Checks that an in-memory value is a `Value` (what may be encoded and decoded back): safe integers
 * only, no undefined, no class instances, nested at most `maxDepth`. Throws CodecError naming the path.
 */
export function assertValue(v: unknown, maxDepth = 32, path = '$'): asserts v is Value {
  checkValue(v, maxDepth, 1, path)
}

function checkValue(v: unknown, maxDepth: number, depth: number, path: string): Value {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new CodecError('BAD_FIELD', `${path}: numbers must be safe integers`)
    return v
  }
  if (v instanceof Uint8Array) {
    return v.constructor === Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
  }
  if (depth > maxDepth) throw new CodecError('BAD_FIELD', `${path}: nested deeper than ${maxDepth}`)
  if (Array.isArray(v)) {
    const out: Value[] = new Array(v.length)
    for (let i = 0; i < v.length; i++) out[i] = checkValue(v[i], maxDepth, depth + 1, `${path}[${i}]`)
    return out
  }
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    const out: { [key: string]: Value } = {}
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (k === '__proto__') throw new CodecError('BAD_FIELD', `${path}: forbidden key __proto__`)
      out[k] = checkValue(x, maxDepth, depth + 1, `${path}.${k}`)
    }
    return out
  }
  throw new CodecError('BAD_FIELD', `${path}: unsupported type ${typeof v}`)
}

// Field readers for fixed-order arrays: each names the field it rejects.

export function expectArray(v: Value, length: number, what: string): Value[] {
  if (!Array.isArray(v) || v.length !== length) {
    throw new CodecError('BAD_FIELD', `${what}: expected an array of ${length} fields`)
  }
  return v
}

export function expectUint(v: Value | undefined, field: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || v < 0 || v > max) {
    throw new CodecError('BAD_FIELD', `${field}: expected an integer in 0..${max}`, { field })
  }
  return v
}

export function expectBytes(
  v: Value | undefined,
  field: string,
  length?: number,
  maxLength?: number,
): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new CodecError('BAD_FIELD', `${field}: expected bytes`, { field })
  if (length !== undefined && v.length !== length) {
    throw new CodecError('BAD_FIELD', `${field}: expected ${length} bytes, got ${v.length}`, { field })
  }
  if (maxLength !== undefined && v.length > maxLength) {
    throw new CodecError('BAD_FIELD', `${field}: longer than ${maxLength} bytes`, { field })
  }
  return v
}

export function expectString(v: Value | undefined, field: string, pattern: RegExp): string {
  if (typeof v !== 'string' || !pattern.test(v)) {
    throw new CodecError('BAD_FIELD', `${field}: expected a string matching ${pattern}`, { field })
  }
  return v
}
