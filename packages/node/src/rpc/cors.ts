import cors from '@fastify/cors'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

/** Cross-origin access to the RPC for browser apps (`rpc.cors` in config.json). */
export interface CorsOptions {
  /**
   * Origins (scheme://host[:port], exactly as a browser sends them) allowed to call the RPC, or `*`
   * for any. Empty: CORS off, no CORS header on any answer and no preflight route.
   */
  origins: readonly string[]
}

/** What an origin entry must look like: a browser's `Origin` header never has a path or a slash. */
export const CORS_ORIGIN_RE = /^(?:\*|https?:\/\/[^/\s]+)$/

/**
 * Adds the CORS headers of an allowed origin to an answer that has none yet; the server calls it on
 * every error answer. Does nothing while CORS is off.
 */
export type AddCorsHeaders = (request: FastifyRequest, reply: FastifyReply) => void

/** Headers a browser script may send, and those of ours it may read. */
const ALLOWED_HEADERS = ['content-type', 'last-event-id']
const EXPOSED_HEADERS = ['retry-after']

/**
 * Turns CORS on for the listed origins. An allowed origin's requests and preflights get
 * `Access-Control-Allow-Origin` (its own origin, also under `*`) and `Vary: Origin`, error answers
 * and event streams included;
 * any other origin's get no CORS header, and its preflight is the usual 404 (no OPTIONS route for it),
 * so the browser refuses. Registered as a plugin: its hook runs after the shutdown and rate-limit
 * hooks, so preflights count against a client's rate like any request. Returns the function that adds
 * the headers (see `AddCorsHeaders`).
 */
export function registerCors(app: FastifyInstance, opts: CorsOptions | undefined): AddCorsHeaders {
  const origins = opts?.origins ?? []
  if (!Array.isArray(origins)) throw new RangeError('cors.origins must be an array of origins')
  for (const o of origins)
    if (typeof o !== 'string' || !CORS_ORIGIN_RE.test(o))
      throw new RangeError(
        `cors.origins: ${JSON.stringify(o)} is not an origin (scheme://host[:port], no path) or "*"`,
      )
  if (origins.length === 0) return () => {}
  const any = origins.includes('*')
  const allowed = new Set(origins)
  const allows = (origin: string | undefined): origin is string =>
    origin !== undefined && (any || allowed.has(origin))
  void app.register(cors, {
    // A function (not the list) so that a refused origin gets nothing, not even a 204 preflight.
    origin: (origin, cb) => cb(null, allows(origin)),
    methods: ['GET', 'HEAD', 'POST'],
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: 600,
  })
  // The plugin's hook runs on requests that reach it; error answers made before it (rate limit,
  // shutdown, a URL fastify cannot route) get the headers from the server's error path through this,
  // or the page could not read the error (nor its Retry-After).
  const add: AddCorsHeaders = (request, reply) => {
    const origin = request.headers.origin
    if (!allows(origin) || reply.hasHeader('access-control-allow-origin')) return
    const vary = reply.getHeader('vary')
    void reply
      .header('access-control-allow-origin', origin)
      .header('access-control-expose-headers', EXPOSED_HEADERS.join(','))
      .header('vary', vary ? `${vary}, Origin` : 'Origin')
  }
  return add
}
