/**
 * One base error for the whole engine: a stable `code` that callers switch on, a human message, and
 * typed details. Codes never change meaning once released; RPC maps them to HTTP statuses.
 *
 * @example
 * throw new CityError('TX_TOO_LARGE', 'tx is 70000 bytes, limit 65536', { size: 70000, limit: 65536 })
 */
export class CityError<C extends string = string> extends Error {
  readonly code: C
  readonly details: Record<string, unknown>
  /** For input that came from a peer: true when the sender should be penalised for it. */
  readonly penalize: boolean

  constructor(code: C, message: string, details: Record<string, unknown> = {}, penalize = false) {
    super(message)
    this.name = 'CityError'
    this.code = code
    this.details = details
    this.penalize = penalize
  }

  toJSON(): { code: C; message: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, details: this.details }
  }
}

/** True when `err` is a CityError, optionally with the given code. */
export function isCityError(err: unknown, code?: string): err is CityError {
  return err instanceof CityError && (code === undefined || err.code === code)
}

/** An internal invariant is broken: a bug, never bad input. Names the invariant. */
export function invariant(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`invariant broken: ${what}`)
}
