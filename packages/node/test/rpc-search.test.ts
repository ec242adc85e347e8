// GET /v1/txs/search on a bare fastify app with a fake search: parameter checks (400, uniform body),
// what reaches the search, the answer as sent (every field survives the schema), paging, errors of
// the search, the route order against /v1/txs/:hash, and the schema under the server's strict ajv.
import swagger from '@fastify/swagger'
import { Ajv } from 'ajv'
import Fastify, { type FastifyInstance } from 'fastify'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type ChainStore, StoreError, sha256, toHex, utf8 } from '@cityledger/core'
import {
  SEARCH_SCHEMA,
  type SearchTxs,
  type TxSearchAnswer,
  type TxSearchParams,
  registerSearchRoutes,
} from '../src/rpc/searchRoutes.ts'

const SIGNER = 'ab'.repeat(32)
const hashOf = (n: number) => sha256(utf8.encode(`tx ${n}`))

/** A search over `total` txs (three per height) that pages by `height.index` cursors like the store. */
function fakeSearch(total: number, calls: TxSearchParams[] = []): SearchTxs {
  const all = Array.from({ length: total }, (_, n) => ({
    hash: hashOf(n),
    height: 1 + Math.floor(n / 3),
    index: n % 3,
  }))
  return async (q) => {
    calls.push(q)
    const list = q.order === 'desc' ? [...all].reverse() : all
    let start = 0
    if (q.cursor) {
      const [h, i] = q.cursor.split('.').map(Number)
      start = list.findIndex((t) => t.height === h && t.index === i) + 1
    }
    const txs = list.slice(start, start + q.limit)
    const last = txs.at(-1)
    const answer: TxSearchAnswer = { txs, indexedFrom: 1 }
    if (start + q.limit < list.length && last) answer.next = `${last.height}.${last.index}`
    return answer
  }
}

async function appWith(search: SearchTxs, hashRouteFirst = true): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  const hashRoute = () =>
    app.get('/v1/txs/:hash', async (request) => ({
      route: 'hash',
      hash: (request.params as { hash: string }).hash,
    }))
  if (hashRouteFirst) hashRoute()
  registerSearchRoutes(app, { searchTxs: search })
  if (!hashRouteFirst) hashRoute()
  await app.ready()
  return app
}

test('search is its own route whichever was added first; /v1/txs/:hash still gets hashes', async () => {
  for (const first of [true, false]) {
    const app = await appWith(fakeSearch(5), first)
    const r = await app.inject({ method: 'GET', url: '/v1/txs/search?service=token' })
    assert.is(r.statusCode, 200, r.body)
    assert.ok(Array.isArray(r.json().txs), r.body)
    const h = await app.inject({ method: 'GET', url: `/v1/txs/${SIGNER}` })
    assert.equal(h.json(), { route: 'hash', hash: SIGNER })
    // Without a query it is still the search route (and says what is missing), not a hash lookup.
    const bare = await app.inject({ method: 'GET', url: '/v1/txs/search' })
    assert.is(bare.statusCode, 400)
    assert.equal(bare.json(), {
      error: { code: 'BAD_REQUEST', message: 'give at least one of signer, service, method, event' },
    })
    await app.close()
  }
})

