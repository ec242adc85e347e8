/*
 * The contract suite of the validity rule: every verifier (noble, libsodium, OpenSSL forced, a 2-worker
 * pool) must give the same verdict on published vectors and on constructed edge cases. A disagreement
 * here is a fork of the chain in production.
 */
import { createHash } from 'node:crypto'
import { ed25519 } from '@noble/curves/ed25519.js'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  ED25519_L,
  SMALL_ORDER_ENCODINGS,
  type SignatureCheck,
  concatBytes,
  fromHex,
  isCityError,
  referenceVerdict,
  toHex,
} from '@cityledger/core'
import { Rng, testSeed } from '@cityledger/core/testing'
import {
  type Vector,
  allVerifiers,
  closeAll,
  rfc8032Vectors,
  speccheckVectors,
  wycheproofVectors,
} from './fixtures/verifiers.ts'

const SEED = testSeed(8032)
const Point = ed25519.Point
type Pt = InstanceType<typeof Point>
const P = 2n ** 255n - 19n
const leToBig = (b: Uint8Array): bigint => b.reduceRight((n, x) => (n << 8n) | BigInt(x), 0n)
const L = leToBig(ED25519_L)
const bigToLe = (n: bigint, len = 32): Uint8Array => {
  const out = new Uint8Array(len)
  for (let i = 0; i < len; i++, n >>= 8n) out[i] = Number(n & 0xffn)
  return out
}
const mod = (n: bigint, m: bigint) => ((n % m) + m) % m
const challenge = (R: Uint8Array, A: Uint8Array, M: Uint8Array): bigint =>
  mod(leToBig(new Uint8Array(createHash('sha512').update(R).update(A).update(M).digest())), L)
const withTopBit = (b: Uint8Array): Uint8Array => {
  const c = Uint8Array.from(b)
  c[31]! |= 0x80
  return c
}
const decodeLoose = (b: Uint8Array): Pt | undefined => {
  try {
    return Point.fromBytes(b, true)
  } catch {
    return undefined
  }
}

/** An order-8 point: every small-order point is a multiple of it (the torsion group is cyclic). */
const T8 = Point.fromBytes(SMALL_ORDER_ENCODINGS[3]!)
const rng = new Rng(SEED)
const scalar = (): bigint => mod(leToBig(rng.bytes(64)), L - 1n) + 1n
const message = (tag: string, i: number): Uint8Array => new TextEncoder().encode(`edge/${tag}/${i}`)

/** A signature under secret scalar `a` with public key bytes `A` (which may carry torsion). */
function signWith(a: bigint, A: Uint8Array, M: Uint8Array): Uint8Array {
  const r = scalar()
  const R = Point.BASE.multiply(r).toBytes()
  const S = mod(r + challenge(R, A, M) * a, L)
  return concatBytes(R, bigToLe(S))
}

