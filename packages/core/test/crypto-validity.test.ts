/*
 * The byte checks of the validity rule (precheck), against big-integer arithmetic on boundary and
 * seeded random values, and the blacklist against the actual small-order points of the curve.
 */
import { ed25519 } from '@noble/curves/ed25519.js'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  ED25519_L,
  SMALL_ORDER_ENCODINGS,
  concatBytes,
  generateKeyPair,
  hasSmallOrderEncoding,
  isCanonicalPointEncoding,
  isCanonicalScalar,
  precheck,
  sign,
  toHex,
} from '@cityledger/core'
import { Rng, seedFor, testSeed } from '@cityledger/core/testing'

const SEED = testSeed(1)
const P = 2n ** 255n - 19n
const L = 2n ** 252n + 27742317777372353535851937790883648493n
const leToBig = (b: Uint8Array): bigint => b.reduceRight((n, x) => (n << 8n) | BigInt(x), 0n)
const bigToLe = (n: bigint): Uint8Array => {
  const out = new Uint8Array(32)
  for (let i = 0; i < 32; i++, n >>= 8n) out[i] = Number(n & 0xffn)
  return out
}
const MASK255 = 2n ** 255n - 1n

function randomAround(rng: Rng, pivots: bigint[]): Uint8Array {
  if (rng.chance(0.3)) return rng.bytes(32)
  const base = rng.pick(pivots) + BigInt(rng.range(-40, 40))
  const n = base < 0n ? 0n : base >= 2n ** 256n ? 2n ** 256n - 1n : base
  return bigToLe(rng.chance(0.5) ? n | (1n << 255n) : n)
}

test('ED25519_L is the group order', () => {
  assert.is(leToBig(ED25519_L), L)
})

test(`isCanonicalScalar is S < L on all 256 bits (seed ${SEED})`, () => {
  for (const s of [0n, 1n, L - 1n, L, L + 1n, 2n ** 253n, 2n ** 256n - 1n])
    assert.is(isCanonicalScalar(bigToLe(s)), s < L, `S=${s}`)
  const rng = new Rng(SEED)
  for (let i = 0; i < 20000; i++) {
    const b = randomAround(rng, [L, L - 1n, 2n ** 252n, 0n])
    assert.is(isCanonicalScalar(b), leToBig(b) < L, `S=${toHex(b)} seed ${SEED}`)
  }
  // The offset form reads the S half of a signature.
  assert.ok(isCanonicalScalar(concatBytes(new Uint8Array(32).fill(0xff), bigToLe(L - 1n)), 32))
})

test(`isCanonicalPointEncoding is y < p with the sign bit ignored (seed ${SEED})`, () => {
  for (const y of [0n, 1n, P - 1n, P, P + 1n, P + 18n, MASK255]) {
    assert.is(isCanonicalPointEncoding(bigToLe(y)), y < P, `y=${y}`)
    assert.is(isCanonicalPointEncoding(bigToLe(y | (1n << 255n))), y < P, `y=${y} sign=1`)
  }
  const rng = new Rng(SEED + 1)
  for (let i = 0; i < 20000; i++) {
    const b = randomAround(rng, [P, P - 1n, MASK255])
    assert.is(isCanonicalPointEncoding(b), (leToBig(b) & MASK255) < P, `y=${toHex(b)} seed ${SEED}`)
  }
})

test('the blacklist is exactly the small-order points (canonical) plus p and p+1', () => {
  const T8 = ed25519.Point.fromBytes(SMALL_ORDER_ENCODINGS[3]!)
  const masked = (b: Uint8Array) => {
    const c = Uint8Array.from(b)
    c[31]! &= 0x7f
    return toHex(c)
  }
  const fromPoints = new Set<string>()
  for (let j = 0n; j < 8n; j++) fromPoints.add(masked(T8.multiplyUnsafe(j).toBytes()))
  const expected = [...fromPoints, toHex(bigToLe(P)), toHex(bigToLe(P + 1n))].sort()
  assert.equal(SMALL_ORDER_ENCODINGS.map((e) => toHex(e)).sort(), expected)
  assert.is(
    toHex(SMALL_ORDER_ENCODINGS[3]!),
    'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  )
})

test(`hasSmallOrderEncoding: every entry with either sign bit, nothing else (seed ${SEED})`, () => {
  for (const entry of SMALL_ORDER_ENCODINGS) {
    assert.ok(hasSmallOrderEncoding(entry))
    const signed = Uint8Array.from(entry)
    signed[31]! |= 0x80
    assert.ok(hasSmallOrderEncoding(signed))
    for (const i of [0, 15, 30, 31]) {
      const near = Uint8Array.from(entry)
      near[i]! ^= i === 31 ? 0x01 : 0x40
      assert.not.ok(hasSmallOrderEncoding(near), `${toHex(near)}`)
    }
  }
  const rng = new Rng(SEED + 2)
  for (let i = 0; i < 2000; i++) assert.not.ok(hasSmallOrderEncoding(rng.bytes(32)))
})

test('precheck: lengths, S, R and A', () => {
  const key = generateKeyPair(seedFor('precheck'))
  const sig = sign(key.secretKey, new Uint8Array([1, 2, 3]))
  const A = key.publicKey
  assert.ok(precheck(A, sig))
  assert.not.ok(precheck(A, sig.subarray(0, 63)))
  assert.not.ok(precheck(A, concatBytes(sig, new Uint8Array(1))))
  assert.not.ok(precheck(A.subarray(0, 31), sig))
  assert.not.ok(precheck(concatBytes(A, new Uint8Array(1)), sig))
  const withS = (s: bigint) => concatBytes(sig.subarray(0, 32), bigToLe(s))
  assert.ok(precheck(A, withS(L - 1n)))
  assert.not.ok(precheck(A, withS(L)))
  assert.not.ok(precheck(A, withS(leToBig(sig.subarray(32)) + L)))
  for (const entry of SMALL_ORDER_ENCODINGS) {
    assert.not.ok(precheck(A, concatBytes(entry, sig.subarray(32))), `R=${toHex(entry)}`)
    assert.not.ok(precheck(entry, sig), `A=${toHex(entry)}`)
  }
  assert.not.ok(precheck(bigToLe(P + 3n), sig))
  // The rule does not look at R's canonicity in the precheck: the final byte comparison handles it.
  assert.ok(precheck(A, concatBytes(bigToLe(P + 3n), sig.subarray(32))))
})

test.run()
