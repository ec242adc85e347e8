import { CityError } from '@cityledger/core'

/**
 * Why the replica refused an input. Codes are stable; `PENALIZE[code]` says whether the peer that
 * sent it did something no honest validator does (bad bytes, bad signature, equivocation...) or just
 * sent something late, early or twice (which honest peers do all the time on a lossy network).
 */
export type ConsensusErrorCode =
  | 'MALFORMED'
  | 'WRONG_CHAIN'
  | 'UNKNOWN_VALIDATOR'
  | 'BAD_SIGNATURE'
  | 'NOT_PRIMARY'
  | 'DIGEST_MISMATCH'
  | 'EQUIVOCATION'
  | 'BAD_CERTIFICATE'
  | 'BAD_CHECKPOINT'
  | 'BAD_VIEW_CHANGE'
  | 'BAD_NEW_VIEW'
  | 'INVALID_BLOCK'
  | 'OLD_VIEW'
  | 'FUTURE_VIEW'
  | 'BELOW_WATERMARK'
  | 'ABOVE_WATERMARK'
  | 'DUPLICATE'
  | 'NOT_READY'
  | 'STALE'
  | 'OTHER_EPOCH'
  | 'EPOCH_ENDED'

/** True for codes that only a faulty (or Byzantine) sender produces. */
export const PENALIZE: Readonly<Record<ConsensusErrorCode, boolean>> = {
  MALFORMED: true,
  WRONG_CHAIN: true,
  UNKNOWN_VALIDATOR: true,
  BAD_SIGNATURE: true,
  NOT_PRIMARY: true,
  DIGEST_MISMATCH: true,
  EQUIVOCATION: true,
  BAD_CERTIFICATE: true,
  BAD_CHECKPOINT: true,
  BAD_VIEW_CHANGE: true,
  BAD_NEW_VIEW: true,
  INVALID_BLOCK: true,
  OLD_VIEW: false,
  FUTURE_VIEW: false,
  BELOW_WATERMARK: false,
  ABOVE_WATERMARK: false,
  DUPLICATE: false,
  NOT_READY: false,
  STALE: false,
  // Honest laggards and early movers send messages of the epoch before or after ours.
  OTHER_EPOCH: false,
  // Heights above the epoch's last height belong to the next validator set (a late primary may try them).
  EPOCH_ENDED: false,
}

/**
 * A refused consensus input. `penalize` is derived from the code, so callers never disagree
 * about which refusals count against a peer.
 *
 * @example
 * try { decodeMessage(bytes) } catch (e) { if (e instanceof ConsensusError && e.penalize) peers.penalize(from) }
 */
export class ConsensusError extends CityError<ConsensusErrorCode> {
  constructor(code: ConsensusErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(code, message, details, PENALIZE[code])
    this.name = 'ConsensusError'
  }
}
