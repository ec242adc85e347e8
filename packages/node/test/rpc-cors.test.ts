// CORS (issue 15): off by default; with rpc.cors.origins an allowed origin's preflight and requests get
// the CORS headers, any other origin's get none (its preflight is 404, so the browser refuses).
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

test('preflights count against the rate limit; a refused answer carries no CORS header', async () => {
  await withServer(
    { origins: [APP] },
    async (url) => {
      assert.is((await preflight(url, APP)).status, 204)
      assert.is((await preflight(url, APP)).status, 204)
      const p = await preflight(url, APP)
      assert.is(p.status, 429, 'the third request within the burst of 2 (the clock stands still)')
      assert.is(p.headers.get('access-control-allow-origin'), null)
    },
    { rateLimitPerSecond: 1, rateLimitBurst: 2 },
  )
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
