import { DOMAIN, signingMessage } from '../crypto/hash.ts'
import { sign } from '../crypto/keys.ts'
import type { SignatureCheck } from '../crypto/verifier.ts'
import { CHAIN_ID_RE } from './limits.ts'
import {
  CodecError,
  decodeStrict,
  encode,
  expectArray,
  expectBytes,
  expectString,
  expectUint,
} from './msgpack.ts'

const VOTE_VERSION = 1

/** Kinds of signed votes. A commit certificate is 2f+1 `commit` votes on one (view, height, digest). */
export const VoteKind = { prepare: 1, commit: 2, checkpoint: 3 } as const
export type VoteKind = (typeof VoteKind)[keyof typeof VoteKind]

/**
 * A consensus vote. Travels (and is signed) as the fixed-order array
 * `[version, chainId, kind, view, height, digest, validator]`, so anyone can re-create the exact bytes
 * from the fields: certificates carry only (validator, signature) pairs.
 * `digest` is the block hash for prepare/commit and the state root for checkpoints.
 */
export interface Vote {
  chainId: string
  kind: VoteKind
  view: number
  height: number
  digest: Uint8Array
  /** Ed25519 public key of the voter. */
  validator: Uint8Array
}

export function encodeVote(v: Vote): Uint8Array {
  return encode([VOTE_VERSION, v.chainId, v.kind, v.view, v.height, v.digest, v.validator])
}

export function decodeVote(bytes: Uint8Array): Vote {
  const f = expectArray(decodeStrict(bytes, { maxBytes: 256, maxDepth: 1 }), 7, 'vote')
  if (f[0] !== VOTE_VERSION) throw new CodecError('BAD_FIELD', `vote.version: unsupported ${String(f[0])}`)
  const kind = expectUint(f[2], 'vote.kind', 3)
  if (kind < 1) throw new CodecError('BAD_FIELD', 'vote.kind: unknown', { field: 'kind' })
  return {
    chainId: expectString(f[1], 'vote.chainId', CHAIN_ID_RE),
    kind: kind as VoteKind,
    view: expectUint(f[3], 'vote.view'),
    height: expectUint(f[4], 'vote.height'),
    digest: new Uint8Array(expectBytes(f[5], 'vote.digest', 32)),
    validator: new Uint8Array(expectBytes(f[6], 'vote.validator', 32)),
  }
}

/** `cityledger/vote/v1 || 0x00 || voteBytes`. */
export function voteSigningMessage(v: Vote): Uint8Array {
  return signingMessage(DOMAIN.vote, encodeVote(v))
}

export function signVote(v: Vote, secretKey: Uint8Array): Uint8Array {
  return sign(secretKey, voteSigningMessage(v))
}

export function voteSignatureCheck(v: Vote, signature: Uint8Array): SignatureCheck {
  return { publicKey: v.validator, message: voteSigningMessage(v), signature }
}

/**
 * 2f+1 commit votes for one block. Encoded as `[version, chainId, view, height, blockHash, [[validator, sig]...]]`;
 * verify with `verifyCommitCertificate` from @cityledger/consensus, which knows the validator set.
 */
export interface CommitCertificate {
  chainId: string
  view: number
  height: number
  blockHash: Uint8Array
  signatures: { validator: Uint8Array; signature: Uint8Array }[]
}

export function encodeCertificate(c: CommitCertificate): Uint8Array {
  return encode([
    VOTE_VERSION,
    c.chainId,
    c.view,
    c.height,
    c.blockHash,
    c.signatures.map((s) => [s.validator, s.signature]),
  ])
}

export function decodeCertificate(bytes: Uint8Array, maxSigners = 1024): CommitCertificate {
  const f = expectArray(
    decodeStrict(bytes, { maxBytes: 64 + maxSigners * 102, maxDepth: 3 }),
    6,
    'certificate',
  )
  if (f[0] !== VOTE_VERSION)
    throw new CodecError('BAD_FIELD', `certificate.version: unsupported ${String(f[0])}`)
  const list = f[5]
  if (!Array.isArray(list) || list.length > maxSigners) {
    throw new CodecError('BAD_FIELD', 'certificate.signatures: expected an array', { field: 'signatures' })
  }
  return {
    chainId: expectString(f[1], 'certificate.chainId', CHAIN_ID_RE),
    view: expectUint(f[2], 'certificate.view'),
    height: expectUint(f[3], 'certificate.height'),
    blockHash: new Uint8Array(expectBytes(f[4], 'certificate.blockHash', 32)),
    signatures: list.map((e, i) => {
      const p = expectArray(e, 2, `certificate.signatures[${i}]`)
      return {
        validator: new Uint8Array(expectBytes(p[0], 'certificate.validator', 32)),
        signature: new Uint8Array(expectBytes(p[1], 'certificate.signature', 64)),
      }
    }),
  }
}

/** The commit vote a certificate entry stands for (to re-create its signed bytes). */
export function certificateVote(c: CommitCertificate, validator: Uint8Array): Vote {
  return {
    chainId: c.chainId,
    kind: VoteKind.commit,
    view: c.view,
    height: c.height,
    digest: c.blockHash,
    validator,
  }
}
