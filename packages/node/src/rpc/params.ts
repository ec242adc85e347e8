import { METHOD_RE, SERVICE_RE, fromHex, isHex, toHex } from '@cityledger/core'
import { rpcError } from './errors.ts'

/**
 * The words of the parameter refusals, shared by the parsers below and the schema check of
 * openapi.ts, so that a value refused by a route schema gets the answer the parser would give.
 */
export const PARAM_ERRORS = {
  decimal: 'expected a decimal integer',
  hash: 'expected 64 hex characters',
  wait: 'the only supported value is "commit"',
  fromRequired: 'required (first height of the range)',
  fromBelowOne: 'heights start at 1',
  lastEventId: 'expected <height> or <height>/<index>',
} as const

/** A 32-byte hash from its hex form (either case), or BAD_HEX naming the field. */
export function parseHash(value: unknown, field: string): Uint8Array {
  if (!isHex(value, 32)) throw rpcError('BAD_HEX', `${field}: ${PARAM_ERRORS.hash}`)
  return fromHex(value, field)
}

/** Hex bytes of any length up to `maxBytes`, or BAD_HEX / TX_TOO_LARGE. */
export function parseHexBytes(value: unknown, field: string, maxBytes: number): Uint8Array {
  if (typeof value !== 'string') throw rpcError('BAD_HEX', `${field}: expected a hex string`)
  if (value.length > maxBytes * 2)
    throw rpcError('TX_TOO_LARGE', `${field}: more than ${maxBytes} bytes`, { limit: maxBytes })
  if (!isHex(value)) throw rpcError('BAD_HEX', `${field}: not an even-length hex string`)
  return fromHex(value, field)
}

const DECIMAL_RE = /^(?:0|[1-9][0-9]{0,15})$/

/** A block height: decimal digits, no sign, no exponent, a safe integer. */
export function parseHeight(value: unknown, field = 'height'): number {
  if (typeof value !== 'string' || !DECIMAL_RE.test(value))
    throw rpcError('BAD_REQUEST', `${field}: ${PARAM_ERRORS.decimal}`)
  const n = Number(value)
  if (!Number.isSafeInteger(n)) throw rpcError('BAD_REQUEST', `${field}: out of range`)
  return n
}

/** Optional `timeoutMs` query parameter, clamped to `max`. */
export function parseTimeout(value: unknown, max: number): number {
  if (value === undefined) return max
  return Math.min(parseHeight(value, 'timeoutMs'), max)
}

/** `wait` query parameter: absent or `commit`. */
export function parseWait(value: unknown): boolean {
  if (value === undefined) return false
  if (value === 'commit') return true
  throw rpcError('BAD_REQUEST', `wait: ${PARAM_ERRORS.wait}`)
}

/** Query arguments: at most this many, each name and value bounded. */
export const QUERY_ARG_LIMITS = { maxArgs: 32, maxNameLength: 64, maxValueLength: 4096 } as const
const ARG_NAME_RE = /^[a-zA-Z][a-zA-Z0-9_]{0,63}$/
/** Query-string parameters that steer the RPC layer and never reach a service query. */
const RESERVED = new Set(['timeoutMs', 'wait'])

/** Service and query names in a query route, checked against the same patterns as in a tx. */
export function parseServiceQuery(service: unknown, query: unknown): { service: string; query: string } {
  if (typeof service !== 'string' || (service !== '_sys' && !SERVICE_RE.test(service)))
    throw rpcError('BAD_REQUEST', 'service: invalid name')
  if (typeof query !== 'string' || !METHOD_RE.test(query))
    throw rpcError('BAD_REQUEST', 'query: invalid name')
  return { service, query }
}

/** Flat string arguments from the query string; repeated keys are rejected rather than guessed at. */
export function parseQueryArgs(qs: unknown): Record<string, string> {
  const out: Record<string, string> = Object.create(null)
  if (qs === undefined || qs === null) return out
  if (typeof qs !== 'object') throw rpcError('BAD_REQUEST', 'query string: malformed')
  const entries = Object.entries(qs as Record<string, unknown>)
  if (entries.length > QUERY_ARG_LIMITS.maxArgs)
    throw rpcError('BAD_REQUEST', `more than ${QUERY_ARG_LIMITS.maxArgs} query arguments`)
  for (const [name, value] of entries) {
    if (RESERVED.has(name)) continue
    if (!ARG_NAME_RE.test(name))
      throw rpcError('BAD_REQUEST', `argument name ${JSON.stringify(name.slice(0, 70))} is invalid`)
    if (typeof value !== 'string') throw rpcError('BAD_REQUEST', `argument ${name}: given more than once`)
    if (value.length > QUERY_ARG_LIMITS.maxValueLength)
      throw rpcError('BAD_REQUEST', `argument ${name}: longer than ${QUERY_ARG_LIMITS.maxValueLength}`)
    out[name] = value
  }
  return out
}

/**
 * The JSON form of a backend value: bytes become hex, bigints decimal strings; anything that JSON
 * cannot carry (functions, symbols, cycles deeper than the bound) is a bug in the backend.
 */
export function jsonForm(value: unknown, depth = 0): unknown {
  if (depth > 64) throw new Error('invariant broken: backend value nested deeper than 64 (cycle?)')
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value
  if (typeof value === 'number') return Number.isFinite(value) ? value : null
  if (typeof value === 'bigint') return value.toString()
  if (value === undefined) return undefined
  if (value instanceof Uint8Array) return toHex(value)
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : jsonForm(v, depth + 1)))
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      const j = jsonForm(v, depth + 1)
      if (j !== undefined) out[k] = j
    }
    return out
  }
  throw new Error(`invariant broken: backend returned a ${typeof value}, which has no JSON form`)
}