function edgeCases(): Vector[] {
  const out: Vector[] = []
  const a = scalar()
  const A = Point.BASE.multiply(a).toBytes()
  const M = message('base', 0)
  const sig = signWith(a, A, M)
  out.push({
    name: 'edge: the base signature',
    check: { publicKey: A, message: M, signature: sig },
    expected: true,
  })

  // S >= L: S + L is the same scalar mod L (a malleated copy); S with the top bit set.
  const S = leToBig(sig.subarray(32))
  out.push({
    name: 'edge: S + L',
    check: { publicKey: A, message: M, signature: concatBytes(sig.subarray(0, 32), bigToLe(S + L)) },
    expected: false,
  })
  out.push({
    name: 'edge: S = L',
    check: { publicKey: A, message: M, signature: concatBytes(sig.subarray(0, 32), bigToLe(L)) },
    expected: false,
  })
  out.push({
    name: 'edge: S top bit set',
    check: {
      publicKey: A,
      message: M,
      signature: concatBytes(sig.subarray(0, 32), withTopBit(sig.subarray(32))),
    },
    expected: false,
  })
  out.push({
    name: 'edge: S = L - 1 (canonical, wrong)',
    check: { publicKey: A, message: M, signature: concatBytes(sig.subarray(0, 32), bigToLe(L - 1n)) },
    expected: false,
  })

  // Wrong lengths: sodium-native itself would accept a longer signature (it reads the first 64 bytes).
  out.push({
    name: 'edge: signature 65 bytes',
    check: { publicKey: A, message: M, signature: concatBytes(sig, new Uint8Array(1)) },
    expected: false,
  })
  out.push({
    name: 'edge: signature 63 bytes',
    check: { publicKey: A, message: M, signature: sig.subarray(0, 63) },
    expected: false,
  })
  out.push({
    name: 'edge: key 33 bytes',
    check: { publicKey: concatBytes(A, new Uint8Array(1)), message: M, signature: sig },
    expected: false,
  })
  out.push({
    name: 'edge: key 31 bytes',
    check: { publicKey: A.subarray(0, 31), message: M, signature: sig },
    expected: false,
  })
  out.push({
    name: 'edge: empty key and signature',
    check: { publicKey: new Uint8Array(0), message: M, signature: new Uint8Array(0) },
    expected: false,
  })

  // Non-canonical A: y = p + d (d < 19 keeps y below 2^255), both sign bits.
  for (let d = 0n; d < 19n; d++) {
    for (const top of [false, true]) {
      const enc = bigToLe(P + d)
      const pk = top ? withTopBit(enc) : enc
      out.push({
        name: `edge: non-canonical A y=p+${d}${top ? ' sign=1' : ''} (decodes: ${decodeLoose(pk) !== undefined})`,
        check: { publicKey: pk, message: M, signature: sig },
        expected: false,
      })
    }
  }

  // Small-order A (each blacklist entry, both sign bits) with a signature that satisfies the
  // cofactorless equation where the point decodes: R = [r]B, S = r, and a message with [k]A = 0.
  SMALL_ORDER_ENCODINGS.forEach((entry, e) => {
    for (const pk of [entry, withTopBit(entry)]) {
      const pt = decodeLoose(pk)
      let check: SignatureCheck = { publicKey: pk, message: M, signature: sig }
      if (pt) {
        for (let i = 0; i < 256; i++) {
          const r = scalar()
          const R = Point.BASE.multiply(r).toBytes()
          const m = message(`small-A-${e}`, i)
          if (pt.multiplyUnsafe(challenge(R, pk, m)).is0()) {
            check = { publicKey: pk, message: m, signature: concatBytes(R, bigToLe(r)) }
            break
          }
        }
      }
      out.push({
        name: `edge: small-order A #${e} ${toHex(pk).slice(0, 8)}..${toHex(pk).slice(-2)}`,
        check,
        expected: false,
      })
    }
  })

  // Small-order R (each blacklist entry, both sign bits) with a mixed-order key A' = [a]B + T8 and a
  // message where -[k]T8 = R, S = k a: the cofactorless equation holds, the blacklist must reject.
  const mixedA = Point.BASE.multiply(a).add(T8).toBytes()
  SMALL_ORDER_ENCODINGS.forEach((entry, e) => {
    for (const R of [entry, withTopBit(entry)]) {
      const pt = decodeLoose(R)
      let check: SignatureCheck = {
        publicKey: mixedA,
        message: M,
        signature: concatBytes(R, sig.subarray(32)),
      }
      if (pt) {
        for (let i = 0; i < 512; i++) {
          const m = message(`small-R-${e}`, i)
          const k = challenge(R, mixedA, m)
          if (T8.multiplyUnsafe(k).negate().equals(pt)) {
            check = { publicKey: mixedA, message: m, signature: concatBytes(R, bigToLe(mod(k * a, L))) }
            break
          }
        }
      }
      out.push({
        name: `edge: small-order R #${e} ${toHex(R).slice(0, 8)}..${toHex(R).slice(-2)}`,
        check,
        expected: false,
      })
    }
  })
  // R = the identity with a clean key: S = k a satisfies the equation exactly.
  {
    const R = SMALL_ORDER_ENCODINGS[1]!
    const k = challenge(R, A, M)
    out.push({
      name: 'edge: R = identity, S = k a (equation holds)',
      check: { publicKey: A, message: M, signature: concatBytes(R, bigToLe(mod(k * a, L))) },
      expected: false,
    })
  }

  // Mixed-order A = [a]B + [j]T8: accepted when the cofactorless equation holds (k = 0 mod ord),
  // rejected when only the cofactored one does. The rule does not ask for the prime-order subgroup.
  for (const j of [1n, 2n, 4n, 3n]) {
    const T = T8.multiplyUnsafe(j)
    const pk = Point.BASE.multiply(a).add(T).toBytes()
    let found = 0
    let missed = 0
    for (let i = 0; i < 400 && (found < 2 || missed < 2); i++) {
      const m = message(`mixed-${j}`, i)
      const r = scalar()
      const R = Point.BASE.multiply(r).toBytes()
      const k = challenge(R, pk, m)
      const signature = concatBytes(R, bigToLe(mod(r + k * a, L)))
      const holds = T.multiplyUnsafe(k).is0()
      if (holds && found < 2)
        out.push({
          name: `edge: mixed-order A (+${j}T8), cofactorless holds #${found++}`,
          check: { publicKey: pk, message: m, signature },
          expected: true,
        })
      if (!holds && missed < 2)
        out.push({
          name: `edge: mixed-order A (+${j}T8), only cofactored holds #${missed++}`,
          check: { publicKey: pk, message: m, signature },
          expected: false,
        })
    }
  }

  // Non-canonical R: the sign bit of R flipped; R = p + d for small d (never an encode() output).
  out.push({
    name: 'edge: R sign bit flipped',
    check: {
      publicKey: A,
      message: M,
      signature: concatBytes(withTopBit(sig.subarray(0, 32)), sig.subarray(32)),
    },
    expected: undefined,
  })
  for (let d = 2n; d < 19n; d++) {
    out.push({
      name: `edge: R y=p+${d}`,
      check: { publicKey: A, message: M, signature: concatBytes(bigToLe(P + d), sig.subarray(32)) },
      expected: false,
    })
  }
  // A key that is not on the curve (y with no x): rule 5.
  for (let y = 2n, n = 0; n < 3; y++) {
    const enc = bigToLe(y)
    if (decodeLoose(enc) === undefined) {
      out.push({
        name: `edge: A off the curve (y=${y})`,
        check: { publicKey: enc, message: M, signature: sig },
        expected: false,
      })
      n++
    }
  }
  return out
}

