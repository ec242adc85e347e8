import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CityError, decodeTx, toHex } from '@cityledger/core'
import { Rng, testSeed } from '@cityledger/core/testing'
import { RPC_ERROR_STATUS, mapError } from '../src/rpc/index.ts'
import { call, postBytes, postJson, signed, withServer } from './rpcHarness.ts'

const SEED = testSeed(20261124)
const CODEC_CODES = ['MALFORMED', 'TRAILING_BYTES', 'NON_CANONICAL', 'BAD_FIELD']

function assertError(r: { status: number; body: any }, status: number, code: string, what = ''): void {
  assert.is(r.status, status, `${what} status (body ${JSON.stringify(r.body)})`)
  assert.type(r.body?.error, 'object', `${what} error body`)
  assert.is(r.body.error.code, code, `${what} code`)
  assert.type(r.body.error.message, 'string')
  assert.equal(Object.keys(r.body), ['error'])
}

test('submit, status, commit, block: the happy path', async () => {
  await withServer(async ({ fake, url }) => {
    const tx = signed()
    const r = await postBytes(url, tx.bytes)
    assert.is(r.status, 202)
    assert.equal(r.body, { hash: toHex(tx.hash) })

    assert.equal((await call(`${url}/v1/txs/${toHex(tx.hash)}`)).body, {
      hash: toHex(tx.hash),
      status: 'pending',
    })
    // Hash lookup accepts upper case too.
    assert.is((await call(`${url}/v1/txs/${toHex(tx.hash).toUpperCase()}`)).body.status, 'pending')
    assert.equal((await call(`${url}/v1/txs/${'ab'.repeat(32)}`)).body, {
      hash: 'ab'.repeat(32),
      status: 'unknown',
    })

    const block = fake.commit()
    const s = await call(`${url}/v1/txs/${toHex(tx.hash)}`)
    assert.is(s.status, 200)
    assert.is(s.body.status, 'committed')
    assert.is(s.body.height, 1)
    assert.is(s.body.index, 0)
    assert.is(s.body.events[0].type, 'transfer.done')
    // Bytes inside event data reach the client as hex.
    assert.is(s.body.events[0].data.signer, toHex(tx.body.signer))

    for (const path of ['/v1/blocks/1', '/v1/blocks/latest', `/v1/blocks/hash/${block.hash}`]) {
      const b = await call(url + path)
      assert.is(b.status, 200, path)
      assert.equal(b.body, block, path)
      assert.equal(b.body.txs, [toHex(tx.hash)])
    }

    const st = await call(`${url}/v1/status`)
    assert.equal(Object.keys(st.body).sort(), [
      'catchingUp',
      'chainId',
      'genesisHash',
      'height',
      'latestBlockHash',
      'latestBlockTime',
      'lowestHeight',
      'nodeId',
      'peers',
      'stateRoot',
      'version',
      'view',
    ])
    assert.is(st.body.height, 1)
    assert.is(st.body.chainId, 'test-chain')

    const peers = await call(`${url}/v1/peers`)
    assert.is(peers.status, 200)
    assert.is(peers.body.peers.length, 3)
    assert.equal(Object.keys(peers.body.peers[0]).sort(), ['addrs', 'publicKey', 'role'])
    assert.match(peers.body.peers[0].publicKey, /^[0-9a-f]{64}$/)

    const v = await call(`${url}/v1/validators`)
    assert.is(v.body.validators.length, 4)
    assert.match(v.body.validators[0].publicKey, /^[0-9a-f]{64}$/)
  })
})

test('POST /v1/txs/json takes the envelope as hex', async () => {
  await withServer(async ({ url }) => {
    const tx = signed()
    const r = await postJson(url, '/v1/txs/json', JSON.stringify({ envelope: toHex(tx.bytes) }))
    assert.is(r.status, 202)
    assert.equal(r.body, { hash: toHex(tx.hash) })
    assertError(
      await postJson(url, '/v1/txs/json', JSON.stringify({ envelope: toHex(tx.bytes) })),
      409,
      'DUPLICATE_TX',
    )
  })
})

