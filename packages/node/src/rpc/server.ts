import { readFileSync } from 'node:fs'
import type { IncomingMessage } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import { pino, type Logger } from 'pino'
import { CityError } from '@cityledger/core'
import type { RpcBackend, RpcEvent } from './backend.ts'
import { BATCH_LIMIT_DEFAULTS, registerBatchRoute } from './batch.ts'
import { BLOCK_RANGE_DEFAULTS, registerChainRoutes } from './chainRoutes.ts'
import { type AddCorsHeaders, type CorsOptions, registerCors } from './cors.ts'
import { type ErrorContext, type MappedError, errorBody, mapError, rpcError } from './errors.ts'
import { parseJsonBody } from './json.ts'
import { jsonForm } from './params.ts'
import { createRateLimiter } from './rateLimit.ts'
import { firstReplayHeight, parseEventsRequest } from './eventParams.ts'
import { createEventHub } from './sse.ts'
import { registerTxRoutes } from './txRoutes.ts'
import { registerOpenApi } from './openapi.ts'
import { registerSearchRoutes } from './searchRoutes.ts'
import { ROUTE_SCHEMAS } from './schemas.ts'

/** Limits the RPC server enforces on every client. Optional fields default to `RPC_LIMIT_DEFAULTS`. */
export interface RpcLimits {
  /** Largest `POST /v1/txs` body (the envelope), bytes. The JSON form may be twice that plus a little. */
  maxBodyBytes: number
  /** Longest a `wait=commit` request is held open, ms. */
  maxWaitMs: number
  /** Requests per second per client address; unset or 0 means no limit. */
  rateLimitPerSecond?: number
  /** Requests a client may make at once before the rate applies. Default: twice the rate. */
  rateLimitBurst?: number
  /**
   * Client addresses no per-client limit applies to (rate, connections per client) and that the
   * connection cap never turns away, e.g. the operator's own tools or reverse proxy.
   */
  exemptClients?: string[]
  /** Most open TCP connections of clients not exempt; past it new ones are closed at once. */
  maxConnections?: number
  /** Most open TCP connections from one client address; past it its new ones are closed at once. */
  maxConnectionsPerClient?: number
  /** Time a client has to send a whole request (headers and body), ms. */
  requestTimeoutMs?: number
  /** Time a client has to send the request headers, ms (at most `requestTimeoutMs`). */
  headersTimeoutMs?: number
  /** How long an idle keep-alive connection stays open between requests, ms. */
  keepAliveTimeoutMs?: number
  /** Most open `GET /v1/events` streams; the next one gets 503 TOO_MANY_SUBSCRIBERS. */
  maxEventSubscribers?: number
  /** Bytes of events a stream may fall behind before it is dropped (the hub holds them once). */
  maxEventBacklogBytes?: number
  /**
   * Most blocks a stream may replay when it resumes (`Last-Event-ID` or `fromHeight`); a resume from
   * further back is 410 RESUME_TOO_OLD (the client reads `/v1/blocks/:height` for the gap instead).
   */
  maxEventReplayBlocks?: number
  /** On stop, how long requests in progress may finish before every connection is closed, ms. */
  shutdownGraceMs?: number
  /** Most envelopes in one `POST /v1/txs/batch`; more is 413 TOO_LARGE (default 512). */
  maxBatchTxs?: number
  /** Largest binary `POST /v1/txs/batch` body, bytes (the JSON form may be twice that); default 4 MiB. */
  maxBatchBytes?: number
  /** Most blocks in one `GET /v1/blocks?from=&to=` answer (default 100). */
  maxRangeBlocks?: number
  /** Most encoded block bytes one range answer reads (default 8 MiB; the first block always goes). */
  maxRangeBytes?: number
}

/** The values `createRpcServer` uses for limits left unset. */
export const RPC_LIMIT_DEFAULTS = Object.freeze({
  maxConnections: 512,
  maxConnectionsPerClient: 64,
  requestTimeoutMs: 10_000,
  headersTimeoutMs: 5_000,
  keepAliveTimeoutMs: 5_000,
  maxEventSubscribers: 256,
  maxEventBacklogBytes: 1024 * 1024,
  maxEventReplayBlocks: 1000,
  shutdownGraceMs: 1_000,
  ...BATCH_LIMIT_DEFAULTS,
  ...BLOCK_RANGE_DEFAULTS,
})

