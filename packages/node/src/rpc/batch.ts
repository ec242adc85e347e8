import { type CityError, decodeStrict, toHex } from '@cityledger/core'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { RpcBackend } from './backend.ts'
import { mapError, rpcError } from './errors.ts'
import { parseHexBytes } from './params.ts'
import type { RateLimiter } from './rateLimit.ts'
import { ROUTE_SCHEMAS } from './schemas.ts'

/**
 * `POST /v1/txs/batch`: many envelopes in one request, one answer per envelope in the same order.
 * Each envelope goes through exactly the admission of `POST /v1/txs` (the same codes and messages);
 * one refused envelope never fails the others. Only a request that cannot be split into envelopes
 * (wrong shape, too many, too large) is refused as a whole, before any envelope is admitted.
 */

/** Bounds of one batch request, defaults of `RpcLimits.maxBatchTxs` / `maxBatchBytes`. */
export const BATCH_LIMIT_DEFAULTS = Object.freeze({
  /** Envelopes per request (the size of a gossip batch). */
  maxBatchTxs: 512,
  /** Bytes of a binary batch body; the JSON (hex) form may be twice that plus quoting. */
  maxBatchBytes: 4 * 1024 * 1024,
})

/** One envelope's outcome: admitted (its hash, as `POST /v1/txs` answers 202) or refused. */
export type BatchResult = { hash: string } | { error: { code: string; message: string } }

export interface BatchLimits {
  maxBatchTxs: number
  maxBatchBytes: number
  /** Largest envelope (`RpcLimits.maxBodyBytes`): larger ones are refused TX_TOO_LARGE, alone. */
  maxTxBytes: number
}

/** Largest JSON batch body: every byte as two hex digits, plus quotes and commas. */
export function jsonBatchBodyLimit(l: BatchLimits): number {
  return 2 * l.maxBatchBytes + 4 * l.maxBatchTxs + 1024
}

/**
 * Splits a batch body into envelopes: a JSON array of hex strings, or (octet-stream) the codec's
 * canonical encoding of an array of byte strings (what gossip sends). An element that is not an
 * envelope becomes that element's error. Throws BAD_REQUEST / TOO_LARGE for the request as a whole.
 */
export function parseBatch(body: unknown, l: BatchLimits): (Uint8Array | CityError)[] {
  let list: unknown
  if (Buffer.isBuffer(body)) {
    if (body.length === 0) throw rpcError('BAD_REQUEST', 'empty body: expected a batch of envelopes')
    if (body.length > l.maxBatchBytes)
      throw tooLarge(`batch body is ${body.length} bytes, limit ${l.maxBatchBytes}`, l)
    try {
      // A copy: fastify may hand out a slice of a shared pool buffer.
      list = decodeStrict(new Uint8Array(body), { maxBytes: l.maxBatchBytes, maxDepth: 1 })
    } catch (err) {
      throw rpcError(
        'BAD_REQUEST',
        `batch body: not the canonical encoding of an array of envelopes (${(err as CityError).code ?? 'MALFORMED'}: ${(err as Error).message})`,
      )
    }
    if (!Array.isArray(list))
      throw rpcError('BAD_REQUEST', 'batch body: expected an array of envelopes (byte strings)')
  } else {
    list = body
    if (!Array.isArray(list))
      throw rpcError('BAD_REQUEST', 'batch body: expected a JSON array of hex envelopes')
  }
  if (list.length === 0) throw rpcError('BAD_REQUEST', 'batch body: expected at least one envelope')
  if (list.length > l.maxBatchTxs)
    throw tooLarge(`batch has ${list.length} envelopes, limit ${l.maxBatchTxs}`, l)
  const binary = Buffer.isBuffer(body)
  return list.map((item, i): Uint8Array | CityError => {
    const field = `envelope ${i}`
    if (binary) {
      if (!(item instanceof Uint8Array)) return rpcError('BAD_REQUEST', `${field}: expected a byte string`)
      if (item.length === 0) return rpcError('BAD_REQUEST', `${field}: empty`)
      if (item.length > l.maxTxBytes)
        return rpcError('TX_TOO_LARGE', `${field}: more than ${l.maxTxBytes} bytes`, { limit: l.maxTxBytes })
      return item
    }
    try {
      if (typeof item === 'string' && item.length === 0) return rpcError('BAD_REQUEST', `${field}: empty`)
      return parseHexBytes(item, field, l.maxTxBytes)
    } catch (err) {
      return err as CityError
    }
  })
}

