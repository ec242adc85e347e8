// CORS (issue 15): off by default; with rpc.cors.origins an allowed origin's preflight and requests get
// the CORS headers, error answers (429 and 413 included) and event streams too; any other origin's get none
// (its preflight is 404, so the browser refuses).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { loadConfig } from '../src/config/index.ts'
import { createFakeBackend } from '../src/rpc/fakeBackend.ts'
import { type RpcServerOptions, createRpcServer } from '../src/rpc/index.ts'
import { call } from './rpcHarness.ts'
import { startLocalNode } from './nodeHarness.ts'

const APP = 'https://app.example.org'
const OTHER = 'https://evil.example.net'

async function withServer(
  cors: RpcServerOptions['cors'],
  fn: (url: string, routes: string[]) => Promise<void>,
  limits: Partial<RpcServerOptions['limits']> = {},
): Promise<void> {
  const server = createRpcServer({
    backend: createFakeBackend(),
    limits: { maxBodyBytes: 4096, maxWaitMs: 1000, ...limits },
    now: () => 0,
    host: '127.0.0.1',
    port: 0,
    heartbeatMs: 0,
    ...(cors ? { cors } : {}),
  })
  const { url } = await server.start()
  try {
    await fn(url, server.routes())
  } finally {
    await server.stop()
  }
}

const preflight = (url: string, origin: string) =>
  fetch(`${url}/v1/txs`, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type',
    },
  })

test('off by default (and with no origins): no CORS header, no preflight route', async () => {
  for (const cors of [undefined, { origins: [] }]) {
    await withServer(cors, async (url, routes) => {
      const p = await preflight(url, APP)
      assert.is(p.status, 404, 'no OPTIONS route')
      assert.is(p.headers.get('access-control-allow-origin'), null)
      const r = await fetch(`${url}/v1/status`, { headers: { origin: APP } })
      assert.is(r.status, 200)
      assert.is(r.headers.get('access-control-allow-origin'), null)
      assert.not.ok(routes.some((x) => x.startsWith('OPTIONS')))
    })
  }
})

test('an allowed origin gets the preflight and the headers; another origin gets none', async () => {
  await withServer({ origins: [APP, 'http://localhost:3000'] }, async (url) => {
    const p = await preflight(url, APP)
    assert.is(p.status, 204)
    assert.is(p.headers.get('access-control-allow-origin'), APP)
    assert.match(p.headers.get('access-control-allow-methods') ?? '', /POST/)
    assert.match(p.headers.get('access-control-allow-headers') ?? '', /content-type/)
    assert.match(p.headers.get('vary') ?? '', /origin/i)
    const r = await fetch(`${url}/v1/status`, { headers: { origin: APP } })
    assert.is(r.status, 200)
    assert.is(r.headers.get('access-control-allow-origin'), APP)
    assert.is(r.headers.get('access-control-expose-headers'), 'retry-after')
    assert.is(
      (await fetch(`${url}/v1/status`, { headers: { origin: 'http://localhost:3000' } })).headers.get(
        'access-control-allow-origin',
      ),
      'http://localhost:3000',
    )

    for (const origin of [OTHER, `${APP}.evil.net`, 'http://app.example.org']) {
      const q = await preflight(url, origin)
      assert.is(q.status, 404, `${origin}: preflight refused`)
      assert.is(q.headers.get('access-control-allow-origin'), null, origin)
      assert.is(q.headers.get('access-control-allow-methods'), null, origin)
      const s = await fetch(`${url}/v1/status`, { headers: { origin } })
      assert.is(s.status, 200, 'the request itself is answered (the browser withholds it)')
      assert.is(s.headers.get('access-control-allow-origin'), null, origin)
    }
  })
})

test('preflights count against the rate limit; the 429 carries the CORS headers so the page can read it', async () => {
  await withServer(
    { origins: [APP] },
    async (url) => {
      assert.is((await preflight(url, APP)).status, 204)
      assert.is((await preflight(url, APP)).status, 204)
      const p = await preflight(url, APP)
      assert.is(p.status, 429, 'the third request within the burst of 2 (the clock stands still)')
      assert.is(p.headers.get('access-control-allow-origin'), APP)
      assert.is(p.headers.get('access-control-expose-headers'), 'retry-after')
      const r = await fetch(`${url}/v1/status`, { headers: { origin: APP } })
      assert.is(r.status, 429)
      assert.is(r.headers.get('access-control-allow-origin'), APP, 'a rate-limited request')
      assert.ok(r.headers.get('retry-after'))
      const o = await fetch(`${url}/v1/status`, { headers: { origin: OTHER } })
      assert.is(o.status, 429)
      assert.is(o.headers.get('access-control-allow-origin'), null, 'not for another origin')
    },
    { rateLimitPerSecond: 1, rateLimitBurst: 2 },
  )
})

