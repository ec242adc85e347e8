/** One signature to check: Ed25519 `signature` (64 bytes) of `message` by `publicKey` (32 bytes). */
export interface SignatureCheck {
  publicKey: Uint8Array
  message: Uint8Array
  signature: Uint8Array
}

/**
 * Every path that checks a signature goes through this interface, and every implementation returns
 * the verdict of the one validity rule (see `validity.ts`): two paths that disagreed would fork the chain.
 *
 * - `verify` checks one signature on the calling thread (consensus messages, a few per block);
 * - `verifyBatch` checks many, possibly on worker threads, and keeps their order in its answer;
 *   a pool applies back-pressure: the promise settles late rather than the queue growing without limit.
 *
 * @example
 * const ok = verifier.verify({ publicKey, message, signature })
 * const verdicts = await verifier.verifyBatch(checks) // boolean[] in the order of `checks`
 */
export interface SignatureVerifier {
  readonly name: string
  verify(check: SignatureCheck): boolean
  verifyBatch(checks: readonly SignatureCheck[]): Promise<boolean[]>
  /** Releases workers or native resources; the verifier is unusable afterwards. */
  close(): Promise<void>
}