/** Throws RATE_LIMITED unless the client can pay for `envelopes` submits (see `registerBatchRoute`). */
function charge(
  o: { limiter?: RateLimiter; exempt?: ReadonlySet<string> },
  ip: string,
  envelopes: number,
): void {
  if (!o.limiter || envelopes <= 1 || o.exempt?.has(ip)) return
  if (envelopes > o.limiter.burst)
    throw rpcError(
      'RATE_LIMITED',
      `a batch of ${envelopes} envelopes costs ${envelopes} requests, more than this address's burst of ${o.limiter.burst}: send smaller batches`,
      { retryAfterSeconds: 1 },
    )
  const waitMs = o.limiter.take(ip, envelopes - 1)
  if (waitMs > 0)
    throw rpcError('RATE_LIMITED', 'too many requests from this address; slow down', {
      retryAfterSeconds: Math.ceil(waitMs / 1000),
    })
}

function tooLarge(message: string, l: BatchLimits): CityError {
  return rpcError('TOO_LARGE', message, { maxBatchTxs: l.maxBatchTxs, maxBatchBytes: l.maxBatchBytes })
}

/**
 * Submits every envelope in order, in one tick: the backend starts each admission synchronously (its
 * checks and the mempool slot), so a signer's envelopes are seen in batch order and their signatures
 * are checked in one micro-batch. Never rejects: every outcome is in the result.
 */
export async function submitBatch(
  backend: RpcBackend,
  items: readonly (Uint8Array | CityError)[],
  logger: Logger,
): Promise<BatchResult[]> {
  const pending = items.map((item) =>
    item instanceof Uint8Array ? backend.submitTx(item) : Promise.reject(item),
  )
  const settled = await Promise.allSettled(pending)
  return settled.map((s): BatchResult => {
    if (s.status === 'fulfilled') return { hash: toHex(s.value.hash) }
    const m = mapError(s.reason, 'tx')
    if (m.bug) logger.error({ err: s.reason }, 'rpc batch: submitting an envelope failed')
    return { error: { code: m.code, message: m.message } }
  })
}

/**
 * Adds the route. `sendError` is the server's error reply (the same body and status table); a body
 * over the limit becomes TOO_LARGE with the batch's limits in the message rather than fastify's.
 */
export function registerBatchRoute(
  app: FastifyInstance,
  o: {
    backend: RpcBackend
    limits: BatchLimits
    logger: Logger
    sendError: (request: FastifyRequest, reply: FastifyReply, err: unknown) => void
    /**
     * The server's rate limiter: a batch costs a client what as many single submits cost (the request
     * took one token, the envelopes past the first take the rest); `exempt` addresses pay nothing.
     */
    limiter?: RateLimiter
    exempt?: ReadonlySet<string>
  },
): void {
  const { backend, limits, logger } = o
  const bodyLimit = jsonBatchBodyLimit(limits)
  app.post(
    '/v1/txs/batch',
    {
      schema: ROUTE_SCHEMAS.submitTxBatch,
      bodyLimit,
      errorHandler: (err, request, reply) => {
        const code = (err as { code?: unknown }).code
        o.sendError(
          request,
          reply,
          code === 'FST_ERR_CTP_BODY_TOO_LARGE'
            ? tooLarge(
                `batch body is larger than the limit (${limits.maxBatchBytes} bytes binary, ${bodyLimit} as JSON)`,
                limits,
              )
            : err,
        )
      },
    },
    async (request, reply) => {
      const q = (request.query ?? {}) as Record<string, unknown>
      if (q.wait !== undefined)
        throw rpcError(
          'BAD_REQUEST',
          'wait: not supported on /v1/txs/batch; wait per tx with GET /v1/txs/:hash?wait=commit',
        )
      const items = parseBatch(request.body, limits)
      charge(o, request.ip, items.length)
      if (!backend.ready()) throw rpcError('NOT_READY', 'node is starting or catching up; retry later')
      void reply.code(200).send({ results: await submitBatch(backend, items, logger) })
    },
  )
}