test('bad parameters are 400 with the uniform body naming the parameter; the search is not called', async () => {
  const calls: TxSearchParams[] = []
  const app = await appWith(fakeSearch(5, calls))
  const cases: [string, string, string][] = [
    ['', 'BAD_REQUEST', 'give at least one of'],
    ['order=desc&limit=5', 'BAD_REQUEST', 'give at least one of'],
    ['signer=xyz', 'BAD_HEX', 'signer:'],
    [`signer=${SIGNER}00`, 'BAD_HEX', 'signer:'],
    ['service=Token', 'BAD_REQUEST', 'service:'],
    ['service=token&service=names', 'BAD_REQUEST', 'service: given more than once'],
    ['method=transfer', 'BAD_REQUEST', 'method: needs service'],
    ['service=token&method=no-dash', 'BAD_REQUEST', 'method:'],
    ['event=transfer', 'BAD_REQUEST', 'event: expected service.name'],
    ['event=token.', 'BAD_REQUEST', 'event:'],
    ['event=.transfer', 'BAD_REQUEST', 'event:'],
    [`event=token.${'n'.repeat(129)}`, 'BAD_REQUEST', 'event: name longer than 128'],
    ['service=token&fromHeight=-1', 'BAD_REQUEST', 'fromHeight:'],
    ['service=token&fromHeight=1e3', 'BAD_REQUEST', 'fromHeight:'],
    ['service=token&toHeight=x', 'BAD_REQUEST', 'toHeight:'],
    ['service=token&fromHeight=9&toHeight=3', 'BAD_REQUEST', 'toHeight (3) is below fromHeight (9)'],
    ['service=token&order=up', 'BAD_REQUEST', 'order:'],
    ['service=token&limit=0', 'BAD_REQUEST', 'limit: expected 1 to 100'],
    ['service=token&limit=101', 'BAD_REQUEST', 'limit: expected 1 to 100'],
    ['service=token&limit=ten', 'BAD_REQUEST', 'limit:'],
    ['service=token&cursor=abc', 'BAD_REQUEST', 'cursor:'],
    ['service=token&page=2', 'BAD_REQUEST', 'unknown query parameter "page"'],
  ]
  for (const [qs, code, message] of cases) {
    const r = await app.inject({ method: 'GET', url: `/v1/txs/search?${qs}` })
    assert.is(r.statusCode, 400, `${qs}: ${r.body}`)
    const body = r.json()
    assert.equal(Object.keys(body), ['error'], qs)
    assert.equal(Object.keys(body.error).sort(), ['code', 'message'], qs)
    assert.is(body.error.code, code, `${qs}: ${r.body}`)
    assert.ok(body.error.message.includes(message), `${qs}: ${body.error.message}`)
  }
  assert.is(calls.length, 0, 'the search was called for a bad request')
  await app.close()
})

test('what reaches the search: parsed filters, defaults asc and 20', async () => {
  const calls: TxSearchParams[] = []
  const app = await appWith(fakeSearch(5, calls))
  const ok = async (qs: string) => {
    const r = await app.inject({ method: 'GET', url: `/v1/txs/search?${qs}` })
    assert.is(r.statusCode, 200, `${qs}: ${r.body}`)
    return calls.at(-1)!
  }
  assert.equal(await ok('service=token'), { service: 'token', order: 'asc', limit: 20 })
  const all = await ok(
    `signer=${SIGNER.toUpperCase()}&service=token&method=transfer&event=token.moved.out&fromHeight=3&toHeight=9&order=desc&limit=100&cursor=4.2`,
  )
  assert.equal(
    { ...all, signer: all.signer && toHex(all.signer) },
    {
      signer: SIGNER,
      service: 'token',
      method: 'transfer',
      event: { service: 'token', name: 'moved.out' },
      fromHeight: 3,
      toHeight: 9,
      order: 'desc',
      limit: 100,
      cursor: '4.2',
    },
  )
  assert.equal(await ok('event=vote.cast%20twice'), {
    event: { service: 'vote', name: 'cast twice' },
    order: 'asc',
    limit: 20,
  })
  await app.close()
})

test('the answer keeps every field through the response schema; next only when there is more', async () => {
  const app = await appWith(fakeSearch(4))
  const r = await app.inject({ method: 'GET', url: '/v1/txs/search?service=token&limit=3' })
  assert.equal(r.json(), {
    txs: [0, 1, 2].map((n) => ({ hash: toHex(hashOf(n)), height: 1, index: n })),
    next: '1.2',
    indexedFrom: 1,
  })
  const last = await app.inject({ method: 'GET', url: '/v1/txs/search?service=token&limit=3&cursor=1.2' })
  assert.equal(last.json(), { txs: [{ hash: toHex(hashOf(3)), height: 2, index: 0 }], indexedFrom: 1 })
  await app.close()
  // A backend that answers in JSON form (hex hashes) is sent as it is.
  const hexApp = await appWith(async () => ({
    txs: [{ hash: 'cd'.repeat(32), height: 7, index: 1 }],
    indexedFrom: 5,
  }))
  const h = await hexApp.inject({ method: 'GET', url: '/v1/txs/search?signer=' + SIGNER })
  assert.equal(h.json(), { txs: [{ hash: 'cd'.repeat(32), height: 7, index: 1 }], indexedFrom: 5 })
  await hexApp.close()
})

