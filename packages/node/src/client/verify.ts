import { type ValidatorSchedule, verifyCertificateAt, verifyCommitCertificate } from '@cityledger/consensus'
import {
  blockHash,
  decodeStateProof,
  encodeHeader,
  equalBytes,
  fromHex,
  isHex,
  referenceVerdict,
  toHex,
  verifyStateProof,
} from '@cityledger/core'
import type { BlockView, QueryResult } from '../rpc/backend.ts'
import { clientError } from './http.ts'

/** One state entry a query read, as the node proves it: hex key, hex value (null: absent), hex proof. */
export interface ProvenEntry {
  key: string
  value: string | null
  proof: string
}

/** The proof part of a query answer (see the node's RPC backend). */
export interface QueryProof {
  /** State root after block `height`, hex. */
  root: string
  height: number
  key: string
  entries: ProvenEntry[]
}

/**
 * Checks every entry of a query answer's proof against `root` (core's `verifyStateProof` on the
 * decoded proof bytes). Shaped as the client's `ProofVerifier`, so it can be given as `verifyProof`
 * to `client.query`; `key` and `value` are not used: the proof names the keys it covers, and the
 * answer's `value` is what the service computed from those entries. Never throws; false on anything
 * malformed.
 *
 * @example
 * await client.query('identity', 'subject', { subject }, { verifyProof: verifyStateProofs })
 */
export function verifyStateProofs(
  root: Uint8Array,
  _key: Uint8Array,
  _value: unknown,
  proof: unknown,
): boolean {
  const p = proof as QueryProof | null
  if (!p || typeof p !== 'object' || !isHex(p.root, 32) || toHex(root) !== p.root.toLowerCase()) return false
  if (!Array.isArray(p.entries) || p.entries.length === 0) return false
  for (const e of p.entries) {
    if (!e || !isHex(e.key) || (e.value !== null && !isHex(e.value)) || !isHex(e.proof)) return false
    try {
      const value = e.value === null ? undefined : fromHex(e.value)
      if (!verifyStateProof(root, fromHex(e.key), value, decodeStateProof(fromHex(e.proof)))) return false
    } catch {
      return false
    }
  }
  return true
}

/** What `verifyAnchor` established: the block that commits to the state root, and who signed it. */
export interface Anchor {
  /** Hash of block `height + 1`, hex: its header carries the root as `prevStateRoot`. */
  block: string
  /** Validators whose commit signatures were checked. */
  signers: string[]
}

/**
 * Whom `verifyAnchor` checks the certificate against: the genesis set alone (`validators`, chain id
 * `chainId`: right until the first validator-set change), or a `schedule` walked from it through the
 * validator history (the set and epoch chain id `<chainId>--e<N>` of the block's height).
 */
export type AnchorTrust =
  | { chainId: string; validators: readonly Uint8Array[] }
  | { chainId: string; schedule: ValidatorSchedule }

/**
 * Checks that `root` (the state after block `height`) is committed by the chain: it is the
 * `prevStateRoot` of `next` (block `height + 1`), whose header hashes to its hash, and whose commit
 * certificate carries valid signatures of a quorum of the set of that height on chain `chainId` (see
 * `AnchorTrust`). The validator set comes from the caller (the genesis it trusts, and a history it
 * walked from it), never from the node. Throws BAD_PROOF naming the step that failed.
 */
export function verifyAnchor(next: BlockView, root: Uint8Array, height: number, o: AnchorTrust): Anchor {
  const h = next.header
  if (h.height !== height + 1) throw clientError('BAD_PROOF', `block ${h.height} is not block ${height + 1}`)
  if (h.chainId !== o.chainId) throw clientError('BAD_PROOF', `block ${h.height} is for chain ${h.chainId}`)
  let hash: Uint8Array
  try {
    hash = blockHash(
      encodeHeader({
        chainId: h.chainId,
        height: h.height,
        view: h.view,
        time: h.time,
        parentHash: fromHex(h.parentHash),
        txRoot: fromHex(h.txRoot),
        prevStateRoot: fromHex(h.prevStateRoot),
        proposer: fromHex(h.proposer),
      }),
    )
  } catch (err) {
    throw clientError('BAD_PROOF', `block ${h.height}: malformed header (${(err as Error).message})`)
  }
  if (toHex(hash) !== next.hash)
    throw clientError('BAD_PROOF', `block ${h.height}: header does not hash to ${next.hash}`)
  if (!isHex(h.prevStateRoot, 32) || !equalBytes(fromHex(h.prevStateRoot), root))
    throw clientError(
      'BAD_PROOF',
      `block ${h.height} carries state root ${h.prevStateRoot}, not ${toHex(root)}`,
    )
  const c = next.certificate
  if (c.height !== h.height || c.blockHash !== next.hash)
    throw clientError('BAD_PROOF', `the certificate is for another block than ${h.height}`)
  let verdict: ReturnType<typeof verifyCommitCertificate>
  try {
    const cert = {
      chainId: c.chainId,
      view: c.view,
      height: c.height,
      blockHash: fromHex(c.blockHash),
      signatures: c.signatures.map((s) => ({
        validator: fromHex(s.validator),
        signature: fromHex(s.signature),
      })),
    }
    verdict =
      'schedule' in o
        ? verifyCertificateAt(cert, o.schedule, o.chainId, referenceVerdict)
        : verifyCommitCertificate(cert, o.validators, o.chainId, referenceVerdict)
  } catch (err) {
    throw clientError('BAD_PROOF', `certificate of block ${h.height}: malformed (${(err as Error).message})`)
  }
  if (!verdict.ok) throw clientError('BAD_PROOF', `certificate of block ${h.height}: ${verdict.code}`)
  return { block: next.hash, signers: c.signatures.map((s) => s.validator) }
}

/** The proof of `answer` in its expected shape, or BAD_PROOF / PROOF_MISSING. */
export function proofOf(answer: QueryResult): QueryProof & { rootBytes: Uint8Array } {
  const p = answer.proof as QueryProof | undefined | null
  if (p === undefined || p === null) throw clientError('PROOF_MISSING', 'the answer carries no proof')
  if (typeof p !== 'object' || !isHex(p.root, 32) || !Number.isSafeInteger(p.height) || p.height < 0)
    throw clientError('BAD_PROOF', 'proof: expected { root, height, entries }')
  if (p.height !== answer.height)
    throw clientError('BAD_PROOF', `proof is for height ${p.height}, the answer ${answer.height}`)
  return { ...p, rootBytes: fromHex(p.root) }
}
