import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { VoteKind, encode, equalBytes, sha256 } from '@cityledger/core'
import { Rng, testSeed } from '@cityledger/core/testing'
import {
  ConsensusError,
  type ConsensusMessage,
  certificateMessage,
  consensusSigningMessage,
  decodeMessage,
  encodeMessage,
  encodeNewViewBody,
  encodeStatusBody,
  encodeViewChangeBody,
  simCrypto,
} from '@cityledger/consensus'

const SEED = testSeed(7001)
const crypto = simCrypto(4)
const key = crypto.keys[0]!
const digest = sha256(new Uint8Array([1, 2, 3]))
const block = new Uint8Array([1, 2, 3])
const vote = (kind: VoteKind) => ({
  chainId: 'seoul-1',
  kind,
  view: 3,
  height: 17,
  digest,
  validator: key.publicKey,
})
const sig = new Uint8Array(64).fill(7)

function samples(): ConsensusMessage[] {
  const vcBody = {
    chainId: 'seoul-1',
    view: 4,
    validator: key.publicKey,
    checkpoint: { height: 10, digest, signatures: [{ validator: key.publicKey, signature: sig }] },
    prepared: [{ height: 11, view: 3, digest, signatures: [{ validator: key.publicKey, signature: sig }] }],
  }
  const vcBytes = encodeViewChangeBody(vcBody)
  const nvBody = {
    chainId: 'seoul-1',
    view: 4,
    validator: key.publicKey,
    viewChanges: [{ bodyBytes: vcBytes, signature: sig }],
    reproposals: [{ height: 11, digest, signature: sig }],
  }
  const stBody = { chainId: 'seoul-1', view: 2, committedHeight: 9, validator: key.publicKey }
  return [
    { type: 'prePrepare', vote: vote(VoteKind.prepare), signature: sig, block },
    { type: 'prepare', vote: vote(VoteKind.prepare), signature: sig },
    { type: 'commit', vote: vote(VoteKind.commit), signature: sig },
    { type: 'checkpoint', vote: { ...vote(VoteKind.checkpoint), view: 0 }, signature: sig },
    { type: 'viewChange', body: vcBody, bodyBytes: vcBytes, signature: sig },
    { type: 'newView', body: nvBody, bodyBytes: encodeNewViewBody(nvBody), signature: sig },
    { type: 'status', body: stBody, bodyBytes: encodeStatusBody(stBody), signature: sig },
    certificateMessage(
      {
        chainId: 'seoul-1',
        view: 3,
        height: 17,
        blockHash: digest,
        signatures: [{ validator: key.publicKey, signature: sig }],
      },
      block,
    ),
  ]
}

test('every message kind round-trips byte for byte', () => {
  for (const m of samples()) {
    const bytes = encodeMessage(m)
    const back = decodeMessage(bytes)
    assert.is(back.type, m.type)
    assert.ok(equalBytes(encodeMessage(back), bytes), m.type)
  }
})

test('a vote body of the wrong kind for its message type is refused', () => {
  const m = encodeMessage({ type: 'prepare', vote: vote(VoteKind.commit), signature: sig })
  try {
    decodeMessage(m)
    assert.unreachable()
  } catch (e) {
    assert.instance(e, ConsensusError)
    assert.is((e as ConsensusError).code, 'MALFORMED')
    assert.ok((e as ConsensusError).penalize)
  }
})

test('trailing bytes, oversize input and unknown types are refused with MALFORMED', () => {
  const good = encodeMessage(samples()[1]!)
  const trailing = new Uint8Array(good.length + 1)
  trailing.set(good)
  for (const bad of [
    trailing,
    encode([1, 99, new Uint8Array(3), sig, []]),
    encode([2, 2, new Uint8Array(3), sig, []]),
  ]) {
    assert.throws(
      () => decodeMessage(bad),
      (e: unknown) => e instanceof ConsensusError && e.code === 'MALFORMED',
    )
  }
  assert.throws(
    () => decodeMessage(good, { maxBytes: 10 }),
    (e: unknown) => e instanceof ConsensusError && e.code === 'MALFORMED',
  )
})

test(`random and mutated bytes never crash the decoder (seed ${SEED})`, () => {
  const rng = new Rng(SEED)
  const all = samples().map(encodeMessage)
  for (let i = 0; i < 3000; i++) {
    let b: Uint8Array
    if (i % 3 === 0) b = rng.bytes(rng.int(120))
    else {
      b = Uint8Array.from(rng.pick(all))
      for (let k = rng.range(1, 3); k > 0; k--) b[rng.int(b.length)] ^= 1 << rng.int(8)
      if (i % 3 === 2) b = b.subarray(0, rng.int(b.length))
    }
    try {
      decodeMessage(b)
    } catch (e) {
      assert.ok(e instanceof ConsensusError, `seed ${SEED} case ${i}: ${(e as Error).message}`)
    }
  }
})

test('view-change and status signatures are domain separated from votes', () => {
  const st = samples()[6] as Extract<ConsensusMessage, { type: 'status' }>
  const msg = consensusSigningMessage(st.bodyBytes)
  assert.ok(new TextDecoder().decode(msg.subarray(0, 24)).startsWith('cityledger/consensus/v1'))
})

test.run()
