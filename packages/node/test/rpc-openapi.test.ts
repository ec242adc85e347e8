// The OpenAPI document generated from the route schemas (@fastify/swagger): it is a valid OpenAPI 3.1
// document, the answers of the server match the schemas it documents for them, and the response
// schemas never change a body (fastify's default serialiser would drop fields they do not name).
// fixtures/openapi-3.1.schema.json is the OpenAPI Initiative's schema of 3.1 documents (Apache-2.0),
// as @seriousme/openapi-schema-validator 2.11.0 adapts it for Ajv ($dynamicRef replaced by $ref).
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { toHex } from '@cityledger/core'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createFakeBackend } from '../src/rpc/fakeBackend.ts'
import { createRpcServer } from '../src/rpc/index.ts'
import { jsonForm } from '../src/rpc/params.ts'
import { call, postBytes, postJson, signed } from './rpcHarness.ts'

type Doc = {
  paths: Record<string, Record<string, { responses: Record<string, any> }>>
  components: { schemas: Record<string, unknown> }
}

async function withDocServer(
  fn: (h: { fake: ReturnType<typeof createFakeBackend>; url: string; doc: Doc }) => Promise<void>,
  backend = createFakeBackend({ chainId: 'test-chain', txBodies: true }),
): Promise<void> {
  const server = createRpcServer({
    backend,
    limits: { maxBodyBytes: 4096, maxWaitMs: 60_000 },
    host: '127.0.0.1',
    port: 0,
    heartbeatMs: 0,
  })
  const { url } = await server.start()
  try {
    const doc = (await call(`${url}/v1/openapi.json`)).body as Doc
    await fn({ fake: backend, url, doc })
  } finally {
    await server.stop()
  }
}

test('the generated document is a valid OpenAPI 3.1 document; its schemas compile as JSON Schema 2020-12', async () => {
  await withDocServer(async ({ doc }) => {
    const meta = JSON.parse(
      readFileSync(join(import.meta.dirname, 'fixtures', 'openapi-3.1.schema.json'), 'utf8'),
    )
    const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true })
    const validate = ajv.compile(meta)
    assert.ok(validate(doc), JSON.stringify(validate.errors?.slice(0, 5)))
    const schemas = new Ajv2020({ strict: false })
    schemas.addSchema({ $id: 'doc', components: doc.components })
    for (const name of Object.keys(doc.components.schemas))
      schemas.getSchema(`doc#/components/schemas/${name}`) ?? assert.unreachable(name)
  })
})

/** Checks that an answer is one the document declares: its status, its media type and its schema. */
function conforms(
  doc: Doc,
  path: string,
  method: string,
  r: { status: number; body: any; headers: Headers },
) {
  const op = doc.paths[path]?.[method]
  assert.ok(op, `${method} ${path} is documented`)
  const declared = op!.responses[String(r.status)]
  assert.ok(declared, `${method} ${path}: status ${r.status} is documented (${JSON.stringify(r.body)})`)
  const type = (r.headers.get('content-type') ?? '').split(';')[0]!
  const media = declared.content?.[type]
  assert.ok(media, `${method} ${path} ${r.status}: content type ${type} is documented`)
  if (type !== 'application/json') return
  const ajv = new Ajv2020({ strict: false, allErrors: true })
  const validate = ajv.compile({ ...media.schema, components: doc.components })
  assert.ok(
    validate(r.body),
    `${method} ${path} ${r.status}: ${JSON.stringify(validate.errors?.slice(0, 3))} in ${JSON.stringify(r.body).slice(0, 300)}`,
  )
}