test('paging with next covers every match once, both orders', async () => {
  const app = await appWith(fakeSearch(250))
  for (const order of ['asc', 'desc']) {
    const seen: string[] = []
    let cursor = ''
    for (let pages = 0; ; pages++) {
      assert.ok(pages < 100, 'paging does not end')
      const r = await app.inject({
        method: 'GET',
        url: `/v1/txs/search?event=token.transfer&order=${order}&limit=7${cursor ? `&cursor=${cursor}` : ''}`,
      })
      assert.is(r.statusCode, 200, r.body)
      const body = r.json() as { txs: { hash: string }[]; next?: string }
      assert.ok(body.txs.length <= 7)
      seen.push(...body.txs.map((t) => t.hash))
      if (body.next === undefined) break
      cursor = body.next
    }
    const want = Array.from({ length: 250 }, (_, n) => toHex(hashOf(n)))
    assert.equal(seen, order === 'asc' ? want : want.reverse(), order)
  }
  await app.close()
})

test("the search's own errors: bad input 400, anything else 500 INTERNAL, or the server's sendError", async () => {
  let fail: unknown = new StoreError('STORE_BAD_INPUT', 'search.cursor: not a cursor of this store', {
    field: 'cursor',
  })
  const failing: SearchTxs = async () => {
    throw fail
  }
  const app = await appWith(failing)
  const r = await app.inject({ method: 'GET', url: '/v1/txs/search?service=token&cursor=1.1' })
  assert.is(r.statusCode, 400)
  assert.equal(r.json(), {
    error: { code: 'BAD_REQUEST', message: 'search.cursor: not a cursor of this store' },
  })
  fail = new Error('disk on fire')
  const bug = await app.inject({ method: 'GET', url: '/v1/txs/search?service=token' })
  assert.is(bug.statusCode, 500)
  assert.equal(bug.json(), { error: { code: 'INTERNAL', message: 'internal error' } })
  await app.close()

  const got: unknown[] = []
  const server = Fastify({ logger: false })
  registerSearchRoutes(server, {
    searchTxs: failing,
    sendError: (_request, reply, err) => {
      got.push(err)
      void reply.code(503).send({ error: { code: 'NOT_READY', message: 'from the server' } })
    },
  })
  const s = await server.inject({ method: 'GET', url: '/v1/txs/search?service=token' })
  assert.is(s.statusCode, 503)
  assert.equal(got, [fail])
  await server.close()
})

test("the schema: operationId searchTxs in the OpenAPI document, compiles under the server's strict ajv", async () => {
  const app = Fastify({ logger: false })
  await app.register(swagger, { openapi: { openapi: '3.1.0', info: { title: 't', version: '1' } } })
  registerSearchRoutes(app, { searchTxs: fakeSearch(1) })
  await app.ready()
  const doc = app.swagger() as {
    paths: Record<string, { get?: { operationId?: string; parameters?: { name: string }[] } }>
  }
  const op = doc.paths['/v1/txs/search']?.get
  assert.is(op?.operationId, 'searchTxs')
  assert.equal(op?.parameters?.map((p) => p.name).sort(), [
    'cursor',
    'event',
    'fromHeight',
    'limit',
    'method',
    'order',
    'service',
    'signer',
    'toHeight',
  ])
  await app.close()
  // What openapi.ts does with a querystring schema in the server.
  const ajv = new Ajv({ coerceTypes: true, allErrors: false, verbose: true, strict: true })
  const validate = ajv.compile(SEARCH_SCHEMA.querystring)
  assert.ok(validate({ service: 'token', limit: '20' }))
  assert.not.ok(validate({ limit: '0' }))
})

test("ChainStore's searchTxs is a SearchTxs (the node wires it as it is)", () => {
  const wire =
    (store: ChainStore): SearchTxs =>
    (q) =>
      store.searchTxs(q)
  assert.type(wire, 'function')
})

test.run()