/** Options of `createRpcServer`. */
export interface RpcServerOptions {
  backend: RpcBackend
  /** Parent logger; the server logs through a child `{ module: 'rpc' }`. Silent when omitted. */
  logger?: Logger
  limits: RpcLimits
  host: string
  /** 0 picks a free port (tests). */
  port: number
  /** Cross-origin access for browsers; off (no CORS headers at all) when omitted or with no origins. */
  cors?: CorsOptions
  /**
   * HTTPS with this PEM certificate (chain) and private key, files read once at creation; plain HTTP
   * when omitted or both empty (config.json's `rpc.tls`, resolved against the home).
   */
  tls?: { certFile: string; keyFile: string }
  /** Clock for the rate limiter, ms. Defaults to `performance.now`. */
  now?: () => number
  /** SSE heartbeat comment interval, ms; 0 disables it. Default 15000. */
  heartbeatMs?: number
  /** How often request and header timeouts are checked, ms. Default 1000 (Node's own is 30 s). */
  timeoutCheckIntervalMs?: number
  /** Serialises an SSE event's data (once per event, for every stream). Tests count calls. */
  encodeEvent?: (event: RpcEvent) => string
  /** Called once per answered request (the node counts them in its metrics). */
  onRequestDone?: (r: { route: string; method: string; status: number; seconds: number }) => void
}

/** Where the server listens once started. */
export interface RpcAddress {
  host: string
  port: number
  /** `http://host:port`, ready to hand to `createClient`. */
  url: string
}

/**
 * The RPC server: `start()` binds and listens; `stop()` ends open streams, lets requests in progress
 * finish for `shutdownGraceMs`, then closes every connection, whatever the clients do.
 */
