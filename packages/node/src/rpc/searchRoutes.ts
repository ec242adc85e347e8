import { METHOD_RE, SEARCH_LIMITS, SERVICE_RE, isCityError, toHex, utf8 } from '@cityledger/core'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errorBody, mapError, rpcError } from './errors.ts'
import { parseHash, parseHeight } from './params.ts'

/** What `GET /v1/txs/search` asks of the node: the chain store's `searchTxs`, filters already checked. */
export interface TxSearchParams {
  /** Signer's Ed25519 public key, 32 bytes. */
  signer?: Uint8Array
  service?: string
  /** Only with `service`. */
  method?: string
  event?: { service: string; name: string }
  fromHeight?: number
  toHeight?: number
  order: 'asc' | 'desc'
  /** 1..100. */
  limit: number
  cursor?: string
}

/**
 * One page of matches; `indexedFrom` is the first height the node's index covers. A hash is bytes (as
 * the store gives it) or already lowercase hex (the RPC backend's JSON form).
 */
export interface TxSearchAnswer {
  txs: { hash: Uint8Array | string; height: number; index: number }[]
  next?: string
  indexedFrom: number
}

/**
 * The search behind the route (in the node: `(q) => chainStore.searchTxs(q)`). A `STORE_BAD_INPUT`
 * error it throws (e.g. a cursor of another store) is answered 400 BAD_REQUEST with its message.
 */
export type SearchTxs = (params: TxSearchParams) => Promise<TxSearchAnswer>

export interface SearchRoutesOptions {
  searchTxs: SearchTxs
  /**
   * The server's error reply (same body, status table and logging as every route). Without it the
   * route answers `{ error: { code, message } }` with `mapError`'s status itself (a bare app, tests).
   */
  sendError?: (request: FastifyRequest, reply: FastifyReply, err: unknown) => void
}

const PARAMS = ['signer', 'service', 'method', 'event', 'fromHeight', 'toHeight', 'order', 'limit', 'cursor']
const CURSOR_RE = /^[0-9]{1,16}\.[0-9]{1,10}$/

const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
  },
}
const json = (description: string, schema: unknown) => ({
  description,
  content: { 'application/json': { schema } },
})
const height = { type: 'integer', minimum: 0 }

/** The route schema: the OpenAPI entry, and (200) exactly the fields the handler sends. */
export const SEARCH_SCHEMA = {
  operationId: 'searchTxs',
  tags: ['txs'],
  summary: 'Committed txs by signer, service, method and event type (filters combine)',
  description:
    'At least one of signer, service, method (with service) or event. Matches come in height order ' +
    '(order=asc, the default, or desc), at most limit (1..100, default 20) per answer; one answer also ' +
    'stops after a bounded number of index reads. When next is present, ask again with cursor=next for ' +
    'more (an answer can hold fewer than limit txs, or none, and still have next). Heights below ' +
    'indexedFrom were committed before this node had the index and are not searched.',
  querystring: {
    type: 'object',
    properties: {
      signer: {
        type: 'string',
        pattern: '^[0-9a-fA-F]{64}$',
        description: "the signer's public key, 64 hex characters",
      },
      service: { type: 'string', description: 'the service the tx calls' },
      method: { type: 'string', description: 'the method the tx calls (needs service)' },
      event: {
        type: 'string',
        description: 'an event the tx emitted, as service.name (e.g. token.transfer)',
      },
      fromHeight: { ...height, description: 'lowest height searched (default 1)' },
      toHeight: { ...height, description: 'highest height searched (default: the head)' },
      order: { type: 'string', enum: ['asc', 'desc'], description: 'height order (default asc)' },
      limit: {
        type: 'integer',
        minimum: 1,
        maximum: SEARCH_LIMITS.maxLimit,
        description: `most txs (default ${SEARCH_LIMITS.defaultLimit})`,
      },
      cursor: { type: 'string', description: 'next of the previous answer' },
    },
  },
  response: {
    200: json('a page of matching txs', {
      type: 'object',
      required: ['txs', 'indexedFrom'],
      additionalProperties: false,
      properties: {
        txs: {
          type: 'array',
          items: {
            type: 'object',
            required: ['hash', 'height', 'index'],
            additionalProperties: false,
            properties: {
              hash: { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'tx hash, lowercase hex' },
              height: { type: 'integer', minimum: 1 },
              index: { type: 'integer', minimum: 0, description: 'position in the block' },
            },
          },
        },
        next: { type: 'string', description: 'cursor for the next answer; absent at the end' },
        indexedFrom: { type: 'integer', minimum: 1, description: 'first height the index covers' },
      },
    }),
    400: json('BAD_REQUEST or BAD_HEX: a parameter is missing, malformed, unknown or repeated', errorSchema),
  },
}

