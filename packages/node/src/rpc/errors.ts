import { CityError, isCityError } from '@cityledger/core'

/** Codes the RPC layer itself raises (the others come from the node through `CityError`). */
export type RpcErrorCode =
  | 'BAD_REQUEST'
  | 'BAD_JSON'
  | 'BAD_HEX'
  | 'NOT_FOUND'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'TX_TOO_LARGE'
  | 'TOO_LARGE'
  | 'RATE_LIMITED'
  | 'TOO_MANY_SUBSCRIBERS'
  | 'RESUME_TOO_OLD'
  | 'PRUNED'
  | 'NOT_READY'
  | 'SHUTTING_DOWN'
  | 'INTERNAL'

/** The JSON body of every error response. */
export interface RpcErrorBody {
  error: { code: string; message: string }
}

/**
 * The one table from stable error code to HTTP status. A code is added here when a component starts
 * throwing it; clients switch on the code, the status only tells generic HTTP tooling what happened.
 * DUPLICATE_TX is 409 (the tx is already known; resubmitting the same bytes is harmless).
 */
export const RPC_ERROR_STATUS: Readonly<Record<string, number>> = Object.freeze({
  // malformed requests
  BAD_REQUEST: 400,
  BAD_JSON: 400,
  BAD_HEX: 400,
  // codec (strict decode of the envelope)
  MALFORMED: 400,
  TRAILING_BYTES: 400,
  NON_CANONICAL: 400,
  BAD_FIELD: 400,
  BAD_KEY: 400,
  // admission
  BAD_SIGNATURE: 400,
  WRONG_CHAIN: 400,
  NONCE_TOO_LOW: 400,
  NONCE_TAKEN: 400,
  NONCE_GAP: 400,
  TX_EXPIRED: 400,
  UNKNOWN_SERVICE: 400,
  UNKNOWN_METHOD: 400,
  BAD_ARGS: 400,
  UNAUTHORIZED: 403,
  DUPLICATE_TX: 409,
  // resources
  NOT_FOUND: 404,
  UNKNOWN_QUERY: 404,
  RESUME_TOO_OLD: 410,
  // a height below the store's retention (store.retainBlocks): deleted for good
  PRUNED: 410,
  // limits
  TX_TOO_LARGE: 413,
  TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  MEMPOOL_FULL: 429,
  RATE_LIMITED: 429,
  OVERLOADED: 429,
  NOT_READY: 503,
  TOO_MANY_SUBSCRIBERS: 503,
  SHUTTING_DOWN: 503,
  INTERNAL: 500,
})

/**
 * Where an error arose. On the read side an unknown service or query names a missing resource
 * (404); in a tx it is bad input (400). Codes missing from the table are the service's own codes on
 * the `tx` and `query` sides (bad input: 400) and a bug elsewhere (500).
 */
export type ErrorContext = 'tx' | 'query' | 'read'

const QUERY_OVERRIDES: Readonly<Record<string, number>> = {
  UNKNOWN_SERVICE: 404,
  UNKNOWN_METHOD: 404,
  UNKNOWN_QUERY: 404,
  RESUME_TOO_OLD: 410,
}

/** An error ready to send, and whether it is a bug that must be logged at error level. */
export interface MappedError {
  status: number
  code: string
  message: string
  bug: boolean
}

/** Maps anything thrown by a handler or the backend to a response. */
export function mapError(err: unknown, context: ErrorContext = 'read'): MappedError {
  if (isCityError(err)) {
    const status = (context === 'query' ? QUERY_OVERRIDES[err.code] : undefined) ?? RPC_ERROR_STATUS[err.code]
    if (status !== undefined && err.code !== 'INTERNAL')
      return { status, code: err.code, message: err.message, bug: false }
    if (status === undefined && context !== 'read')
      return { status: 400, code: err.code, message: err.message, bug: false }
  }
  const framework = mapFrameworkError(err)
  if (framework) return framework
  return { status: 500, code: 'INTERNAL', message: 'internal error', bug: true }
}

/** Errors fastify raises before a handler runs (body parsing, limits, URL). */
function mapFrameworkError(err: unknown): MappedError | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const { code, statusCode, message } = err as { code?: unknown; statusCode?: unknown; message?: unknown }
  if (typeof code !== 'string' || !code.startsWith('FST_')) return undefined
  const msg = typeof message === 'string' ? message : code
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        status: 413,
        code: 'TX_TOO_LARGE',
        message: 'request body is larger than the limit',
        bug: false,
      }
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: msg, bug: false }
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { status: 400, code: 'BAD_JSON', message: msg, bug: false }
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return { status: 400, code: 'BAD_REQUEST', message: 'path parameter too long', bug: false }
  }
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    return { status: 400, code: 'BAD_REQUEST', message: msg, bug: false }
  }
  return undefined
}

/** The `{ error: { code, message } }` body. */
export function errorBody(code: string, message: string): RpcErrorBody {
  return { error: { code, message } }
}

/** Shorthand for the RPC layer's own input errors. */
export function rpcError(
  code: RpcErrorCode,
  message: string,
  details: Record<string, unknown> = {},
): CityError<RpcErrorCode> {
  return new CityError(code, message, details)
}