test('answers match the document: every route, success and error', async () => {
  await withDocServer(async ({ fake, url, doc }) => {
    const get = async (path: string, route = path) => conforms(doc, route, 'get', await call(`${url}${path}`))
    await get('/v1/blocks/latest') // 404: no block yet
    const tx = signed({ nonce: 1 })
    const hash = toHex(tx.hash)
    conforms(doc, '/v1/txs', 'post', await postBytes(url, tx.bytes))
    conforms(doc, '/v1/txs', 'post', await postBytes(url, tx.bytes)) // 409 DUPLICATE_TX
    conforms(doc, '/v1/txs', 'post', await postBytes(url, new Uint8Array(5000))) // 413
    await get(`/v1/txs/${hash}`, '/v1/txs/{hash}') // pending, with its body
    const block = fake.commit()
    await get(`/v1/txs/${hash}`, '/v1/txs/{hash}') // committed
    await get(`/v1/txs/${hash}?wait=commit`, '/v1/txs/{hash}')
    await get('/v1/txs/zz', '/v1/txs/{hash}') // 400 BAD_HEX
    const json = { envelope: toHex(signed({ nonce: 2 }).bytes) }
    conforms(doc, '/v1/txs/json', 'post', await postJson(url, '/v1/txs/json', JSON.stringify(json)))
    conforms(doc, '/v1/txs/json', 'post', await postJson(url, '/v1/txs/json', '{"envelope":5}'))
    conforms(doc, '/v1/txs/json', 'post', await postBytes(url, tx.bytes, '/json')) // 415
    const batch = JSON.stringify([toHex(signed({ nonce: 3 }).bytes), 'zz'])
    conforms(doc, '/v1/txs/batch', 'post', await postJson(url, '/v1/txs/batch', batch))
    conforms(doc, '/v1/txs/batch', 'post', await postJson(url, '/v1/txs/batch', '{}'))
    fake.commit()
    for (const p of ['/v1/status', '/v1/genesis', '/v1/validators', '/v1/peers', '/v1/health']) await get(p)
    await get('/v1/blocks/latest')
    await get('/v1/blocks/1', '/v1/blocks/{height}')
    await get('/v1/blocks/9', '/v1/blocks/{height}') // 404
    await get('/v1/blocks/x', '/v1/blocks/{height}') // 400
    await get(`/v1/blocks/hash/${block.hash}`, '/v1/blocks/hash/{hash}')
    await get('/v1/blocks/hash/zz', '/v1/blocks/hash/{hash}')
    for (const q of ['?from=1', '?from=1&to=2', '?from=9', '?from=0', '?to=1'])
      await get(`/v1/blocks${q}`, '/v1/blocks')
    fake.addQuery('token', 'balance', () => ({ height: 2, value: { amount: 5n } }))
    const q = '/v1/services/{service}/{query}'
    await get('/v1/services/token/balance?account=a', q)
    await get('/v1/services/token/nothing', q)
    await get('/v1/services/Bad!/x', q)
    await get('/v1/events?fromHeight=x', '/v1/events')
    fake.setHealth({ ok: false, reasons: ['no peers'] })
    await get('/v1/health')
    await get('/v1/openapi.json')
    const m = await fetch(`${url}/metrics`)
    conforms(doc, '/metrics', 'get', { status: m.status, body: await m.text(), headers: m.headers })
    const ac = new AbortController()
    const s = await fetch(`${url}/v1/events`, { signal: ac.signal })
    conforms(doc, '/v1/events', 'get', { status: s.status, body: undefined, headers: s.headers })
    ac.abort()
    await fake.whenSubscribers(0)
  })
})

test('response schemas never change a body: fields they do not name and values of another type go out as built', async () => {
  const fake = createFakeBackend({ chainId: 'test-chain', txBodies: true })
  const status = fake.status.bind(fake)
  // What fast-json-stringify would drop (an unnamed field) and coerce (a string where the schema
  // says integer), had the response schemas been used to serialise.
  fake.status = async () => ({ ...(await status()), extra: 'kept', view: '7' as unknown as number })
  await withDocServer(async ({ url }) => {
    const tx = signed({ nonce: 1 })
    assert.is((await postBytes(url, tx.bytes)).status, 202)
    fake.commit()
    fake.addQuery('token', 'balance', () => ({ height: 1, value: { amount: 5n, note: 'x' }, extra: [1] }))
    const raw = async (path: string) => (await fetch(`${url}${path}`)).text()
    // Each body is byte for byte what the handler built: the backend's value in JSON form.
    assert.is(await raw('/v1/status'), JSON.stringify(jsonForm(await fake.status())))
    assert.match(await raw('/v1/status'), /"extra":"kept"/)
    assert.match(await raw('/v1/status'), /"view":"7"/)
    assert.is(await raw('/v1/blocks/1'), JSON.stringify(jsonForm(await fake.block(1))))
    assert.is(await raw(`/v1/txs/${toHex(tx.hash)}`), JSON.stringify(jsonForm(await fake.txStatus(tx.hash))))
    assert.is(
      await raw('/v1/services/token/balance?account=a'),
      JSON.stringify(jsonForm(await fake.query('token', 'balance', { account: 'a' }))),
    )
    assert.is(await raw('/v1/blocks?from=1'), JSON.stringify({ blocks: [jsonForm(await fake.block(1))] }))
  }, fake)
})

test.run()
