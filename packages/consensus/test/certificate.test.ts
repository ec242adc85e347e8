import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  type CommitCertificate,
  VoteKind,
  decodeCertificate,
  encodeCertificate,
  generateKeyPair,
  referenceVerdict,
  sha256,
  signVote,
} from '@cityledger/core'
import { seedFor } from '@cityledger/core/testing'
import { quorumSize, verifyCommitCertificate } from '@cityledger/consensus'

const keys = Array.from({ length: 7 }, (_, i) => generateKeyPair(seedFor(`cert-${i}`)))
const validators = keys.map((k) => k.publicKey)
const blockHash = sha256(new Uint8Array([42]))
const verify = referenceVerdict

function cert(signers: number[], over: Partial<CommitCertificate> = {}): CommitCertificate {
  const base = { chainId: 'seoul-1', view: 2, height: 12, blockHash, ...over }
  return {
    ...base,
    signatures: signers.map((i) => ({
      validator: keys[i]!.publicKey,
      signature: signVote(
        {
          chainId: base.chainId,
          kind: VoteKind.commit,
          view: base.view,
          height: base.height,
          digest: base.blockHash,
          validator: keys[i]!.publicKey,
        },
        keys[i]!.secretKey,
      ),
    })),
  }
}

test('quorums: 2f+1 for n = 3f+1', () => {
  assert.is(quorumSize(4), 3)
  assert.is(quorumSize(7), 5)
  assert.is(quorumSize(10), 7)
})

test('2f+1 real Ed25519 commit signatures verify, also after an encode/decode round trip', () => {
  const c = cert([0, 2, 3, 5, 6])
  assert.equal(verifyCommitCertificate(c, validators, 'seoul-1', verify), { ok: true })
  assert.equal(
    verifyCommitCertificate(decodeCertificate(encodeCertificate(c)), validators, 'seoul-1', verify),
    { ok: true },
  )
})

test('refusals name the reason', () => {
  const code = (c: CommitCertificate, chain = 'seoul-1') => {
    const r = verifyCommitCertificate(c, validators, chain, verify)
    return r.ok ? 'ok' : r.code
  }
  assert.is(code(cert([0, 1, 2, 3])), 'INSUFFICIENT_SIGNATURES')
  assert.is(code(cert([0, 1, 2, 3, 4]), 'other-chain'), 'WRONG_CHAIN')
  const dup = cert([0, 1, 2, 3, 4])
  dup.signatures[4] = dup.signatures[0]!
  assert.is(code(dup), 'DUPLICATE_SIGNER')
  const stranger = generateKeyPair(seedFor('stranger'))
  const unk = cert([0, 1, 2, 3, 4])
  unk.signatures[1] = { validator: stranger.publicKey, signature: unk.signatures[1]!.signature }
  assert.is(code(unk), 'UNKNOWN_VALIDATOR')
  // Signatures over another height, view or block do not count.
  assert.is(code({ ...cert([0, 1, 2, 3, 4]), height: 13 }), 'BAD_SIGNATURE')
  assert.is(code({ ...cert([0, 1, 2, 3, 4]), view: 1 }), 'BAD_SIGNATURE')
  assert.is(code({ ...cert([0, 1, 2, 3, 4]), blockHash: sha256(new Uint8Array([43])) }), 'BAD_SIGNATURE')
  // One bad entry spoils the certificate even when the others reach the quorum.
  const extra = cert([0, 1, 2, 3, 4, 5])
  extra.signatures[5] = { ...extra.signatures[5]!, signature: new Uint8Array(64) }
  assert.is(code(extra), 'BAD_SIGNATURE')
  assert.is(code({ ...cert([0, 1, 2, 3, 4]), height: 0 }), 'MALFORMED')
})

test.run()