test('error answers (400, 404, 413, 415, 500, 503) carry the CORS headers for an allowed origin, none for another', async () => {
  await withServer(
    { origins: [APP] },
    async (url) => {
      const post = (path: string, type: string, body: string | Uint8Array<ArrayBuffer>, origin = APP) =>
        fetch(`${url}${path}`, { method: 'POST', headers: { origin, 'content-type': type }, body })
      const cases: [string, () => Promise<Response>, number][] = [
        ['bad param', () => fetch(`${url}/v1/blocks/x`, { headers: { origin: APP } }), 400],
        ['no route', () => fetch(`${url}/v1/nothing`, { headers: { origin: APP } }), 404],
        ['bad percent-encoding', () => fetch(`${url}/v1/txs/%zz`, { headers: { origin: APP } }), 400],
        [
          'overlong parameter',
          () => fetch(`${url}/v1/txs/${'0'.repeat(600)}`, { headers: { origin: APP } }),
          400,
        ],
        ['no block', () => fetch(`${url}/v1/blocks/latest`, { headers: { origin: APP } }), 404],
        ['body too large', () => post('/v1/txs', 'application/octet-stream', new Uint8Array(5000)), 413],
        ['bad media type', () => post('/v1/txs', 'text/plain', 'x'), 415],
        ['bad JSON', () => post('/v1/txs/json', 'application/json', '{'), 400],
        ['too many streams', () => fetch(`${url}/v1/events`, { headers: { origin: APP } }), 503],
      ]
      for (const [what, run, status] of cases) {
        const r = await run()
        await r.body?.cancel()
        assert.is(r.status, status, what)
        assert.is(r.headers.get('access-control-allow-origin'), APP, `${what}: allow-origin`)
        assert.match(r.headers.get('vary') ?? '', /origin/i, `${what}: vary`)
        assert.is(r.headers.get('access-control-expose-headers'), 'retry-after', `${what}: expose`)
      }
      const other = await post('/v1/txs', 'application/octet-stream', new Uint8Array(5000), OTHER)
      assert.is(other.status, 413)
      assert.is(other.headers.get('access-control-allow-origin'), null)
    },
    { maxEventSubscribers: 0 },
  )
})

test('the event stream carries the CORS headers (an EventSource on another origin reads it)', async () => {
  await withServer({ origins: [APP] }, async (url) => {
    const ac = new AbortController()
    const r = await fetch(`${url}/v1/events`, { headers: { origin: APP }, signal: ac.signal })
    assert.is(r.status, 200)
    assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/)
    assert.is(r.headers.get('access-control-allow-origin'), APP)
    ac.abort()
  })
})

test('an internal error (500) carries the CORS headers too', async () => {
  const backend = createFakeBackend()
  backend.failNext('status', new Error('boom'))
  const server = createRpcServer({
    backend,
    limits: { maxBodyBytes: 4096, maxWaitMs: 1000 },
    host: '127.0.0.1',
    port: 0,
    heartbeatMs: 0,
    cors: { origins: [APP] },
  })
  const { url } = await server.start()
  try {
    const r = await fetch(`${url}/v1/status`, { headers: { origin: APP } })
    assert.is(r.status, 500)
    assert.is(r.headers.get('access-control-allow-origin'), APP)
  } finally {
    await server.stop()
  }
})

test('"*" allows any origin; a malformed origin is refused at start', async () => {
  await withServer({ origins: ['*'] }, async (url) => {
    const p = await preflight(url, OTHER)
    assert.is(p.status, 204)
    assert.is(p.headers.get('access-control-allow-origin'), OTHER)
  })
  for (const bad of ['app.example.org', 'https://app.example.org/', '', 'https://a b'])
    assert.throws(
      () =>
        createRpcServer({
          backend: createFakeBackend(),
          limits: { maxBodyBytes: 4096, maxWaitMs: 1000 },
          host: '127.0.0.1',
          port: 0,
          cors: { origins: [bad] },
        }),
      /cors\.origins/,
      JSON.stringify(bad),
    )
})

test('config rpc.cors.origins reaches the node; the default is off', async () => {
  const local = await startLocalNode((cfg) => {
    assert.equal(cfg.rpc.cors, { origins: [] }, 'default: off')
    cfg.rpc.cors = { origins: [APP] }
  })
  try {
    const r = await call(`${local.url}/v1/status`, { headers: { origin: APP } })
    assert.is(r.status, 200)
    assert.is(r.headers.get('access-control-allow-origin'), APP)
    assert.is((await preflight(local.url, OTHER)).status, 404)
    // The config loader's default, read back from a home that sets nothing.
    assert.equal(loadConfig(local.home).rpc.cors, { origins: [] })
  } finally {
    await local.close()
  }
})

test.run()
