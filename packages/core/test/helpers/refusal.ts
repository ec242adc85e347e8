import { type CityError, isCityError } from '@cityledger/core'

/** The CityError `f` throws (a refused block); anything else it throws is rethrown, no throw fails. */
export function refusal(f: () => unknown): CityError {
  try {
    f()
  } catch (err) {
    if (isCityError(err)) return err
    throw err
  }
  throw new Error('expected the block to be refused')
}
