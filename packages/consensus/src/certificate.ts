import {
  type CommitCertificate,
  type SignatureCheck,
  type Vote,
  type VoteKind,
  certificateVote,
  toHex,
  voteSignatureCheck,
} from '@cityledger/core'
import { quorumSize } from './quorum.ts'
import type { SignatureEntry } from './messages/types.ts'

/** Why a certificate or proof was refused. */
export type CertificateErrorCode =
  | 'MALFORMED'
  | 'WRONG_CHAIN'
  | 'UNKNOWN_VALIDATOR'
  | 'DUPLICATE_SIGNER'
  | 'INSUFFICIENT_SIGNATURES'
  | 'BAD_SIGNATURE'

export type CertificateVerdict = { ok: true } | { ok: false; code: CertificateErrorCode; detail?: string }

/**
 * Checks that `signatures` are at least `quorum` signatures by distinct members of `validators`, each a
 * valid signature of the vote `voteFor(validator)`. Every listed signature must be valid: a certificate
 * with one bad entry is refused even if the rest reach the quorum (so certificates are all-good evidence).
 */
export function verifyVoteQuorum(
  signatures: readonly SignatureEntry[],
  voteFor: (validator: Uint8Array) => Vote,
  members: ReadonlySet<string>,
  quorum: number,
  verify: (check: SignatureCheck) => boolean,
): CertificateVerdict {
  if (signatures.length < quorum) {
    return { ok: false, code: 'INSUFFICIENT_SIGNATURES', detail: `${signatures.length} < ${quorum}` }
  }
  const seen = new Set<string>()
  for (const s of signatures) {
    const hex = toHex(s.validator)
    if (!members.has(hex)) return { ok: false, code: 'UNKNOWN_VALIDATOR', detail: hex }
    if (seen.has(hex)) return { ok: false, code: 'DUPLICATE_SIGNER', detail: hex }
    seen.add(hex)
  }
  for (const s of signatures) {
    if (s.signature.length !== 64 || !verify(voteSignatureCheck(voteFor(s.validator), s.signature))) {
      return { ok: false, code: 'BAD_SIGNATURE', detail: toHex(s.validator) }
    }
  }
  return { ok: true }
}

/**
 * Verifies a commit certificate on its own, as block sync and light clients do: the chain id matches,
 * and it holds at least floor(2n/3)+1 (2f+1) signatures by distinct validators of `validators`, each a
 * valid signature over the re-created commit vote `[1, chainId, commit, view, height, blockHash, validator]`.
 * It does not check that `cert.blockHash` is the hash of a particular block: compare that yourself.
 *
 * @example
 * const r = verifyCommitCertificate(decodeCertificate(bytes), validatorKeys, 'seoul-1', (c) => verifier.verify(c))
 * if (!r.ok) throw new Error(r.code)
 */
export function verifyCommitCertificate(
  cert: CommitCertificate,
  validators: readonly Uint8Array[],
  chainId: string,
  verify: (check: SignatureCheck) => boolean,
): CertificateVerdict {
  if (
    !cert ||
    !Array.isArray(cert.signatures) ||
    !(cert.blockHash instanceof Uint8Array) ||
    cert.blockHash.length !== 32
  ) {
    return { ok: false, code: 'MALFORMED' }
  }
  if (
    !Number.isSafeInteger(cert.height) ||
    cert.height < 1 ||
    !Number.isSafeInteger(cert.view) ||
    cert.view < 0
  ) {
    return { ok: false, code: 'MALFORMED', detail: 'height or view' }
  }
  if (cert.chainId !== chainId) return { ok: false, code: 'WRONG_CHAIN' }
  const members = new Set(validators.map(toHex))
  return verifyVoteQuorum(
    cert.signatures,
    (v) => certificateVote(cert, v),
    members,
    quorumForSet(validators.length),
    verify,
  )
}

function quorumForSet(n: number): number {
  return quorumSize(n)
}

/** The vote a signature in a prepared certificate or checkpoint proof stands for. */
export function makeVote(
  chainId: string,
  kind: VoteKind,
  view: number,
  height: number,
  digest: Uint8Array,
  validator: Uint8Array,
): Vote {
  return { chainId, kind, view, height, digest, validator }
}