const suites: Array<[string, () => Vector[]]> = [
  ['RFC 8032 section 7.1', rfc8032Vectors],
  ['Wycheproof ed25519_test.json', wycheproofVectors],
  ['ed25519-speccheck cases 0-11', speccheckVectors],
  [`constructed edge cases (seed ${SEED})`, edgeCases],
]

const verifiers = await allVerifiers()
test.after(() => closeAll(verifiers))

test('the order-8 point and the constants are what the rule says', () => {
  assert.ok(T8.multiplyUnsafe(8n).is0() && !T8.multiplyUnsafe(4n).is0())
  assert.is(L, 2n ** 252n + 27742317777372353535851937790883648493n)
  assert.is(
    toHex(SMALL_ORDER_ENCODINGS[2]!),
    '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  )
})

for (const [suite, make] of suites) {
  const vectors = make()
  test(`${suite}: the reference verdict is the expected one (${vectors.length} vectors)`, () => {
    for (const v of vectors) {
      if (v.expected !== undefined) assert.is(referenceVerdict(v.check), v.expected, v.name)
    }
  })
  for (const { label, verifier } of verifiers) {
    test(`${suite}: ${label} agrees with the reference, one by one and in a batch`, async () => {
      const want = vectors.map((v) => referenceVerdict(v.check))
      const batch = await verifier.verifyBatch(vectors.map((v) => v.check))
      vectors.forEach((v, i) => {
        const one = verifier.verify(v.check)
        assert.is(one, want[i], `${label} verify: ${v.name} (seed ${SEED})`)
        assert.is(batch[i], want[i], `${label} verifyBatch: ${v.name} (seed ${SEED})`)
        if (v.expected !== undefined) assert.is(one, v.expected, `${label}: ${v.name}`)
      })
    })
  }
}

test('edge cases: the constructions succeeded (they would pass a lenient ZIP-215 verifier)', () => {
  const vectors = edgeCases()
  const lenient = (v: Vector) => {
    try {
      return ed25519.verify(v.check.signature, v.check.message, v.check.publicKey, { zip215: true })
    } catch {
      return false
    }
  }
  const count = (prefix: string, pred: (v: Vector) => boolean) =>
    vectors.filter((v) => v.name.startsWith(prefix) && pred(v)).length
  // All 14 small-order encodings of A and of R (both sign bits) decode leniently and got a signature
  // that satisfies the equation: only the blacklist rejects them.
  assert.is(count('edge: small-order A', lenient), 14, `seed ${SEED}`)
  assert.is(count('edge: small-order R', lenient), 14, `seed ${SEED}`)
  assert.is(
    count('edge: mixed-order A', (v) => v.expected === true),
    8,
    `seed ${SEED}`,
  )
  assert.is(
    count('edge: mixed-order A', (v) => v.expected === false),
    8,
    `seed ${SEED}`,
  )
  assert.ok(lenient(vectors.find((v) => v.name.startsWith('edge: S + L'))!) === false)
})

test('contract: input that is not bytes is VERIFIER_BAD_INPUT on every verifier; closed is VERIFIER_CLOSED', async () => {
  const bad = {
    publicKey: 'aa',
    message: new Uint8Array(0),
    signature: new Uint8Array(64),
  } as unknown as SignatureCheck
  const good = rfc8032Vectors()[0]!.check
  const fresh = await allVerifiers()
  for (const { label, verifier } of fresh) {
    assert.throws(
      () => verifier.verify(bad),
      (e: unknown) => isCityError(e, 'VERIFIER_BAD_INPUT'),
      label,
    )
    const err = await verifier.verifyBatch([good, bad]).then(
      () => undefined,
      (e: unknown) => e,
    )
    assert.ok(isCityError(err, 'VERIFIER_BAD_INPUT'), `${label}: ${String(err)}`)
    assert.equal(await verifier.verifyBatch([]), [], label)
    await verifier.close()
    assert.throws(
      () => verifier.verify(good),
      (e: unknown) => isCityError(e, 'VERIFIER_CLOSED'),
      label,
    )
    const closed = await verifier.verifyBatch([good]).then(
      () => undefined,
      (e: unknown) => e,
    )
    assert.ok(isCityError(closed, 'VERIFIER_CLOSED'), label)
  }
})

test('speccheck: exactly case 3 is accepted (libsodium row of the paper)', () => {
  const verdicts = speccheckVectors()
    .map((v) => (referenceVerdict(v.check) ? 'V' : 'X'))
    .join(' ')
  assert.is(verdicts, 'X X X V X X X X X X X X')
})

test('Wycheproof: all 151 cases present, acceptable ones (if any) judged alike', () => {
  const vectors = wycheproofVectors()
  assert.is(vectors.length, 151)
  assert.ok(vectors.some((v) => v.expected === true) && vectors.some((v) => v.expected === false))
  assert.ok(fromHex(toHex(vectors[0]!.check.publicKey)).length === 32)
})

test.run()
