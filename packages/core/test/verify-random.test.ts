/*
 * 10,000 seeded random signatures, valid and corrupted (a bit flipped in the signature, the message or
 * the key, or another signer's key): every verifier returns the same verdict as the reference, one by
 * one and (for the pool) in batches. Replay a failure with SEED=<seed>.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  type SignatureCheck,
  createNativeVerifier,
  generateKeyPair,
  referenceVerdict,
  sign,
  toHex,
} from '@cityledger/core'
import { Rng, seedFor, testSeed } from '@cityledger/core/testing'
import { allVerifiers, closeAll } from './fixtures/verifiers.ts'

const SEED = testSeed(25519)
const COUNT = 10_000
const rng = new Rng(SEED)
const keys = Array.from({ length: 64 }, (_, i) => generateKeyPair(seedFor(`verify-random/${SEED}/${i}`)))

type Kind = 'valid' | 'flip-sig' | 'flip-msg' | 'flip-key' | 'other-key'
const KINDS: readonly Kind[] = ['valid', 'flip-sig', 'flip-msg', 'flip-key', 'other-key']

function flipBit(bytes: Uint8Array): Uint8Array {
  const out = Uint8Array.from(bytes)
  const bit = rng.int(out.length * 8)
  out[bit >> 3]! ^= 1 << (bit & 7)
  return out
}

const cases: Array<{ kind: Kind; check: SignatureCheck }> = []
for (let i = 0; i < COUNT; i++) {
  const signer = rng.int(keys.length)
  const key = keys[signer]!
  const message = rng.bytes(rng.int(300))
  const signature = sign(key.secretKey, message)
  const kind = rng.pick(KINDS)
  let check: SignatureCheck = { publicKey: key.publicKey, message, signature }
  if (kind === 'flip-sig') check = { ...check, signature: flipBit(signature) }
  if (kind === 'flip-msg')
    check = { ...check, message: message.length ? flipBit(message) : Uint8Array.of(rng.int(256)) }
  if (kind === 'flip-key') check = { ...check, publicKey: flipBit(key.publicKey) }
  if (kind === 'other-key')
    check = { ...check, publicKey: keys[(signer + 1 + rng.int(keys.length - 1)) % keys.length]!.publicKey }
  cases.push({ kind, check })
}
const reference = cases.map((c) => referenceVerdict(c.check))

const verifiers = await allVerifiers()
test.after(() => closeAll(verifiers))

test(`reference: valid ones accepted, corrupted ones rejected (seed ${SEED}, ${COUNT} cases)`, () => {
  cases.forEach((c, i) => {
    assert.is(reference[i], c.kind === 'valid', `case ${i} ${c.kind} (seed ${SEED})`)
  })
})

for (const { label, verifier } of verifiers) {
  test(`${label}: same verdicts as the reference, one by one (seed ${SEED})`, () => {
    // The pure verifier is the reference itself; check it through its public interface on a sample.
    const step = label === 'noble' ? 10 : 1
    for (let i = 0; i < COUNT; i += step) {
      const got = verifier.verify(cases[i]!.check)
      if (got !== reference[i]) {
        assert.unreachable(
          `${label} verify disagrees on case ${i} (${cases[i]!.kind}, key ${toHex(cases[i]!.check.publicKey)}), seed ${SEED}`,
        )
      }
    }
  })
  test(`${label}: same verdicts as the reference, in batches of varied size (seed ${SEED})`, async () => {
    const sizes = [1, 7, 64, 500, 1000, 2500]
    const batchRng = new Rng(SEED ^ 0x5eed)
    const jobs: Array<Promise<void>> = []
    // noble is the reference itself (referenceVerdict): a tenth of the cases covers its batch path.
    const upTo = label === 'noble' ? COUNT / 10 : COUNT
    for (let start = 0; start < upTo; ) {
      const end = Math.min(upTo, start + batchRng.pick(sizes))
      const from = start
      jobs.push(
        verifier.verifyBatch(cases.slice(from, end).map((c) => c.check)).then((got) => {
          got.forEach((v, j) => {
            if (v !== reference[from + j])
              assert.unreachable(
                `${label} verifyBatch disagrees on case ${from + j} (${cases[from + j]!.kind}), seed ${SEED}`,
              )
          })
        }),
      )
      start = end
    }
    await Promise.all(jobs)
  })
}

test(`openssl with a 3-entry key cache (64 signers, constant eviction) gives the same verdicts (seed ${SEED})`, async () => {
  const small = await createNativeVerifier({ backend: 'openssl', keyCacheSize: 3 })
  for (let i = 0; i < COUNT; i += 3) {
    if (small.verify(cases[i]!.check) !== reference[i])
      assert.unreachable(`case ${i} (${cases[i]!.kind}), seed ${SEED}`)
  }
  await small.close()
})

test.run()
