import { CityError } from '../errors/index.ts'

/**
 * Codes of the storage domain. `STORE_CORRUPT` means the data on disk is not what this engine wrote
 * (truncated value, missing block under the recorded height, state root mismatch): an operator must
 * restore or resync; the node must not continue on it.
 */
export type StoreErrorCode =
  | 'STORE_CORRUPT'
  | 'STORE_CLOSED'
  | 'STORE_IO'
  | 'STORE_LOCKED'
  | 'STORE_BAD_INPUT'
  | 'STORE_WRONG_CHAIN'
  | 'STORE_NOT_INITIALIZED'
  | 'STORE_GENESIS_EXISTS'
  | 'STORE_BAD_HEIGHT'
  | 'STORE_BAD_PARENT'
  | 'STORE_BAD_STATE_ROOT'
  | 'STORE_BAD_BLOCK'
  | 'STORE_BAD_CERTIFICATE'
  | 'STORE_BAD_RESULTS'
  | 'STORE_TX_COMMITTED'
  | 'STORE_UNKNOWN_HEIGHT'

/** An error of the storage domain (see `StoreErrorCode`). */
export class StoreError extends CityError<StoreErrorCode> {
  constructor(code: StoreErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(code, message, details)
    this.name = 'StoreError'
  }
}

/** The data at rest does not match what was written: names `what` (e.g. "block at height 7"). */
export function corrupt(what: string, why: string, details: Record<string, unknown> = {}): StoreError {
  return new StoreError('STORE_CORRUPT', `store corrupt: ${what}: ${why}`, { what, ...details })
}
