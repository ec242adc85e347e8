import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  type CommitCertificate,
  certificateVote,
  equalBytes,
  sha256,
  voteSigningMessage,
} from '@cityledger/core'
import {
  type CertifiedStep,
  activationHeight,
  epochAt,
  epochChainId,
  epochOfChainId,
  followCertificates,
  genesisSchedule,
  lastHeightOf,
  scheduleChange,
  simCrypto,
  validatorsAt,
  verifyCertificateAt,
} from '@cityledger/consensus'

const CHAIN = 'unit-chain'
const K = 4
const crypto = simCrypto(9)
const keys = crypto.keys
const pk = (i: number) => keys[i]!.publicKey
const set = (...ids: number[]) => ids.map(pk)

/** A commit certificate for (height, block) signed by `signers`, under the chain id of `epoch`. */
function certify(height: number, block: Uint8Array, epoch: number, signers: number[]): CommitCertificate {
  const cert: CommitCertificate = {
    chainId: epochChainId(CHAIN, epoch),
    view: 0,
    height,
    blockHash: sha256(block),
    signatures: [],
  }
  cert.signatures = signers.map((i) => ({
    validator: pk(i),
    signature: keys[i]!.sign(voteSigningMessage(certificateVote(cert, pk(i)))),
  }))
  return cert
}

test('activationHeight is the first checkpoint boundary strictly after the change', () => {
  assert.is(activationHeight(1, 4), 4)
  assert.is(activationHeight(3, 4), 4)
  assert.is(activationHeight(4, 4), 8)
  assert.is(activationHeight(5, 4), 8)
  assert.is(activationHeight(16, 16), 32)
  assert.throws(() => activationHeight(0, 4), /executedAt/)
})

test('the validator set is a function of height; one change per epoch', () => {
  const g = genesisSchedule(set(0, 1, 2, 3), K)
  const s = scheduleChange(g, 5, set(0, 1, 2, 3, 4))
  assert.is(epochAt(s, 8).epoch, 0)
  assert.is(epochAt(s, 9).epoch, 1)
  assert.is(validatorsAt(s, 8).length, 4)
  assert.is(validatorsAt(s, 9).length, 5)
  assert.is(lastHeightOf(s, 0), 8)
  assert.is(lastHeightOf(s, 1), undefined)
  // A second change while the first is pending (executed at 6 <= a = 8) is refused.
  assert.throws(() => scheduleChange(s, 6, set(0, 1, 2)), /pending/)
  const t = scheduleChange(s, 9, set(1, 2, 3, 4))
  assert.is(epochAt(t, 12).epoch, 1)
  assert.is(epochAt(t, 13).epoch, 2)
  assert.throws(() => scheduleChange(g, 3, [pk(0), pk(0)]), /duplicate/)
  assert.throws(() => scheduleChange(g, 3, []), /at least one/)
})

test('epoch chain ids: epoch 0 is the chain id, later ones are told apart and parsed back', () => {
  assert.is(epochChainId(CHAIN, 0), CHAIN)
  assert.is(epochChainId(CHAIN, 3), 'unit-chain--e3')
  assert.is(epochOfChainId(CHAIN, 'unit-chain--e3'), 3)
  assert.is(epochOfChainId(CHAIN, CHAIN), 0)
  for (const id of ['unit-chain--e0', 'unit-chain--e03', 'unit-chain--ex', 'other--e1', 'unit-chain-e1'])
    assert.is(epochOfChainId(CHAIN, id), undefined, id)
  assert.throws(() => epochChainId('a--b', 1), /--/)
  assert.throws(() => epochChainId('x'.repeat(62), 1), /64/)
})

test('verifyCertificateAt picks the set and the epoch chain id from the height', () => {
  const s = scheduleChange(genesisSchedule(set(0, 1, 2, 3), K), 5, set(0, 1, 2, 4))
  const b = new Uint8Array([1])
  const ok = (c: CommitCertificate) => verifyCertificateAt(c, s, CHAIN, crypto.verify)
  assert.equal(ok(certify(8, b, 0, [0, 1, 2])), { ok: true })
  assert.equal(ok(certify(9, b, 1, [0, 1, 4])), { ok: true })
  // The old set past its last height, the new set before its first, and the wrong epoch's chain id.
  assert.is((ok(certify(9, b, 0, [0, 1, 2])) as { code: string }).code, 'WRONG_CHAIN')
  assert.is((ok(certify(9, b, 1, [0, 1, 3])) as { code: string }).code, 'UNKNOWN_VALIDATOR')
  assert.is((ok(certify(8, b, 0, [0, 1, 4])) as { code: string }).code, 'UNKNOWN_VALIDATOR')
  assert.is((ok(certify(8, b, 1, [0, 1, 2])) as { code: string }).code, 'WRONG_CHAIN')
  assert.is((ok({ ...certify(8, b, 0, [0, 1, 2]), height: 0 }) as { code: string }).code, 'MALFORMED')
})

