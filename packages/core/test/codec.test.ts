import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  CodecError,
  type Value,
  ZERO_HASH,
  VoteKind,
  decodeBlock,
  decodeCertificate,
  decodeStrict,
  decodeTx,
  decodeVote,
  encode,
  encodeCertificate,
  encodeVote,
  equalBytes,
  generateKeyPair,
  makeBlock,
  merkleRoot,
  signTx,
  toHex,
} from '@cityledger/core'
import { Rng, seedFor, testSeed } from '@cityledger/core/testing'

const SEED = testSeed(20261123)
const key = generateKeyPair(seedFor('codec'))
const body = (over: Partial<Parameters<typeof signTx>[0]> = {}) => ({
  chainId: 'seoul-1',
  service: 'token',
  method: 'transfer',
  args: { to: new Uint8Array(32).fill(1), amount: 250, memo: 'rent' } as Value,
  signer: key.publicKey,
  nonce: 1,
  expiry: 0,
  ...over,
})

function randomValue(rng: Rng, depth = 0): Value {
  const kind = rng.int(depth > 3 ? 5 : 7)
  switch (kind) {
    case 0:
      return null
    case 1:
      return rng.chance(0.5)
    case 2:
      return rng.pick([
        0,
        1,
        -1,
        127,
        128,
        255,
        65536,
        2 ** 32,
        2 ** 53 - 1,
        -(2 ** 40),
        rng.u32(),
        -rng.u32(),
      ])
    case 3:
      return 'x'.repeat(rng.int(40)) + String.fromCharCode(0x3131 + rng.int(50))
    case 4:
      return rng.bytes(rng.int(70))
    case 5:
      return Array.from({ length: rng.int(5) }, () => randomValue(rng, depth + 1))
    default: {
      const o: { [k: string]: Value } = {}
      for (let i = rng.int(5); i > 0; i--) o[`k${rng.int(100)}`] = randomValue(rng, depth + 1)
      return o
    }
  }
}

function codeOf(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    if (err instanceof CodecError) return err.code
    throw new Error(`decoder threw a non-codec error: ${(err as Error).stack}`)
  }
  return 'OK'
}

test('tx round trip keeps exact bytes and hash', () => {
  const tx = signTx(body(), key.secretKey)
  const d = decodeTx(tx.bytes)
  assert.equal(toHex(d.hash), toHex(tx.hash))
  assert.ok(equalBytes(d.bodyBytes, tx.bodyBytes))
  assert.ok(equalBytes(d.signature, tx.signature))
  assert.equal(d.body.nonce, 1)
  assert.equal((d.body.args as { amount: number }).amount, 250)
})

test('tx decoding rejects bad input with stable codes', () => {
  const tx = signTx(body(), key.secretKey)
  assert.is(
    codeOf(() => decodeTx(new Uint8Array([...tx.bytes, 0]))),
    'TRAILING_BYTES',
  )
  assert.is(
    codeOf(() => decodeTx(tx.bytes.subarray(0, tx.bytes.length - 1))),
    'MALFORMED',
  )
  assert.is(
    codeOf(() => decodeTx(new Uint8Array(70_000))),
    'TOO_LARGE',
  )
  assert.is(
    codeOf(() => decodeTx(new Uint8Array())),
    'MALFORMED',
  )
  assert.is(
    codeOf(() => decodeTx(encode([tx.bodyBytes, new Uint8Array(63)]))),
    'BAD_FIELD',
  )
  assert.is(
    codeOf(() =>
      decodeTx(encode([encode([1, 'Bad Chain', 's', 'm', null, key.publicKey, 1, 0]), tx.signature])),
    ),
    'BAD_FIELD',
  )
  assert.is(
    codeOf(() => decodeTx(encode([encode([1, 'c', 's', 'm', null, key.publicKey, -1, 0]), tx.signature]))),
    'BAD_FIELD',
  )
  assert.is(
    codeOf(() => decodeTx(encode([encode([1, 'c', 's', 'm', 1.5, key.publicKey, 1, 0]), tx.signature]))),
    'BAD_FIELD',
  )
  assert.is(
    codeOf(() => decodeTx(encode([encode([2, 'c', 's', 'm', null, key.publicKey, 1, 0]), tx.signature]))),
    'BAD_FIELD',
  )
  // uint8 holding 5 where a fixint is canonical
  assert.is(
    codeOf(() => decodeStrict(new Uint8Array([0xcc, 0x05]), { maxBytes: 10 })),
    'NON_CANONICAL',
  )
  // map with a duplicate key
  assert.is(
    codeOf(() => decodeStrict(new Uint8Array([0x82, 0xa1, 0x61, 0x01, 0xa1, 0x61, 0x02]), { maxBytes: 10 })),
    'NON_CANONICAL',
  )
  // timestamp extension
  assert.is.not(
    codeOf(() => decodeStrict(new Uint8Array([0xd6, 0xff, 0, 0, 0, 1]), { maxBytes: 10 })),
    'OK',
  )
})

