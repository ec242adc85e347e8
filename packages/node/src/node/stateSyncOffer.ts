// The offer phase of state sync: each peer's offer (see stateSyncServe.ts) is checked against the
// validator set of its height, which the joiner learns by walking the chain's validator history from the
// genesis set (validatorHistory.ts), fetched from the peers themselves: a peer cannot make it accept a
// set that no earlier set announced, nor hide a change (the offer proves how many there were).
import {
  CityError,
  type SignatureCheck,
  type SyncTarget,
  blockHash,
  decodeBlock,
  decodeCertificate,
  decodeHeader,
  decodeStateProof,
  decodeStrict,
  equalBytes,
  expectArray,
  expectBytes,
  expectUint,
  utf8,
  validatorCountKey,
  verifyStateProof,
} from '@cityledger/core'
import { verifyCertificateAt } from '@cityledger/consensus'
import { type ChainSchedule, genesisChainSchedule } from './schedule.ts'
import { type HistoryEntry, decodeHistoryEntry, walkValidatorHistory } from './validatorHistory.ts'

/** What checking offers needs: the chain and its genesis set. */
export interface OfferContext {
  chainId: string
  genesisHash: Uint8Array
  genesisValidators: Uint8Array[]
  checkpointInterval: number
  verify: (check: SignatureCheck) => boolean
}

/** An offer decoded, not checked yet. */
export interface Offer {
  height: number
  blockBytes: Uint8Array
  certificate: Uint8Array
  nextHeaderBytes: Uint8Array
  nextCertificate: Uint8Array
  /** The `_sys/validators/n` value the peer claims after `height` (undefined: no change recorded). */
  countValue: Uint8Array | undefined
  countProof: Uint8Array
  /** The number of changes that value says (0 when undefined). */
  count: number
}

const badOffer = (why: string) => new CityError('BAD_OFFER', why)

/** Decodes an offer answer; undefined for the empty offer (the peer has nothing to offer). */
export function decodeOffer(bytes: Uint8Array): Offer | undefined {
  const f = decodeStrict(bytes, { maxBytes: bytes.length, maxDepth: 2 })
  if (Array.isArray(f) && f.length === 0) return undefined
  const [h, block, cert, next, nextCert, countValue, countProof] = expectArray(f, 7, 'offer')
  const value = countValue === null ? undefined : expectBytes(countValue, 'count')
  let count = 0
  if (value) {
    const n = decodeStrict(value, { maxBytes: 16, maxDepth: 0 })
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1)
      throw badOffer('count: not a number of changes')
    count = n
  }
  return {
    height: expectUint(h, 'height'),
    blockBytes: expectBytes(block, 'block'),
    certificate: expectBytes(cert, 'certificate'),
    nextHeaderBytes: expectBytes(next, 'nextHeader'),
    nextCertificate: expectBytes(nextCert, 'nextCertificate'),
    countValue: value,
    countProof: expectBytes(countProof, 'countProof'),
    count,
  }
}

/**
 * Checks an offer against `chain` (which must hold at least `offer.count` changes) and returns the
 * target it certifies. Throws `BAD_OFFER` when a certificate does not verify against the set of its
 * height, the blocks do not chain, or the count proof does not hold under the certified root.
 */
export function checkOffer(o: OfferContext, chain: ChainSchedule, offer: Offer): SyncTarget {
  const { height } = offer
  const block = decodeBlock(offer.blockBytes)
  const next = decodeHeader(offer.nextHeaderBytes)
  const certs = [decodeCertificate(offer.certificate), decodeCertificate(offer.nextCertificate)]
  const hashes = [block.hash, blockHash(offer.nextHeaderBytes)]
  if (chain.seq < offer.count)
    throw new Error(`invariant broken: the offer needs ${offer.count} changes walked, ${chain.seq} are`)
  for (const [i, c] of certs.entries()) {
    const verdict = verifyCertificateAt(c, chain.schedule, o.chainId, o.verify)
    if (!verdict.ok) throw badOffer(`certificate of block ${height + i}: ${verdict.code}`)
    if (c.height !== height + i || !equalBytes(c.blockHash, hashes[i]!))
      throw badOffer(`certificate of block ${height + i} is not for the offered block`)
  }
  if (block.header.height !== height || next.height !== height + 1 || block.header.chainId !== o.chainId)
    throw badOffer('blocks of another height or chain')
  if (!equalBytes(next.parentHash, block.hash))
    throw badOffer(`block ${height + 1} does not follow block ${height}`)
  // Block h + 1's header, certified, carries the state root after h.
  const stateRoot = next.prevStateRoot
  let proofOk = false
  try {
    const proof = decodeStateProof(offer.countProof)
    proofOk = verifyStateProof(stateRoot, utf8.encode(validatorCountKey), offer.countValue, proof)
  } catch {}
  if (!proofOk)
    throw badOffer(`the count of validator changes (${offer.count}) is not proven under the state root`)
  return {
    chainId: o.chainId,
    genesisHash: o.genesisHash,
    height,
    stateRoot,
    block: offer.blockBytes,
    certificate: offer.certificate,
  }
}

/**
 * The validator history a walk has established so far, shared by the offers of every peer: entries are
 * fetched from a peer only past what is already walked, and each must extend the walk.
 */
export class HistoryWalk {
  readonly #o: OfferContext
  #chain: ChainSchedule
  readonly entries: HistoryEntry[] = []

  constructor(o: OfferContext) {
    this.#o = o
    this.#chain = genesisChainSchedule(o.genesisValidators, o.checkpointInterval)
  }

  get chain(): ChainSchedule {
    return this.#chain
  }

  /**
   * Walks up to change `count` with entries from `fetch(fromSeq)` (one answer: a list of encoded
   * entries). Throws `BAD_VALIDATOR_HISTORY` (marked penalize) on an entry that does not extend the walk
   * or when the peer stops short of `count`; entries walked before that stay.
   */
  async extend(count: number, fetch: (fromSeq: number) => Promise<Uint8Array>): Promise<void> {
    while (this.#chain.seq < count) {
      const from = this.#chain.seq + 1
      const answer = await fetch(from)
      const list = decodeStrict(answer, { maxBytes: answer.length, maxDepth: 1 })
      if (!Array.isArray(list) || list.length === 0)
        throw new CityError(
          'BAD_VALIDATOR_HISTORY',
          `the peer offered a state after ${count} validator changes and sent none from ${from}`,
          {},
          true,
        )
      const entries = list.slice(0, count - this.#chain.seq).map((e, i) => {
        try {
          return decodeHistoryEntry(expectBytes(e, `entries[${i}]`))
        } catch (err) {
          throw new CityError(
            'BAD_VALIDATOR_HISTORY',
            `entry ${from + i}: ${(err as Error).message}`,
            {},
            true,
          )
        }
      })
      this.#chain = walkValidatorHistory(this.#o, entries, this.#chain)
      this.entries.push(...entries)
    }
  }
}