// Light client: the evidence of an announcement is the block itself (as in the simulator): its bytes hash
// to the certified block hash and name the new set.
const blockAnnouncing = (height: number, ids: number[]) =>
  new TextEncoder().encode(JSON.stringify({ height, change: ids }))
const lightOptions = {
  chainId: CHAIN,
  genesisValidators: set(0, 1, 2, 3),
  checkpointInterval: K,
  verify: crypto.verify,
  checkAnnouncement: (c: CommitCertificate, validators: readonly Uint8Array[], evidence: Uint8Array) => {
    if (!equalBytes(sha256(evidence), c.blockHash)) return false
    const named = (JSON.parse(new TextDecoder().decode(evidence)) as { change: number[] }).change.map(pk)
    return named.length === validators.length && named.every((v, i) => equalBytes(v, validators[i]!))
  },
}

function chain(newSet: number[], signersAfter: number[]): CertifiedStep<Uint8Array>[] {
  const change = blockAnnouncing(5, newSet)
  return [
    { certificate: certify(2, new Uint8Array([2]), 0, [0, 1, 2]) },
    {
      certificate: certify(5, change, 0, [1, 2, 3]),
      announce: { validators: set(...newSet), evidence: change },
    },
    { certificate: certify(8, new Uint8Array([8]), 0, [0, 2, 3]) },
    { certificate: certify(9, new Uint8Array([9]), 1, signersAfter) },
    { certificate: certify(12, new Uint8Array([12]), 1, signersAfter) },
  ]
}

test('a light client follows set changes from genesis through a chain of certificates', () => {
  const r = followCertificates(lightOptions, chain([0, 5, 6, 7], [5, 6, 7]))
  assert.ok(r.ok, JSON.stringify(r))
  if (r.ok) {
    assert.is(r.height, 12)
    assert.equal(validatorsAt(r.schedule, 9), set(0, 5, 6, 7))
  }
})

test('a light client refuses a forged set: not announced by a block the old set certified', () => {
  // 1. Certificates by keys 5, 6, 7 without any announcement: height 9 is still epoch 0 to the client.
  const steps = chain([0, 5, 6, 7], [5, 6, 7])
  const noAnnouncement = steps.map((s) => ({ certificate: s.certificate }))
  const r1 = followCertificates(lightOptions, noAnnouncement)
  assert.equal([r1.ok, !r1.ok && r1.index, !r1.ok && r1.code], [false, 3, 'WRONG_CHAIN'])
  // ... nor under epoch 0's chain id: the keys are not the old set.
  noAnnouncement[3] = { certificate: certify(9, new Uint8Array([9]), 0, [5, 6, 7]) }
  const r1b = followCertificates(lightOptions, noAnnouncement)
  assert.equal([r1b.ok, !r1b.ok && r1b.index, !r1b.ok && r1b.code], [false, 3, 'UNKNOWN_VALIDATOR'])
  // 2. An announcement whose evidence names another set than the one claimed.
  const lying = steps.map((s, i) =>
    i === 1 ? { ...s, announce: { validators: set(5, 6, 7, 8), evidence: s.announce!.evidence } } : s,
  )
  const r2 = followCertificates(lightOptions, lying)
  assert.equal([r2.ok, !r2.ok && r2.index, !r2.ok && r2.code], [false, 1, 'BAD_ANNOUNCEMENT'])
  // 3. A block announcing the forged set, certified by the forged keys themselves (not the old set).
  const forgedBlock = blockAnnouncing(5, [5, 6, 7, 8])
  const forged = [...steps]
  forged[1] = {
    certificate: certify(5, forgedBlock, 0, [5, 6, 7]),
    announce: { validators: set(5, 6, 7, 8), evidence: forgedBlock },
  }
  const r3 = followCertificates(lightOptions, forged)
  assert.equal([r3.ok, !r3.ok && r3.index, !r3.ok && r3.code], [false, 1, 'UNKNOWN_VALIDATOR'])
  // 4. Out of order, and evidence that is another block's (the change block, shown for height 8).
  const r4 = followCertificates(lightOptions, [steps[2]!, steps[0]!])
  assert.equal([r4.ok, !r4.ok && r4.code], [false, 'OUT_OF_ORDER'])
  const twice = [...steps.slice(0, 2), { ...steps[2]!, announce: steps[1]!.announce }]
  const r5 = followCertificates(lightOptions, twice)
  assert.equal([r5.ok, !r5.ok && r5.index, !r5.ok && r5.code], [false, 2, 'BAD_ANNOUNCEMENT'])
})

test.run()
