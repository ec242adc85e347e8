import type { Vote } from '@cityledger/core'

/** A validator's signature inside a certificate or proof. */
export interface SignatureEntry {
  validator: Uint8Array
  signature: Uint8Array
}

/** Stable checkpoint: 2f+1 checkpoint votes (view 0) on (height, state digest). Height 0 is genesis, with no signatures. */
export interface CheckpointProof {
  height: number
  digest: Uint8Array
  signatures: SignatureEntry[]
}

/** Prepared certificate: 2f+1 prepare votes on (view, height, digest); the primary's pre-prepare is its prepare vote. */
export interface PreparedCertificate {
  height: number
  view: number
  digest: Uint8Array
  signatures: SignatureEntry[]
}

/** VIEW-CHANGE body (signed under DOMAIN.consensus). `view` is the view being moved to. */
export interface ViewChangeBody {
  chainId: string
  view: number
  validator: Uint8Array
  checkpoint: CheckpointProof
  /** One certificate per height above the checkpoint, the one of the highest view; heights ascending. */
  prepared: PreparedCertificate[]
}

/** One re-proposal of a NEW-VIEW: a prepared digest carried over, or the null digest (a filler). */
export interface Reproposal {
  height: number
  digest: Uint8Array
  /** The new primary's prepare vote on (view, height, digest): its pre-prepare for this height. */
  signature: Uint8Array
}

/** A signed VIEW-CHANGE as carried inside a NEW-VIEW. */
export interface SignedViewChange {
  bodyBytes: Uint8Array
  signature: Uint8Array
}

/** NEW-VIEW body (signed under DOMAIN.consensus). */
export interface NewViewBody {
  chainId: string
  view: number
  validator: Uint8Array
  viewChanges: SignedViewChange[]
  reproposals: Reproposal[]
}

/** STATUS: a replica that stopped making progress tells its peers where it is, so they can help it catch up. */
export interface StatusBody {
  chainId: string
  view: number
  committedHeight: number
  validator: Uint8Array
  /**
   * Counts the STATUS messages its sender sent (0 when absent): two STATUS of one stuck replica differ, so a
   * receiver answers each new one once and never answers replayed bytes again.
   */
  round?: number
}

/** BLOCK-REQUEST body (signed under DOMAIN.consensus): the sender lacks the block `digest` at `height`. */
export interface BlockRequestBody {
  chainId: string
  height: number
  digest: Uint8Array
  validator: Uint8Array
}

/**
 * A decoded consensus message. Wire form of every kind: `[1, type, body, signature, attachments]`.
 * - prePrepare: body = prepare Vote bytes of the primary, attachments = [block];
 * - prepare / commit / checkpoint: body = Vote bytes, no attachments;
 * - viewChange: body = ViewChangeBody bytes, no attachments (digests and certificates only: bounded whatever
 *   the block size; a replica that lacks a re-proposed block fetches it with BLOCK-REQUEST);
 * - newView: body = NewViewBody bytes, no attachments;
 * - status: body = StatusBody bytes, attachments = [the commit certificate of `committedHeight`] or none
 *   (a claimed height only counts when it is proven);
 * - blockRequest: body = BlockRequestBody bytes, no attachments;
 * - block: body = [version, type, chainId, height, digest], empty signature, attachments = [block] (the
 *   answer to a BLOCK-REQUEST; self-authenticating: the block must hash to the digest asked for);
 * - certificate: body = CommitCertificate bytes (core encoding), empty signature, attachments = [block]
 *   (empty for a null block).
 * Votes sign `voteSigningMessage(vote)` (the exact body bytes under DOMAIN.vote); the other kinds sign
 * `signingMessage(DOMAIN.consensus, body)`.
 */
export type ConsensusMessage =
  | { type: 'prePrepare'; vote: Vote; signature: Uint8Array; block: Uint8Array }
  | { type: 'prepare'; vote: Vote; signature: Uint8Array }
  | { type: 'commit'; vote: Vote; signature: Uint8Array }
  | { type: 'checkpoint'; vote: Vote; signature: Uint8Array }
  | { type: 'viewChange'; body: ViewChangeBody; bodyBytes: Uint8Array; signature: Uint8Array }
  | { type: 'newView'; body: NewViewBody; bodyBytes: Uint8Array; signature: Uint8Array }
  | {
      type: 'status'
      body: StatusBody
      bodyBytes: Uint8Array
      signature: Uint8Array
      certificate?: import('@cityledger/core').CommitCertificate
    }
  | { type: 'blockRequest'; body: BlockRequestBody; bodyBytes: Uint8Array; signature: Uint8Array }
  | { type: 'block'; chainId: string; height: number; digest: Uint8Array; block: Uint8Array }
  | {
      type: 'certificate'
      certificate: import('@cityledger/core').CommitCertificate
      bodyBytes: Uint8Array
      block: Uint8Array
    }

export type MessageKind = ConsensusMessage['type']

/** Wire type numbers. Never reuse a number. */
export const MESSAGE_TYPE = {
  prePrepare: 1,
  prepare: 2,
  commit: 3,
  checkpoint: 4,
  viewChange: 5,
  newView: 6,
  status: 7,
  certificate: 8,
  blockRequest: 9,
  block: 10,
} as const satisfies Record<MessageKind, number>
