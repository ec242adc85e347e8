import type { IncomingMessage } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import { pino, type Logger } from 'pino'
import { toHex } from '@cityledger/core'
import type { RpcBackend, TxStatus } from './backend.ts'
import { type ErrorContext, type MappedError, errorBody, mapError, rpcError } from './errors.ts'
import { expectObject, parseJsonBody } from './json.ts'
import { openApiDocument } from './openapi.ts'
import {
  jsonForm,
  parseHash,
  parseHeight,
  parseHexBytes,
  parseQueryArgs,
  parseServiceQuery,
  parseTimeout,
  parseWait,
} from './params.ts'
import { createRateLimiter } from './rateLimit.ts'
import { type EventStream, openEventStream } from './sse.ts'

/** Limits the RPC server enforces on every client. */
export interface RpcLimits {
  /** Largest `POST /v1/txs` body (the envelope), bytes. The JSON form may be twice that plus a little. */
  maxBodyBytes: number
  /** Longest a `wait=commit` request is held open, ms. */
  maxWaitMs: number
  /** Requests per second per client address (burst of the same size); unset means no limit. */
  rateLimitPerSecond?: number
}

/** Options of `createRpcServer`. */
export interface RpcServerOptions {
  backend: RpcBackend
  /** Parent logger; the server logs through a child `{ module: 'rpc' }`. Silent when omitted. */
  logger?: Logger
  limits: RpcLimits
  host: string
  /** 0 picks a free port (tests). */
  port: number
  /** Clock for the rate limiter, ms. Defaults to `performance.now`. */
  now?: () => number
  /** SSE heartbeat comment interval, ms; 0 disables it. Default 15000. */
  heartbeatMs?: number
  /** Unread bytes after which a slow SSE client is disconnected. Default 4 MiB. */
  maxEventBufferBytes?: number
}

/** Where the server listens once started. */
export interface RpcAddress {
  host: string
  port: number
  /** `http://host:port`, ready to hand to `createClient`. */
  url: string
}

/** The RPC server: `start()` binds and listens, `stop()` ends open streams and waits, closes the socket. */
export interface RpcServer {
  start(): Promise<RpcAddress>
  stop(): Promise<void>
}

/** Routes that are never rate limited: monitoring must work when a client floods the node. */
const UNLIMITED = new Set(['/metrics', '/v1/health'])

/**
 * Builds the HTTP server of RPC v1 (DESIGN.md) on fastify. It talks to the node only through
 * `backend`; every failure leaves as `{ error: { code, message } }` with the status of
 * `RPC_ERROR_STATUS`.
 *
 * @example
 * const rpc = createRpcServer({ backend, logger, limits: { maxBodyBytes: 65536, maxWaitMs: 10000 }, host: '127.0.0.1', port: 0 })
 * const { url } = await rpc.start()
 */