export interface RpcServer {
  start(): Promise<RpcAddress>
  stop(): Promise<void>
  /** Open `GET /v1/events` streams. */
  eventSubscribers(): number
  /** Bytes of events held for the streams (see `EventHub.bufferedBytes`). */
  eventBufferedBytes(): number
  /** Open TCP connections. */
  connections(): number
  /** Registered routes as `METHOD /path` with `{param}` placeholders, HEAD left out (the OpenAPI form). */
  routes(): string[]
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
  const lim = { ...RPC_LIMIT_DEFAULTS, ...definedOnly(limits) }
  for (const k of Object.keys(RPC_LIMIT_DEFAULTS) as (keyof typeof RPC_LIMIT_DEFAULTS)[])
    if (!Number.isSafeInteger(lim[k]) || lim[k] < 0)
      throw new RangeError(`limits.${k} must be a non-negative integer`)
  if (lim.maxBatchTxs < 1 || lim.maxBatchBytes < 1)
    throw new RangeError('limits.maxBatchTxs and limits.maxBatchBytes must be positive')
  if (lim.maxRangeBlocks < 1 || lim.maxRangeBytes < 1)
    throw new RangeError('limits.maxRangeBlocks and limits.maxRangeBytes must be positive')
  if (lim.headersTimeoutMs > lim.requestTimeoutMs && lim.requestTimeoutMs > 0)
    throw new RangeError('limits.headersTimeoutMs must be at most limits.requestTimeoutMs')
  const logger = (opts.logger ?? pino({ level: 'silent' })).child({ module: 'rpc' })
  const jsonBodyLimit = limits.maxBodyBytes * 2 + 1024
  const rate = limits.rateLimitPerSecond ?? 0
  const limiter =
    rate > 0
      ? createRateLimiter({
          ratePerSecond: rate,
          burst: limits.rateLimitBurst ?? 2 * rate,
          now: opts.now ?? (() => performance.now()),
        })
      : undefined
  const exempt = new Set(limits.exemptClients ?? [])
  const hub = createEventHub({
    backend,
    logger,
    maxSubscribers: lim.maxEventSubscribers,
    maxBacklogBytes: lim.maxEventBacklogBytes,
    heartbeatMs: opts.heartbeatMs ?? 15_000,
    ...(opts.encodeEvent ? { encodeEvent: opts.encodeEvent } : {}),
  })
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
    addCors(request, reply)
    if (m.status === 429 || m.status === 503) void reply.header('retry-after', String(retryAfter(err)))
    void reply.code(m.status).send(errorBody(m.code, m.message))
  }

  // Set once CORS is registered below; frameworkErrors answers need it (no hook sees them).
  let addCors: AddCorsHeaders = () => {}
  const tls = readTlsFiles(opts.tls)
  const serverOptions = {
    headersTimeout: lim.headersTimeoutMs,
    requestTimeout: lim.requestTimeoutMs,
    keepAliveTimeout: lim.keepAliveTimeoutMs,
    connectionsCheckingInterval: opts.timeoutCheckIntervalMs ?? 1000,
  }
  const app = Fastify({
    logger: false,
    bodyLimit: jsonBodyLimit,
    // Requests that arrive while stopping get our own 503 SHUTTING_DOWN (fastify's has another shape).
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // Slow and idle clients (slow loris, trickled bodies) are cut off; Node checks these every
    // connectionsCheckingInterval, so it is short. SSE and wait=commit responses are not affected:
    // these bound receiving the request, not sending the answer.
    requestTimeout: lim.requestTimeoutMs,
    keepAliveTimeout: lim.keepAliveTimeoutMs,
    // Typed as plain HTTP either way: the routes never touch the server's type.
    ...((tls ? { https: { ...serverOptions, ...tls } } : { http: serverOptions }) as { http: object }),
    routerOptions: { maxParamLength: 256 },
    frameworkErrors: (err, request, reply) => sendMapped(request, reply, err, mapError(err)),
  })

  const routes: string[] = []
  app.addHook('onRoute', (r) => {
    for (const m of [r.method].flat())
      if (m !== 'HEAD') routes.push(`${m} ${r.url.replace(/:([A-Za-z]+)/g, '{$1}')}`)
  })
  registerOpenApi(app)

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
      if (UNLIMITED.has(request.url.split('?')[0]!) || exempt.has(request.ip)) return
      const waitMs = limiter.take(request.ip)
      if (waitMs > 0)
        throw rpcError('RATE_LIMITED', 'too many requests from this address; slow down', {
          retryAfterSeconds: Math.ceil(waitMs / 1000),
        })
    })
  }
  addCors = registerCors(app, opts.cors)
  app.addHook('onResponse', async (request, reply) => {
    logger.trace({ method: request.method, url: request.url, status: reply.statusCode }, 'rpc request')
    opts.onRequestDone?.({
      // The route pattern (`/v1/blocks/:height`), never the raw URL: one series per route, not per height.
      route: request.routeOptions.url ?? 'unmatched',
      method: request.method,
      status: reply.statusCode,
      seconds: reply.elapsedTime / 1000,
    })
  })

  // The routes go in a plugin so that they are added after the swagger generator has loaded (it
  // collects routes as they are added); hooks, parsers and handlers above are the root's and apply.
  void app.register(async (app) => {
    registerTxRoutes(app, { backend, waits, maxBodyBytes: limits.maxBodyBytes, maxWaitMs: limits.maxWaitMs })

    registerBatchRoute(app, {
      backend,
      logger,
      sendError,
      ...(limiter ? { limiter, exempt } : {}),
      limits: {
        maxBatchTxs: lim.maxBatchTxs,
        maxBatchBytes: lim.maxBatchBytes,
        maxTxBytes: limits.maxBodyBytes,
      },
    })

    registerChainRoutes(app, {
      backend,
      limits: { maxRangeBlocks: lim.maxRangeBlocks, maxRangeBytes: lim.maxRangeBytes },
    })
    registerSearchRoutes(app, { searchTxs: (q) => backend.searchTxs(q), sendError })

    app.get('/v1/health', { schema: ROUTE_SCHEMAS.getHealth }, async (_request, reply) => {
      const h = await backend.health()
      void reply.code(h.ok ? 200 : 503).send(jsonForm(h))
    })

    app.get('/metrics', { schema: ROUTE_SCHEMAS.getMetrics }, async (_request, reply) => {
      const m = await backend.metrics()
      void reply.type(m.contentType).send(m.body)
    })

    const refuseIfFull = (reply: FastifyReply): void => {
      if (!hub.full()) return
      // The connection goes too: a refused subscriber must not keep a connection slot.
      void reply.header('connection', 'close')
      throw rpcError('TOO_MANY_SUBSCRIBERS', 'too many open event streams; retry later', {
        limit: lim.maxEventSubscribers,
      })
    }
    app.get('/v1/events', { schema: ROUTE_SCHEMAS.streamEvents }, async (request, reply) => {
      refuseIfFull(reply)
      const req = parseEventsRequest(request.query, request.headers['last-event-id'])
      if (req.after) {
        const first = firstReplayHeight(req.after)
        const { height: tip, lowestHeight } = await backend.status()
        if (first < lowestHeight)
          throw rpcError(
            'PRUNED',
            `cannot resume from height ${first}: this node keeps blocks from height ${lowestHeight} on (older ones were pruned)`,
            { lowestHeight },
          )
        const oldest = Math.max(1, tip - lim.maxEventReplayBlocks + 1)
        if (first < oldest)
          throw rpcError(
            'RESUME_TOO_OLD',
            `cannot resume from height ${first}: streams replay at most ${lim.maxEventReplayBlocks} blocks (from ${oldest}); read older blocks with GET /v1/blocks/:height`,
            { oldest },
          )
        refuseIfFull(reply)
      }
      // Headers set by hooks (CORS) go out with the stream, which writes its own head.
      for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) reply.raw.setHeader(k, v)
      reply.hijack()
      hub.open(reply.raw, req)
    })
  })

  // Connections that never carried a request (clients open spares, e.g. undici after an abort).
  // Node's closeIdleConnections leaves them alone, and server.close() would wait for the client to
  // drop them, so stop() destroys them itself.
  const fresh = new Set<Socket>()
  const sockets = new Set<Socket>()
  const openConnections = (): number => sockets.size
  // The connection caps, counted here rather than by Node's server.maxConnections so that exempt
  // clients are never turned away and one address cannot take every slot.
  const perClient = new Map<string, number>()
  let capped = 0
  app.server.on('connection', (socket: Socket) => {
    const addr = socket.remoteAddress ?? ''
    if (!exempt.has(addr)) {
      const mine = perClient.get(addr) ?? 0
      if (
        (lim.maxConnections > 0 && capped >= lim.maxConnections) ||
        (lim.maxConnectionsPerClient > 0 && mine >= lim.maxConnectionsPerClient)
      ) {
        logger.debug({ client: addr, connections: capped, fromClient: mine }, 'rpc connection refused (cap)')
        socket.destroy()
        return
      }
      perClient.set(addr, mine + 1)
      capped++
      socket.once('close', () => {
        capped--
        const left = (perClient.get(addr) ?? 1) - 1
        if (left > 0) perClient.set(addr, left)
        else perClient.delete(addr)
      })
    }
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  // Under TLS a request's socket is the TLS socket, not the TCP one 'connection' gave.
  app.server.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    if (socket.destroyed) return
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
      logger.info({ host: addr.address, port: addr.port, tls: tls !== undefined }, 'rpc listening')
      return { host: addr.address, port: addr.port, url: `${tls ? 'https' : 'http'}://${host}:${addr.port}` }
    },
    async stop() {
      stopping = true
      for (const ac of waits) ac.abort()
      hub.closeAll()
      const closing = app.close()
      for (const socket of fresh) socket.destroy()
      // Requests in progress (answers to aborted waits, a client trickling its body) get a short
      // grace; then every connection is closed so that stop never waits on a client.
      let grace: NodeJS.Timeout | undefined
      const graceOver = new Promise<void>((r) => {
        grace = setTimeout(r, lim.shutdownGraceMs)
        grace.unref()
      })
      const closed = await Promise.race([closing.then(() => true), graceOver.then(() => false)])
      clearTimeout(grace)
      if (!closed) {
        logger.info({ connections: openConnections() }, 'rpc closing connections still open')
        app.server.closeAllConnections()
        for (const socket of sockets) socket.destroy()
        await closing
      }
      logger.info('rpc stopped')
    },
    eventSubscribers: () => hub.size(),
    eventBufferedBytes: () => hub.bufferedBytes(),
    connections: () => openConnections(),
    routes: () => [...routes],
  }
}

