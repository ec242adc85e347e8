// Strict decoding checks canonical form while decoding (codec/canonical.ts) instead of re-encoding every
// input. These tests hold it to the definition it replaces: decode with msgpackr, check every value,
// re-encode, and refuse unless the bytes are identical. `reference` below is that definition, as it was
// in codec/msgpack.ts; every input must get the same answer (same value or same error code) from both.
import { Packr } from 'msgpackr'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CodecError, type Value, decodeStrict, encode, equalBytes } from '@cityledger/core'
import { Rng, testSeed } from '@cityledger/core/testing'

const SEED = testSeed(20261201)

const packr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  variableMapSize: true,
  int64AsType: 'number',
  moreTypes: false,
  bundleStrings: false,
} as ConstructorParameters<typeof Packr>[0])

function referenceCheck(v: unknown, maxDepth: number, depth: number): Value {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new CodecError('BAD_FIELD', 'numbers must be safe integers')
    return v
  }
  if (v instanceof Uint8Array) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
  if (depth > maxDepth) throw new CodecError('BAD_FIELD', 'nested too deep')
  if (Array.isArray(v)) return v.map((x) => referenceCheck(x, maxDepth, depth + 1))
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    const out: { [key: string]: Value } = {}
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (k === '__proto__') throw new CodecError('BAD_FIELD', 'forbidden key __proto__')
      out[k] = referenceCheck(x, maxDepth, depth + 1)
    }
    return out
  }
  throw new CodecError('BAD_FIELD', `unsupported type ${typeof v}`)
}