test('deep nesting is refused before it can hurt', () => {
  let v: Value = 1
  for (let i = 0; i < 40; i++) v = [v]
  assert.is(
    codeOf(() => decodeStrict(encode(v), { maxBytes: 1000, maxDepth: 16 })),
    'BAD_FIELD',
  )
})

test(`property: random values round trip exactly (seed ${SEED})`, () => {
  const rng = new Rng(SEED)
  for (let i = 0; i < 2000; i++) {
    const v = randomValue(rng)
    const bytes = encode(v)
    const back = decodeStrict(bytes, { maxBytes: 1 << 20 })
    assert.ok(equalBytes(encode(back), bytes), `seed ${SEED} case ${i}`)
  }
})

test(`property: random and mutated bytes never crash a decoder nor decode non-canonically (seed ${SEED})`, () => {
  const rng = new Rng(SEED + 1)
  const tx = signTx(body(), key.secretKey)
  const block = makeBlock(
    {
      chainId: 'seoul-1',
      height: 3,
      view: 0,
      time: 1_700_000_000_000,
      parentHash: ZERO_HASH,
      txRoot: merkleRoot([tx.hash]),
      prevStateRoot: ZERO_HASH,
      proposer: key.publicKey,
    },
    [tx.bytes],
  )
  const vote = encodeVote({
    chainId: 'seoul-1',
    kind: VoteKind.commit,
    view: 0,
    height: 3,
    digest: block.hash,
    validator: key.publicKey,
  })
  const cert = encodeCertificate({
    chainId: 'seoul-1',
    view: 0,
    height: 3,
    blockHash: block.hash,
    signatures: [{ validator: key.publicKey, signature: tx.signature }],
  })
  const decoders: [Uint8Array, (b: Uint8Array) => unknown, (x: any) => Uint8Array][] = [
    [tx.bytes, decodeTx, (x) => x.bytes],
    [block.bytes, decodeBlock, (x) => x.bytes],
    [vote, decodeVote, (x) => encodeVote(x)],
    [cert, decodeCertificate, (x) => encodeCertificate(x)],
  ]
  let accepted = 0
  for (let i = 0; i < 20_000; i++) {
    const [good, decode, reencode] = decoders[i % decoders.length]!
    let input: Uint8Array
    if (rng.chance(0.2)) input = rng.bytes(rng.int(200))
    else {
      input = Uint8Array.from(good)
      for (let m = rng.range(1, 3); m > 0; m--) {
        const op = rng.int(3)
        const at = rng.int(input.length)
        if (op === 0) input[at] = rng.u32() & 0xff
        else if (op === 1) input = input.subarray(0, at)
        else input = Uint8Array.from([...input.subarray(0, at), rng.u32() & 0xff, ...input.subarray(at)])
      }
    }
    let out: unknown
    try {
      out = decode(input)
    } catch (err) {
      if (!(err instanceof CodecError)) throw new Error(`seed ${SEED} case ${i}: ${(err as Error).stack}`)
      continue
    }
    accepted++
    assert.ok(equalBytes(reencode(out), input), `seed ${SEED} case ${i}: decoded bytes re-encode differently`)
  }
  assert.ok(accepted > 0, 'some mutations (e.g. of signature bytes) must still decode')
})

test('vote and certificate round trip', () => {
  const v = {
    chainId: 'seoul-1',
    kind: VoteKind.prepare,
    view: 2,
    height: 9,
    digest: new Uint8Array(32).fill(3),
    validator: key.publicKey,
  }
  const back = decodeVote(encodeVote(v))
  assert.equal(back, v)
})

test.run()
