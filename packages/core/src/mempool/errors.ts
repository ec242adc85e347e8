import { CityError } from '../errors/index.ts'

/**
 * Why the mempool refused a transaction. Codec errors (`MALFORMED`, `TOO_LARGE`, ...) and the errors a
 * service's `check` throws pass through with their own codes; these are the mempool's own.
 */
export type MempoolErrorCode =
  /** The envelope is larger than `limits.maxTxBytes` (details: size, limit). */
  | 'TX_TOO_LARGE'
  /** The body names another chain (details: expected, got). */
  | 'WRONG_CHAIN'
  /** `expiry` is at or below the last committed height: no future block may include it. */
  | 'TX_EXPIRED'
  /** The exact bytes are already pending, being admitted, or were committed recently. */
  | 'DUPLICATE_TX'
  /** The signer's committed nonce already reached this nonce. */
  | 'NONCE_TOO_LOW'
  /** Another transaction of the same signer with the same nonce is pending (no replacement). */
  | 'NONCE_TAKEN'
  /** The nonce is more than `limits.maxPerSigner` ahead of the committed nonce. */
  | 'NONCE_GAP'
  /** Admitting it would exceed `limits.maxTxs` or `limits.maxBytes`; nothing is evicted silently. */
  | 'MEMPOOL_FULL'
  /** The signature does not verify under the project's validity rule. */
  | 'BAD_SIGNATURE'
  /** The verifier failed (closed, crashed): says nothing about the transaction; retry later. */
  | 'VERIFIER_FAILED'
  /** The service check threw something that is not a CityError (a bug in the check). */
  | 'CHECK_FAILED'
  /** A node callback (`committedNonce`, `height`) threw: a bug in the node, not the sender's fault. */
  | 'INTERNAL'

// Only what an honest peer with the same rules could never send is penalised; the rest are races.
const PENALIZED: ReadonlySet<MempoolErrorCode> = new Set(['TX_TOO_LARGE', 'WRONG_CHAIN', 'BAD_SIGNATURE'])

/** A refusal by the mempool, with a stable code and typed details. */
export class MempoolError extends CityError<MempoolErrorCode> {
  constructor(code: MempoolErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(code, message, details, PENALIZED.has(code))
    this.name = 'MempoolError'
  }
}