/** Strict decoding by definition: decode, check, re-encode, compare (the engine's code before the fast path). */
function reference(bytes: Uint8Array, maxDepth = 16): Value {
  if (bytes.length === 0) throw new CodecError('MALFORMED', 'empty input')
  let raw: unknown
  try {
    raw = packr.unpack(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
  } catch (err) {
    if (/not reached/i.test((err as Error).message ?? '')) throw new CodecError('TRAILING_BYTES', 'trailing')
    throw new CodecError('MALFORMED', 'not msgpack')
  }
  const value = referenceCheck(raw, maxDepth, 1)
  const again = packr.pack(value)
  const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (!again.equals(input)) {
    if (again.length < input.length && input.subarray(0, again.length).equals(again))
      throw new CodecError('TRAILING_BYTES', 'trailing')
    throw new CodecError('NON_CANONICAL', 'not canonical')
  }
  return value
}

function answer(decode: () => Value): string {
  try {
    return `OK ${Buffer.from(encode(decode())).toString('hex')}`
  } catch (err) {
    if (err instanceof CodecError) return err.code
    throw new Error(`decoder threw a non-codec error: ${(err as Error).stack}`)
  }
}

const fast = (b: Uint8Array, maxDepth = 16) => answer(() => decodeStrict(b, { maxBytes: 1 << 20, maxDepth }))
const slow = (b: Uint8Array, maxDepth = 16) => answer(() => reference(b, maxDepth))
const hex = (h: string) => Uint8Array.from(Buffer.from(h.replace(/\s/g, ''), 'hex'))
const utf8 = (s: string) => Buffer.from(s, 'utf8').toString('hex')

// [what, bytes (hex), expected answer]: 'OK' for accepted inputs, else the error code.
const VECTORS: [string, string, string][] = [
  ['fixint 5', '05', 'OK'],
  ['uint8 holding 5', 'cc05', 'NON_CANONICAL'],
  ['uint16 holding 200', 'cd00c8', 'NON_CANONICAL'],
  ['uint32 holding 300', 'ce0000012c', 'NON_CANONICAL'],
  ['uint64 holding 5', 'cf0000000000000005', 'NON_CANONICAL'],
  ['int8 holding -1', 'd0ff', 'NON_CANONICAL'],
  ['int16 holding -100', 'd1ff9c', 'NON_CANONICAL'],
  ['int32 holding -200', 'd2ffffff38', 'NON_CANONICAL'],
  ['int64 holding -1', 'd3ffffffffffffffff', 'NON_CANONICAL'],
  ['uint64 above 2^53', 'cf0020000000000001', 'BAD_FIELD'],
  ['float64 holding 5', 'cb4014000000000000', 'NON_CANONICAL'],
  ['float32 holding 1', 'ca3f800000', 'NON_CANONICAL'],
  ['float64 1.5 where an int is expected', 'cb3ff8000000000000', 'BAD_FIELD'],
  ['float64 -0', 'cb8000000000000000', 'NON_CANONICAL'],
  ['float64 NaN', 'cb7ff8000000000000', 'BAD_FIELD'],
  ['float64 2^40 (its canonical form)', 'cb4270000000000000', 'OK'],
  ['str8 for a 1-byte string', 'd90161', 'NON_CANONICAL'],
  ['bin16 for a 1-byte string', 'c5000161', 'NON_CANONICAL'],
  ['array16 of 1', 'dc000101', 'NON_CANONICAL'],
  ['map16 of 1', 'de0001a16101', 'NON_CANONICAL'],
  ['map keys b, a (insertion order is canonical)', '82a16201a16102', 'OK'],
  ['map keys "1", "b"', '82a13101a16202', 'OK'],
  ['map keys "b", "1" (JS enumerates "1" first)', '82a16201a13102', 'NON_CANONICAL'],
  ['map keys "2", "1"', '82a13201a13102', 'NON_CANONICAL'],
  ['map with a duplicate key', '82a16101a16102', 'NON_CANONICAL'],
  ['map with an integer key', '810101', 'NON_CANONICAL'],
  ['map with a __proto__ key', `81a9${utf8('__proto__')}01`, 'NON_CANONICAL'],
  ['trailing byte', '0500', 'TRAILING_BYTES'],
  ['truncated array', '930102', 'MALFORMED'],
  ['truncated string', 'a36162', 'MALFORMED'],
  ['timestamp extension', 'd6ff00000001', 'BAD_FIELD'],
  ['never-used byte c1', 'c1', 'BAD_FIELD'],
  ['Korean string', `a6${utf8('서울')}`, 'OK'],
  ['string starting with a BOM', `a4${utf8('\uFEFFx')}`, 'OK'],
  ['invalid UTF-8', 'a2c328', 'NON_CANONICAL'],
  ['overlong UTF-8 for "/"', 'a2c0af', 'NON_CANONICAL'],
  ['UTF-8 of a lone surrogate', 'a3eda080', 'NON_CANONICAL'],
  ['nesting deeper than allowed', '919191919191919191919191919191919101', 'BAD_FIELD'],
]

test('non-canonical encodings are refused with the same codes as the re-encoding definition', () => {
  for (const [what, h, expected] of VECTORS) {
    const b = hex(h)
    const got = fast(b)
    assert.is(got.split(' ')[0], expected, `${what}: ${got}`)
    assert.is(got, slow(b), `${what}: the fast path and the definition disagree`)
  }
})

function randomString(rng: Rng): string {
  const n = rng.int(rng.chance(0.1) ? 300 : 40)
  let s = ''
  for (let i = 0; i < n; i++) {
    const r = rng.int(10)
    if (r < 6) s += String.fromCharCode(0x20 + rng.int(95))
    else if (r < 8) s += String.fromCharCode(0xac00 + rng.int(500))
    else if (r < 9) s += String.fromCodePoint(0x1f600 + rng.int(50))
    else s += String.fromCharCode(rng.int(0x800))
  }
  return s
}

function randomValue(rng: Rng, depth = 0): Value {
  switch (rng.int(depth > 3 ? 5 : 7)) {
    case 0:
      return rng.pick([null, true, false])
    case 1:
      return rng.pick([0, 1, -1, 31, 32, 127, 128, -32, -33, 255, 256, -128, -129, 65535, 65536, -32768])
    case 2:
      return rng.pick([2 ** 31 - 1, -(2 ** 31), 2 ** 32 - 1, 2 ** 32, -(2 ** 31) - 1, 2 ** 53 - 1, rng.u32()])
    case 3:
      return randomString(rng)
    case 4:
      return rng.bytes(rng.chance(0.05) ? 300 : rng.int(40))
    case 5:
      return Array.from({ length: rng.int(rng.chance(0.1) ? 20 : 5) }, () => randomValue(rng, depth + 1))
    default: {
      const o: { [k: string]: Value } = {}
      for (let i = rng.int(rng.chance(0.1) ? 20 : 5); i > 0; i--) {
        const k = rng.pick([`k${rng.int(50)}`, String(rng.int(20)), `0${rng.int(9)}`, randomString(rng)])
        o[k] = randomValue(rng, depth + 1)
      }
      return o
    }
  }
}

test(`property: canonical encodings decode to the same value on both paths (seed ${SEED})`, () => {
  const rng = new Rng(SEED)
  for (let i = 0; i < 3000; i++) {
    const b = encode(randomValue(rng))
    const got = fast(b)
    assert.ok(got.startsWith('OK '), `seed ${SEED} case ${i}: ${got}`)
    assert.is(got, slow(b), `seed ${SEED} case ${i}`)
  }
})

test(`property: mutated encodings get the same answer on both paths (seed ${SEED})`, () => {
  const rng = new Rng(SEED + 1)
  let refused = 0
  for (let i = 0; i < 20_000; i++) {
    let b = encode(randomValue(rng))
    for (let m = rng.range(1, 3); m > 0; m--) {
      const at = rng.int(b.length)
      const op = rng.int(4)
      if (op === 0) b[at] = rng.u32() & 0xff
      else if (op === 1) b = b.subarray(0, at)
      else if (op === 2) b = Uint8Array.from([...b.subarray(0, at), rng.u32() & 0xff, ...b.subarray(at)])
      else b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + 1)])
    }
    if (b.length === 0) continue
    const maxDepth = rng.pick([2, 4, 16])
    const got = fast(b, maxDepth)
    if (!got.startsWith('OK')) refused++
    assert.is(got, slow(b, maxDepth), `seed ${SEED} case ${i}: ${Buffer.from(b).toString('hex')}`)
  }
  assert.ok(refused > 5000, 'most mutations must be refused')
})

test('decoded byte strings are plain Uint8Arrays, also from a Buffer input', () => {
  const v = decodeStrict(Buffer.from(encode({ a: new Uint8Array([1, 2, 3]) })), { maxBytes: 100 }) as {
    a: Uint8Array
  }
  assert.is(v.a.constructor, Uint8Array)
  assert.ok(equalBytes(v.a, new Uint8Array([1, 2, 3])))
})

test.run()
