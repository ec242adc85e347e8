import { CityError } from '../errors/index.ts'
import type { SignatureCheck } from './verifier.ts'

/**
 * Codes of the signature-verification layer. An invalid signature is never an error (it is a `false`
 * verdict); these codes are for misuse and for failures of the machinery itself.
 * - `VERIFIER_BAD_INPUT`: a check whose fields are not byte arrays (a caller bug, not a peer's fault);
 * - `VERIFIER_BAD_OPTIONS`: a factory got options it cannot honour (size, maxQueue, chunkSize, kind);
 * - `VERIFIER_BACKEND_UNAVAILABLE`: the native backend that was asked for cannot load here;
 * - `VERIFIER_CLOSED`: the verifier was closed (pending pool batches are rejected with it too);
 * - `VERIFIER_WORKER_CRASHED`: a pool worker died with the batch in flight (the pool replaces it;
 *   the caller may retry the batch).
 */
export type VerifierErrorCode =
  | 'VERIFIER_BAD_INPUT'
  | 'VERIFIER_BAD_OPTIONS'
  | 'VERIFIER_BACKEND_UNAVAILABLE'
  | 'VERIFIER_CLOSED'
  | 'VERIFIER_WORKER_CRASHED'

/** The error every verifier throws or rejects with; see `VerifierErrorCode`. */
export class VerifierError extends CityError<VerifierErrorCode> {
  constructor(code: VerifierErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(code, message, details, false)
    this.name = 'VerifierError'
  }
}

/**
 * Guards a public input: each field must be a Uint8Array (any length: wrong lengths are a `false`
 * verdict, not an error, so a peer's garbage never throws).
 */
export function assertCheck(check: SignatureCheck, index?: number): void {
  const where = index === undefined ? 'check' : `checks[${index}]`
  if (check === null || typeof check !== 'object') {
    throw new VerifierError('VERIFIER_BAD_INPUT', `${where}: expected { publicKey, message, signature }`)
  }
  for (const field of ['publicKey', 'message', 'signature'] as const) {
    if (!(check[field] instanceof Uint8Array)) {
      throw new VerifierError('VERIFIER_BAD_INPUT', `${where}.${field}: expected a Uint8Array`, { field })
    }
  }
}

export function closedError(name: string): VerifierError {
  return new VerifierError('VERIFIER_CLOSED', `verifier '${name}' is closed`)
}
