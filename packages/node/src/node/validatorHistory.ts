// The validator history of a chain: for each executed validator-set change (`_sys/validators/<seq>`,
// core runtime/validators.ts), the evidence that the set before it announced it. A node that has not
// replayed the chain (state sync, a light client) walks these entries from the genesis set to learn the
// set of any height, instead of trusting whoever serves it a certificate.
//
// An entry for change `seq` is [seq, headerBytes, certificate, value, proof]:
// - `headerBytes` is the header of a block b with executedAt < b < the first height of the change's
//   epoch, and `certificate` its commit certificate: b is signed by the sets of the earlier changes,
//   which the walk already knows;
// - `value` is the record's state value, `proof` its state proof (encodeStateProof) under the root b's
//   header carries (the state after b - 1, which holds the record: records are never rewritten).
// The epoch of a change starts at least two heights after the block that executed it
// (epochs.ts scheduleChange), so block executedAt + 1 is always signed by the old set.
import {
  CityError,
  MAX_SCHEDULED_VALIDATORS,
  type SignatureCheck,
  blockHash,
  decodeCertificate,
  decodeHeader,
  decodeStateProof,
  decodeStrict,
  encode,
  equalBytes,
  expectArray,
  expectBytes,
  expectUint,
  utf8,
  validatorChangeKey,
  verifyStateProof,
} from '@cityledger/core'
import { verifyCertificateAt } from '@cityledger/consensus'
import { type ChainSchedule, extendSchedule, genesisChainSchedule } from './schedule.ts'

/** One entry, as stored and sent. */
export interface HistoryEntry {
  seq: number
  headerBytes: Uint8Array
  certificate: Uint8Array
  value: Uint8Array
  proof: Uint8Array
}

/** What a walk checks entries against. */
export interface HistoryWalkOptions {
  chainId: string
  genesisValidators: readonly Uint8Array[]
  checkpointInterval: number
  verify: (check: SignatureCheck) => boolean
}

export const encodeHistoryEntry = (e: HistoryEntry): Uint8Array =>
  encode([e.seq, e.headerBytes, e.certificate, e.value, e.proof])

/** Decodes an entry (BAD_FIELD and codec errors on garbage). */
export function decodeHistoryEntry(bytes: Uint8Array): HistoryEntry {
  const f = expectArray(decodeStrict(bytes, { maxBytes: bytes.length, maxDepth: 2 }), 5, 'history entry')
  return {
    seq: expectUint(f[0], 'seq'),
    headerBytes: expectBytes(f[1], 'header'),
    certificate: expectBytes(f[2], 'certificate'),
    value: expectBytes(f[3], 'value'),
    proof: expectBytes(f[4], 'proof'),
  }
}

const bad = (seq: number, why: string) =>
  new CityError('BAD_VALIDATOR_HISTORY', `validator history entry ${seq}: ${why}`, { seq }, true)

/** The record a value holds, checked field by field. */
function decodeRecord(seq: number, value: Uint8Array) {
  let r: unknown
  try {
    r = decodeStrict(value, { maxBytes: value.length, maxDepth: 2 })
  } catch (err) {
    throw bad(seq, `record: ${(err as Error).message}`)
  }
  const { height, executedAt, keys } = (r ?? {}) as Record<string, unknown>
  const uint = (n: unknown) => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0
  if (
    !uint(height) ||
    !uint(executedAt) ||
    !Array.isArray(keys) ||
    keys.length < 1 ||
    keys.length > MAX_SCHEDULED_VALIDATORS
  )
    throw bad(seq, 'record: not { height, executedAt, keys }')
  if (!keys.every((k) => k instanceof Uint8Array && k.length === 32))
    throw bad(seq, 'record: keys must be 32-byte public keys')
  return { seq, height: height as number, executedAt: executedAt as number, keys: keys as Uint8Array[] }
}

/**
 * Extends `from` (default: the genesis set) by `entries`, which must continue it in order (seq
 * from.seq + 1, + 2, ...). Each entry's certificate must verify against the set of its height as known
 * so far, its header hash to that certificate, its proof show the record under the header's state root,
 * and the block lie before the epoch the record starts. Throws `BAD_VALIDATOR_HISTORY` (marked penalize:
 * a peer that sends it lies) on the first entry that does not; nothing of a bad walk is kept.
 */
export function walkValidatorHistory(
  o: HistoryWalkOptions,
  entries: readonly HistoryEntry[],
  from: ChainSchedule = genesisChainSchedule(o.genesisValidators, o.checkpointInterval),
): ChainSchedule {
  let chain = from
  for (const e of entries) {
    const seq = chain.seq + 1
    if (e.seq !== seq) throw bad(e.seq, `out of order (expected ${seq})`)
    let header: ReturnType<typeof decodeHeader>
    let cert: ReturnType<typeof decodeCertificate>
    try {
      header = decodeHeader(e.headerBytes)
      cert = decodeCertificate(e.certificate)
    } catch (err) {
      throw bad(seq, (err as Error).message)
    }
    if (header.chainId !== o.chainId) throw bad(seq, 'a header of another chain')
    if (cert.height !== header.height || !equalBytes(cert.blockHash, blockHash(e.headerBytes)))
      throw bad(seq, 'the certificate is not for the header')
    const verdict = verifyCertificateAt(cert, chain.schedule, o.chainId, o.verify)
    if (!verdict.ok) throw bad(seq, `certificate of block ${header.height}: ${verdict.code}`)
    const record = decodeRecord(seq, e.value)
    let proof: ReturnType<typeof decodeStateProof>
    try {
      proof = decodeStateProof(e.proof)
    } catch (err) {
      throw bad(seq, `proof: ${(err as Error).message}`)
    }
    if (!verifyStateProof(header.prevStateRoot, utf8.encode(validatorChangeKey(seq)), e.value, proof))
      throw bad(seq, `the proof does not show the record under block ${header.height}'s state root`)
    if (header.height <= record.executedAt)
      throw bad(seq, `block ${header.height} is not after the change's block ${record.executedAt}`)
    let next: ChainSchedule
    try {
      next = extendSchedule(chain, [record])
    } catch (err) {
      throw bad(seq, (err as Error).message)
    }
    const firstHeight = next.schedule.epochs.at(-1)!.firstHeight
    if (header.height >= firstHeight)
      throw bad(seq, `block ${header.height} is in the epoch the change starts (${firstHeight})`)
    chain = next
  }
  return chain
}