test(`random bytes are refused with a codec code, never a crash (seed ${SEED})`, async () => {
  await withServer(async ({ url, logs }) => {
    const rng = new Rng(SEED)
    const valid = signed().bytes
    for (let i = 0; i < 150; i++) {
      let bytes: Uint8Array
      if (i % 3 === 0) {
        // Mutations of a valid envelope reach deeper into the decoder than pure noise.
        bytes = Uint8Array.from(valid)
        for (let k = rng.range(1, 4); k > 0; k--) bytes[rng.int(bytes.length)] = rng.u32() & 0xff
        if (rng.chance(0.3)) bytes = bytes.subarray(0, rng.int(bytes.length))
      } else bytes = rng.bytes(rng.range(1, 300))
      let expected: string | undefined
      try {
        decodeTx(bytes)
      } catch (err) {
        expected = (err as CityError).code
      }
      const r = await postBytes(url, bytes)
      // A mutation may leave a decodable envelope (e.g. inside the signature): admission decides then.
      if (expected === undefined) continue
      assertError(r, 400, expected, `seed ${SEED} case ${i}: ${toHex(bytes)}`)
      assert.ok(CODEC_CODES.includes(r.body.error.code), `seed ${SEED} case ${i}: code ${r.body.error.code}`)
    }
    assert.is(logs.filter((l) => l.level >= 50).length, 0, 'no request was logged as a bug')
  })
})

test('bodies over the limit are 413 TX_TOO_LARGE on both submit routes', async () => {
  await withServer(
    async ({ url }) => {
      assertError(await postBytes(url, new Uint8Array(4097)), 413, 'TX_TOO_LARGE', 'octet-stream')
      assertError(
        await postJson(url, '/v1/txs/json', JSON.stringify({ envelope: 'ab'.repeat(4097) })),
        413,
        'TX_TOO_LARGE',
        'json hex',
      )
      assertError(
        await postJson(url, '/v1/txs/json', `{"envelope":"${'a'.repeat(20_000)}"}`),
        413,
        'TX_TOO_LARGE',
        'json body',
      )
      // Exactly at the limit is accepted by the transport (and refused by the decoder on content).
      assert.is((await postBytes(url, new Uint8Array(4096))).status, 400)
    },
    {},
    { maxBodyBytes: 4096 },
  )
})

test('malformed JSON, wrong types, huge numbers and deep nesting are 400 with a code', async () => {
  await withServer(async ({ url }) => {
    const cases: [string, string][] = [
      ['{"envelope":', 'BAD_JSON'],
      ['', 'BAD_JSON'],
      ['nul', 'BAD_JSON'],
      [`{"envelope":${'['.repeat(8000)}`, 'BAD_JSON'],
      [`${'['.repeat(17)}${']'.repeat(17)}`, 'BAD_JSON'],
      [`{"a":${'{"a":'.repeat(20)}1${'}'.repeat(21)}`, 'BAD_JSON'],
      ['[]', 'BAD_REQUEST'],
      ['null', 'BAD_REQUEST'],
      ['"abc"', 'BAD_REQUEST'],
      ['{}', 'BAD_HEX'],
      ['{"envelope":12}', 'BAD_HEX'],
      ['{"envelope":1e999}', 'BAD_HEX'],
      ['{"envelope":123456789012345678901234567890}', 'BAD_HEX'],
      ['{"envelope":["00"]}', 'BAD_HEX'],
      ['{"envelope":"abc"}', 'BAD_HEX'],
      ['{"envelope":"zz"}', 'BAD_HEX'],
      ['{"envelope":"00","extra":1}', 'BAD_REQUEST'],
      ['{"envelope":"00"}', 'BAD_FIELD'],
      ['{"envelope":"9201"}', 'MALFORMED'],
      ['{"envelope":"920102ff"}', 'BAD_FIELD'],
    ]
    for (const [body, code] of cases) {
      assertError(await postJson(url, '/v1/txs/json', body), 400, code, body.slice(0, 40))
    }
    // A prototype key is dropped, not honoured.
    const r = await postJson(
      url,
      '/v1/txs/json',
      `{"__proto__":{"envelope":"00"},"envelope":"${toHex(signed().bytes)}"}`,
    )
    assert.is(r.status, 202)
  })
})