/** The query string as sent, one value per known parameter (BAD_REQUEST otherwise). */
function rawParams(url: string): Map<string, string> {
  const q = url.indexOf('?')
  const out = new Map<string, string>()
  if (q < 0) return out
  for (const [k, v] of new URLSearchParams(url.slice(q + 1))) {
    if (!PARAMS.includes(k))
      throw rpcError(
        'BAD_REQUEST',
        `unknown query parameter ${JSON.stringify(k.slice(0, 64))} (${PARAMS.join(', ')})`,
      )
    if (out.has(k)) throw rpcError('BAD_REQUEST', `${k}: given more than once`)
    out.set(k, v)
  }
  return out
}

/** Checks the query string of a search; errors name the parameter. */
export function parseSearchParams(url: string): TxSearchParams {
  const p = rawParams(url)
  const out: TxSearchParams = { order: 'asc', limit: SEARCH_LIMITS.defaultLimit }
  const signer = p.get('signer')
  if (signer !== undefined) out.signer = parseHash(signer, 'signer')
  const service = p.get('service')
  if (service !== undefined) {
    if (!SERVICE_RE.test(service)) throw rpcError('BAD_REQUEST', 'service: not a service name')
    out.service = service
  }
  const method = p.get('method')
  if (method !== undefined) {
    if (!METHOD_RE.test(method)) throw rpcError('BAD_REQUEST', 'method: not a method name')
    if (service === undefined)
      throw rpcError('BAD_REQUEST', 'method: needs service (method names are per service)')
    out.method = method
  }
  const event = p.get('event')
  if (event !== undefined) {
    // Service names have no dot, so the first one ends the service; the name may hold more.
    const dot = event.indexOf('.')
    const es = event.slice(0, dot)
    const name = event.slice(dot + 1)
    if (dot < 0 || !SERVICE_RE.test(es) || name === '')
      throw rpcError('BAD_REQUEST', 'event: expected service.name (e.g. token.transfer)')
    if (utf8.encode(name).length > SEARCH_LIMITS.maxEventNameBytes)
      throw rpcError(
        'BAD_REQUEST',
        `event: name longer than ${SEARCH_LIMITS.maxEventNameBytes} bytes (such events are not indexed)`,
      )
    out.event = { service: es, name }
  }
  if (!out.signer && !out.service && !out.event)
    throw rpcError('BAD_REQUEST', 'give at least one of signer, service, method, event')
  const from = p.get('fromHeight')
  if (from !== undefined) out.fromHeight = parseHeight(from, 'fromHeight')
  const to = p.get('toHeight')
  if (to !== undefined) out.toHeight = parseHeight(to, 'toHeight')
  if (out.toHeight !== undefined && out.fromHeight !== undefined && out.toHeight < out.fromHeight)
    throw rpcError('BAD_REQUEST', `toHeight (${out.toHeight}) is below fromHeight (${out.fromHeight})`)
  const order = p.get('order')
  if (order !== undefined) {
    if (order !== 'asc' && order !== 'desc') throw rpcError('BAD_REQUEST', 'order: expected asc or desc')
    out.order = order
  }
  const limit = p.get('limit')
  if (limit !== undefined) {
    const n = parseHeight(limit, 'limit')
    if (n < 1 || n > SEARCH_LIMITS.maxLimit)
      throw rpcError('BAD_REQUEST', `limit: expected 1 to ${SEARCH_LIMITS.maxLimit}`)
    out.limit = n
  }
  const cursor = p.get('cursor')
  if (cursor !== undefined) {
    if (!CURSOR_RE.test(cursor)) throw rpcError('BAD_REQUEST', 'cursor: not a cursor this node gave')
    out.cursor = cursor
  }
  return out
}

const plainSendError = (_request: FastifyRequest, reply: FastifyReply, err: unknown): void => {
  const m = mapError(err)
  void reply.code(m.status).send(errorBody(m.code, m.message))
}

/**
 * Adds `GET /v1/txs/search`. A static segment, so `/v1/txs/:hash` never sees `search` as a hash
 * (find-my-way matches static segments first, whatever the order routes were added in).
 *
 * @example
 * registerSearchRoutes(app, { searchTxs: (q) => store.searchTxs(q), sendError })
 */
export function registerSearchRoutes(app: FastifyInstance, opts: SearchRoutesOptions): void {
  const sendError = opts.sendError ?? plainSendError
  // attachValidation: the handler parses every parameter itself (its codes and messages are the
  // contract), in a bare app as in the server.
  app.get('/v1/txs/search', { schema: SEARCH_SCHEMA, attachValidation: true }, async (request, reply) => {
    let page: TxSearchAnswer
    try {
      page = await opts.searchTxs(parseSearchParams(request.url))
    } catch (err) {
      const e =
        isCityError(err) && err.code === 'STORE_BAD_INPUT' ? rpcError('BAD_REQUEST', err.message) : err
      sendError(request, reply, e)
      return reply
    }
    const body: {
      txs: { hash: string; height: number; index: number }[]
      next?: string
      indexedFrom: number
    } = {
      txs: page.txs.map((t) => ({
        hash: typeof t.hash === 'string' ? t.hash : toHex(t.hash),
        height: t.height,
        index: t.index,
      })),
      indexedFrom: page.indexedFrom,
    }
    if (page.next !== undefined) body.next = page.next
    return body
  })
}