export function createRpcServer(opts: RpcServerOptions): RpcServer {
  const { backend, limits } = opts
  if (!Number.isSafeInteger(limits.maxBodyBytes) || limits.maxBodyBytes < 1)
    throw new RangeError('limits.maxBodyBytes must be a positive integer')
  if (!Number.isSafeInteger(limits.maxWaitMs) || limits.maxWaitMs < 0)
    throw new RangeError('limits.maxWaitMs must be a non-negative integer')
  const logger = (opts.logger ?? pino({ level: 'silent' })).child({ module: 'rpc' })
  const jsonBodyLimit = limits.maxBodyBytes * 2 + 1024
  const limiter =
    limits.rateLimitPerSecond === undefined
      ? undefined
      : createRateLimiter({
          ratePerSecond: limits.rateLimitPerSecond,
          now: opts.now ?? (() => performance.now()),
        })
  const streams = new Set<EventStream>()
  const waits = new Set<AbortController>()

  const sendError = (request: FastifyRequest, reply: FastifyReply, err: unknown): void => {
    // A route that does not exist is 404 whatever else is wrong with the request (e.g. its body).
    sendMapped(
      request,
      reply,
      err,
      request.is404 ? mapError(notFound(request)) : mapError(err, errorContext(request)),
    )
  }
  const sendMapped = (request: FastifyRequest, reply: FastifyReply, err: unknown, m: MappedError): void => {
    if (m.bug) logger.error({ err, method: request.method, url: request.url }, 'rpc request failed')
    else logger.debug({ code: m.code, method: request.method, url: request.url }, 'rpc request rejected')
    if (m.status === 429 || m.status === 503) void reply.header('retry-after', '1')
    void reply.code(m.status).send(errorBody(m.code, m.message))
  }

  const app = Fastify({
    logger: false,
    bodyLimit: jsonBodyLimit,
    // Requests that arrive while stopping get our own 503 SHUTTING_DOWN (fastify's has another shape).
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: 256 },
    frameworkErrors: (err, request, reply) => sendMapped(request, reply, err, mapError(err)),
  })

  // Only the two body types RPC v1 accepts; anything else is 415 before a handler runs.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'string', bodyLimit: jsonBodyLimit },
    (_req, body, done) => {
      try {
        done(null, parseJsonBody(body as string))
      } catch (err) {
        done(err as Error, undefined)
      }
    },
  )
  app.addContentTypeParser(
    'application/octet-stream',
    { parseAs: 'buffer', bodyLimit: limits.maxBodyBytes },
    (_req, body, done) => {
      done(null, body)
    },
  )

  app.setErrorHandler((err, request, reply) => sendError(request, reply, err))
  app.setNotFoundHandler((request, reply) => sendError(request, reply, notFound(request)))

  let stopping = false
  app.addHook('onRequest', async (_request, reply) => {
    if (!stopping) return
    void reply.header('connection', 'close')
    throw rpcError('SHUTTING_DOWN', 'node is shutting down')
  })
  if (limiter) {
    app.addHook('onRequest', async (request) => {
      if (UNLIMITED.has(request.url.split('?')[0]!)) return
      if (!limiter.take(request.ip)) throw rpcError('RATE_LIMITED', 'too many requests; slow down')
    })
  }
  app.addHook('onResponse', async (request, reply) => {
    logger.trace({ method: request.method, url: request.url, status: reply.statusCode }, 'rpc request')
  })

  /** Waits for a commit, giving up early when the client goes away or the server stops. */
  const waitForCommit = async (
    reply: FastifyReply,
    hash: Uint8Array,
    timeoutMs: number,
  ): Promise<TxStatus> => {
    const ac = new AbortController()
    const onClose = (): void => ac.abort()
    waits.add(ac)
    reply.raw.once('close', onClose)
    try {
      return await backend.waitForTx(hash, { timeoutMs, signal: ac.signal })
    } finally {
      waits.delete(ac)
      reply.raw.off('close', onClose)
    }
  }

  const sendStatus = (reply: FastifyReply, status: TxStatus, pendingCode: number): void => {
    const done = status.status === 'committed' || status.status === 'failed'
    void reply.code(done ? 200 : pendingCode).send(jsonForm(status))
  }

  const submit = async (request: FastifyRequest, reply: FastifyReply, bytes: Uint8Array): Promise<void> => {
    const q = (request.query ?? {}) as Record<string, unknown>
    const wait = parseWait(q.wait)
    const timeoutMs = parseTimeout(q.timeoutMs, limits.maxWaitMs)
    if (!backend.ready()) throw rpcError('NOT_READY', 'node is starting or catching up; retry later')
    const { hash } = await backend.submitTx(bytes)
    if (!wait) {
      void reply.code(202).send({ hash: toHex(hash) })
      return
    }
    sendStatus(reply, await waitForCommit(reply, hash, timeoutMs), 202)
  }

  app.post('/v1/txs', async (request, reply) => {
    const body = request.body
    if (body === undefined || body === null || (Buffer.isBuffer(body) && body.length === 0)) {
      throw rpcError('BAD_REQUEST', 'empty body: expected the envelope bytes')
    }
    if (!Buffer.isBuffer(body))
      throw rpcError(
        'UNSUPPORTED_MEDIA_TYPE',
        'POST /v1/txs takes application/octet-stream; use /v1/txs/json for JSON',
      )
    // A copy: fastify may hand out a slice of a shared pool buffer.
    await submit(request, reply, new Uint8Array(body))
  })

  app.post('/v1/txs/json', async (request, reply) => {
    if (Buffer.isBuffer(request.body))
      throw rpcError('UNSUPPORTED_MEDIA_TYPE', 'POST /v1/txs/json takes application/json')
    const body = expectObject(request.body, 'body')
    for (const k of Object.keys(body))
      if (k !== 'envelope')
        throw rpcError('BAD_REQUEST', `body: unknown field ${JSON.stringify(k.slice(0, 64))}`)
    await submit(request, reply, parseHexBytes(body.envelope, 'envelope', limits.maxBodyBytes))
  })

  app.get('/v1/txs/:hash', async (request, reply) => {
    const hash = parseHash((request.params as { hash: string }).hash, 'hash')
    const q = (request.query ?? {}) as Record<string, unknown>
    const wait = parseWait(q.wait)
    const timeoutMs = parseTimeout(q.timeoutMs, limits.maxWaitMs)
    const status = wait ? await waitForCommit(reply, hash, timeoutMs) : await backend.txStatus(hash)
    sendStatus(reply, status, 200)
  })

  app.get('/v1/status', async () => jsonForm(await backend.status()))

  const sendBlock = (reply: FastifyReply, block: unknown, what: string): void => {
    if (block === undefined) throw rpcError('NOT_FOUND', `no block ${what}`)
    void reply.send(jsonForm(block))
  }
  app.get('/v1/blocks/latest', async (_request, reply) =>
    sendBlock(reply, await backend.block('latest'), 'committed yet'),
  )
  app.get('/v1/blocks/:height', async (request, reply) => {
    const height = parseHeight((request.params as { height: string }).height)
    sendBlock(reply, await backend.block(height), `at height ${height}`)
  })
  app.get('/v1/blocks/hash/:hash', async (request, reply) => {
    const hash = parseHash((request.params as { hash: string }).hash, 'hash')
    sendBlock(reply, await backend.blockByHash(hash), `with hash ${toHex(hash)}`)
  })

  app.get('/v1/validators', async () => ({ validators: jsonForm(await backend.validators()) }))

  app.get('/v1/services/:service/:query', async (request) => {
    const p = request.params as { service: string; query: string }
    const { service, query } = parseServiceQuery(p.service, p.query)
    const args = parseQueryArgs(request.query)
    return jsonForm(await backend.query(service, query, args))
  })

  app.get('/v1/health', async (_request, reply) => {
    const h = await backend.health()
    void reply.code(h.ok ? 200 : 503).send(jsonForm(h))
  })

  app.get('/metrics', async (_request, reply) => {
    const m = await backend.metrics()
    void reply.type(m.contentType).send(m.body)
  })

  app.get('/v1/openapi.json', async () => openApiDocument)

  app.get('/v1/events', (_request, reply) => {
    reply.hijack()
    // The stream may close before openEventStream returns (client already gone), hence the flag.
    let closed = false
    let stream: EventStream | undefined
    stream = openEventStream(reply.raw, {
      backend,
      logger,
      heartbeatMs: opts.heartbeatMs ?? 15_000,
      maxBufferedBytes: opts.maxEventBufferBytes ?? 4 * 1024 * 1024,
      onClose: () => {
        closed = true
        if (stream) streams.delete(stream)
      },
    })
    if (!closed) streams.add(stream)
  })

  // Connections that never carried a request (clients open spares, e.g. undici after an abort).
  // Node's closeIdleConnections leaves them alone, and server.close() would wait for the client to
  // drop them, so stop() destroys them itself.
  const fresh = new Set<Socket>()
  app.server.on('connection', (socket: Socket) => {
    fresh.add(socket)
    socket.once('close', () => fresh.delete(socket))
  })
  app.server.on('request', (req: IncomingMessage) => fresh.delete(req.socket))

  let started = false
  return {
    async start() {
      if (started) throw new Error('invariant broken: RPC server started twice')
      started = true
      await app.listen({ host: opts.host, port: opts.port })
      const addr = app.server.address() as AddressInfo
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
      logger.info({ host: addr.address, port: addr.port }, 'rpc listening')
      return { host: addr.address, port: addr.port, url: `http://${host}:${addr.port}` }
    },
    async stop() {
      stopping = true
      for (const ac of waits) ac.abort()
      for (const s of [...streams]) s.close()
      const closing = app.close()
      for (const socket of fresh) socket.destroy()
      await closing
      logger.info('rpc stopped')
    },
  }
}

function notFound(request: FastifyRequest): Error {
  return rpcError('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}`)
}

/** Which side of the error table applies to a request (see `ErrorContext`). */
function errorContext(request: FastifyRequest): ErrorContext {
  const route = request.routeOptions?.url
  if (request.method === 'POST' && (route === '/v1/txs' || route === '/v1/txs/json')) return 'tx'
  if (route === '/v1/services/:service/:query') return 'query'
  return 'read'
}