test('content types: octet-stream on /v1/txs, JSON on /v1/txs/json, nothing else', async () => {
  await withServer(async ({ url }) => {
    const tx = signed()
    assertError(
      await call(`${url}/v1/txs`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    )
    assertError(
      await postJson(url, '/v1/txs', JSON.stringify({ envelope: toHex(tx.bytes) })),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    )
    assertError(
      await call(`${url}/v1/txs/json`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: tx.bytes as Uint8Array<ArrayBuffer>,
      }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    )
    assertError(await call(`${url}/v1/txs`, { method: 'POST' }), 400, 'BAD_REQUEST', 'no body')
    assertError(await postBytes(url, new Uint8Array(0)), 400, 'BAD_REQUEST', 'empty body')
  })
})

test('admission refusals from the backend keep their codes', async () => {
  await withServer(async ({ fake, url }) => {
    assertError(await postBytes(url, signed({ chainId: 'other-chain' }).bytes), 400, 'WRONG_CHAIN')
    assertError(await postBytes(url, signed({ service: 'nosuch' }).bytes), 400, 'UNKNOWN_SERVICE')
    const tx = signed({ nonce: 5 })
    assert.is((await postBytes(url, tx.bytes)).status, 202)
    assertError(await postBytes(url, tx.bytes), 409, 'DUPLICATE_TX')
    assertError(await postBytes(url, signed({ nonce: 4 }).bytes), 400, 'NONCE_TOO_LOW')
    fake.setReady(false)
    const r = await postBytes(url, signed({ nonce: 6 }).bytes)
    assertError(r, 503, 'NOT_READY')
    assert.is(r.headers.get('retry-after'), '1')
    // Reads still work while catching up.
    assert.is((await call(`${url}/v1/status`)).body.catchingUp, true)
  })
})

test('every code of the table maps to its status on the tx route', async () => {
  await withServer(async ({ fake, url }) => {
    let nonce = 1
    for (const [code, status] of Object.entries(RPC_ERROR_STATUS)) {
      if (code === 'INTERNAL') continue
      fake.failNext('submitTx', new CityError(code, `injected ${code}`))
      assertError(await postBytes(url, signed({ nonce: nonce++ }).bytes), status, code, code)
    }
    // A service's own check code is bad input.
    fake.failNext('submitTx', new CityError('INSUFFICIENT_FUNDS', 'balance 3 < 10'))
    const r = await postBytes(url, signed({ nonce: nonce++ }).bytes)
    assertError(r, 400, 'INSUFFICIENT_FUNDS')
    assert.is(r.body.error.message, 'balance 3 < 10')
  })
})

test('bugs are 500 INTERNAL, logged, and leak no detail', async () => {
  await withServer(async ({ fake, url, logs }) => {
    fake.failNext('submitTx', new Error('db handle is secret-path/xyz'))
    const r = await postBytes(url, signed().bytes)
    assertError(r, 500, 'INTERNAL')
    assert.not.match(r.body.error.message, /secret/)
    fake.failNext('status', new CityError('STORE_WEIRD', 'unmapped read failure'))
    assertError(await call(`${url}/v1/status`), 500, 'INTERNAL', 'unmapped code on a read')
    fake.failNext('block', new CityError('INTERNAL', 'said internal'))
    assertError(await call(`${url}/v1/blocks/1`), 500, 'INTERNAL')
    const bugs = logs.filter((l) => l.level >= 50)
    assert.is(bugs.length, 3)
    assert.match(JSON.stringify(bugs[0]), /secret-path/)
    // The server keeps serving.
    assert.is((await call(`${url}/v1/health`)).status, 200)
  })
})

test('read-side mapping: missing resources are 404, bad parameters 400', async () => {
  await withServer(async ({ fake, url }) => {
    assertError(await call(`${url}/v1/blocks/latest`), 404, 'NOT_FOUND', 'no block yet')
    assertError(await call(`${url}/v1/blocks/7`), 404, 'NOT_FOUND')
    assertError(await call(`${url}/v1/blocks/hash/${'00'.repeat(32)}`), 404, 'NOT_FOUND')
    for (const h of ['abc', '-1', '1e3', '01', '1.5', '99999999999999999999', '0x10', '%20']) {
      assertError(await call(`${url}/v1/blocks/${h}`), 400, 'BAD_REQUEST', `height ${h}`)
    }
    for (const h of ['00', 'zz'.repeat(32), '0'.repeat(63), '0'.repeat(66)]) {
      assertError(await call(`${url}/v1/txs/${h}`), 400, 'BAD_HEX', `hash ${h}`)
      assertError(await call(`${url}/v1/blocks/hash/${h}`), 400, 'BAD_HEX', `block hash ${h}`)
    }
    assertError(await call(`${url}/v1/txs/${'0'.repeat(64)}?wait=later`), 400, 'BAD_REQUEST')
    assertError(await call(`${url}/v1/txs/${'0'.repeat(64)}?wait=commit&timeoutMs=-5`), 400, 'BAD_REQUEST')
    assertError(await call(`${url}/v1/txs/${'0'.repeat(600)}`), 400, 'BAD_REQUEST', 'overlong parameter')
    assertError(await call(`${url}/v1/txs/%zz`), 400, 'BAD_REQUEST', 'bad percent-encoding')
    fake.failNext('status', new CityError('NOT_READY', 'starting'))
    assertError(await call(`${url}/v1/status`), 503, 'NOT_READY')
  })
})

test('unknown routes and methods are 404 NOT_FOUND in the JSON shape', async () => {
  await withServer(async ({ url }) => {
    assertError(await call(`${url}/nope`), 404, 'NOT_FOUND')
    assertError(await call(`${url}/v2/status`), 404, 'NOT_FOUND')
    assertError(await call(`${url}/v1/status`, { method: 'DELETE' }), 404, 'NOT_FOUND')
    assertError(await call(`${url}/v1/txs`), 404, 'NOT_FOUND', 'GET on a POST route')
    assertError(await postJson(url, '/v1/nothing', '{"a":'), 404, 'NOT_FOUND', 'body on an unknown route')
  })
})

test('service queries: args, 404 for unknown service or query, 400 for service codes', async () => {
  await withServer(async ({ fake, url }) => {
    fake.addQuery('token', 'balance', (args) => {
      if (!args.account) throw new CityError('BAD_ARGS', 'account is required')
      if (args.account === 'boom') throw new Error('bug in the query')
      return {
        height: 3,
        value: { account: args.account, amount: 42, raw: new Uint8Array([1, 2]) },
        proof: { root: 'aa'.repeat(32), key: '01', path: [] },
      }
    })
    const r = await call(`${url}/v1/services/token/balance?account=bob`)
    assert.is(r.status, 200)
    assert.equal(r.body, {
      height: 3,
      value: { account: 'bob', amount: 42, raw: '0102' },
      proof: { root: 'aa'.repeat(32), key: '01', path: [] },
    })
    assertError(await call(`${url}/v1/services/token/balance`), 400, 'BAD_ARGS')
    assertError(await call(`${url}/v1/services/nosuch/balance`), 404, 'UNKNOWN_SERVICE')
    assertError(await call(`${url}/v1/services/token/nosuch`), 404, 'UNKNOWN_QUERY')
    assertError(
      await call(`${url}/v1/services/token/balance?account=a&account=b`),
      400,
      'BAD_REQUEST',
      'repeated arg',
    )
    assertError(
      await call(`${url}/v1/services/token/balance?__proto__=x`),
      400,
      'BAD_REQUEST',
      'bad arg name',
    )
    assertError(await call(`${url}/v1/services/Token!/balance`), 400, 'BAD_REQUEST', 'bad service name')
    const many = Array.from({ length: 40 }, (_, i) => `a${i}=1`).join('&')
    assertError(await call(`${url}/v1/services/token/balance?${many}`), 400, 'BAD_REQUEST', 'too many args')
    assertError(await call(`${url}/v1/services/token/balance?account=boom`), 500, 'INTERNAL')
  })
})

test('health is 200 or 503 with reasons; metrics and OpenAPI are served', async () => {
  await withServer(async ({ fake, url }) => {
    assert.equal((await call(`${url}/v1/health`)).body, { ok: true })
    fake.setHealth({ ok: false, reasons: ['no peers'] })
    const h = await call(`${url}/v1/health`)
    assert.is(h.status, 503)
    assert.equal(h.body, { ok: false, reasons: ['no peers'] })

    const m = await fetch(`${url}/metrics`)
    assert.is(m.status, 200)
    assert.match(m.headers.get('content-type') ?? '', /^text\/plain/)
    assert.match(await m.text(), /cityledger_height 0/)

    const o = await call(`${url}/v1/openapi.json`)
    assert.is(o.status, 200)
    assert.is(o.body.openapi, '3.1.0')
    for (const p of [
      '/v1/txs',
      '/v1/txs/json',
      '/v1/txs/batch',
      '/v1/txs/{hash}',
      '/v1/status',
      '/v1/blocks/latest',
      '/v1/blocks/{height}',
      '/v1/blocks/hash/{hash}',
      '/v1/validators',
      '/v1/services/{service}/{query}',
      '/v1/events',
      '/v1/health',
      '/v1/openapi.json',
      '/metrics',
    ]) {
      assert.ok(o.body.paths[p], `OpenAPI documents ${p}`)
    }
    // Generated from the route schemas: the components keep their names, and it is the same each time.
    assert.ok(o.body.components.schemas.Block && o.body.components.schemas.Error)
    assert.equal((await call(`${url}/v1/openapi.json`)).body, o.body)
  })
})

test('rate limit per client: 429 RATE_LIMITED until tokens refill; health and metrics exempt', async () => {
  let now = 0
  await withServer(
    async ({ url }) => {
      assert.is((await call(`${url}/v1/status`)).status, 200)
      assert.is((await call(`${url}/v1/status`)).status, 200)
      const r = await call(`${url}/v1/status`)
      assertError(r, 429, 'RATE_LIMITED')
      assert.is(r.headers.get('retry-after'), '1')
      assert.is((await call(`${url}/v1/health`)).status, 200)
      assert.is((await fetch(`${url}/metrics`)).status, 200)
      now += 500
      assert.is((await call(`${url}/v1/status`)).status, 200, 'one token back after 500 ms')
      assertError(await call(`${url}/v1/status`), 429, 'RATE_LIMITED')
    },
    { now: () => now },
    { rateLimitPerSecond: 2, rateLimitBurst: 2 },
  )
})

test('mapError: the table is the single source of statuses', () => {
  assert.is(mapError(new CityError('UNKNOWN_SERVICE', ''), 'tx').status, 400)
  assert.is(mapError(new CityError('UNKNOWN_SERVICE', ''), 'query').status, 404)
  assert.is(mapError(new CityError('SERVICE_CODE', ''), 'query').status, 400)
  assert.is(mapError(new CityError('SERVICE_CODE', ''), 'read').status, 500)
  assert.is(mapError('a string', 'tx').code, 'INTERNAL')
  assert.is(mapError(null, 'tx').code, 'INTERNAL')
  for (const [code, status] of Object.entries(RPC_ERROR_STATUS)) {
    if (code !== 'INTERNAL' && code !== 'UNKNOWN_SERVICE' && code !== 'UNKNOWN_METHOD')
      assert.is(mapError(new CityError(code, ''), 'query').status, status, code)
  }
})

test.run()