/** The PEM pair of `RpcServerOptions.tls`, or undefined for plain HTTP; BAD_CONFIG naming the field. */
function readTlsFiles(t: RpcServerOptions['tls']): { cert: Buffer; key: Buffer } | undefined {
  if (!t || (t.certFile === '' && t.keyFile === '')) return undefined
  const read = (field: 'certFile' | 'keyFile'): Buffer => {
    if (t[field] === '')
      throw new CityError('BAD_CONFIG', `rpc.tls.${field}: missing (both files or neither)`)
    try {
      return readFileSync(t[field])
    } catch (err) {
      throw new CityError(
        'BAD_CONFIG',
        `rpc.tls.${field}: cannot read ${t[field]}: ${(err as NodeJS.ErrnoException).code ?? err}`,
      )
    }
  }
  return { cert: read('certFile'), key: read('keyFile') }
}

/** Seconds a 429/503 tells the client to wait: the limiter's own figure when it gave one. */
function retryAfter(err: unknown): number {
  const s = (err as { details?: { retryAfterSeconds?: unknown } })?.details?.retryAfterSeconds
  return typeof s === 'number' && Number.isSafeInteger(s) && s > 0 ? s : 1
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

function notFound(request: FastifyRequest): Error {
  return rpcError('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}`)
}

/** Which side of the error table applies to a request (see `ErrorContext`). */
function errorContext(request: FastifyRequest): ErrorContext {
  const route = request.routeOptions?.url
  if (
    request.method === 'POST' &&
    (route === '/v1/txs' || route === '/v1/txs/json' || route === '/v1/txs/batch')
  )
    return 'tx'
  if (route === '/v1/services/:service/:query') return 'query'
  return 'read'
}
