// POST /v1/txs/batch (issue #14): one result per envelope in request order, each the answer a single
// submit gives; one bad envelope never fails the others; a request that is not a batch, or too many or
// too large, is refused as a whole before anything is admitted.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { encode, toHex } from '@cityledger/core'
import { call, postBytes, postJson, signed, withServer } from './rpcHarness.ts'

const hexOf = (bytes: Uint8Array) => toHex(bytes)

function postBatchJson(url: string, body: unknown) {
  return postJson(url, '/v1/txs/batch', typeof body === 'string' ? body : JSON.stringify(body))
}

function postBatchBytes(url: string, bytes: Uint8Array, query = '') {
  return call(`${url}/v1/txs/batch${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: bytes as Uint8Array<ArrayBuffer>,
  })
}

test('results come back in request order, and the envelopes are admitted in that order', async () => {
  await withServer(async ({ fake, url }) => {
    const [t1, t2, t3] = [1, 2, 3].map((nonce) => signed({ nonce }))
    // The fake backend refuses a nonce at or below the last one it admitted: 3 before 2 refuses 2.
    const r = await postBatchJson(
      url,
      [t1!, t3!, t2!].map((t) => hexOf(t.bytes)),
    )
    assert.is(r.status, 200)
    assert.equal(r.body.results[0], { hash: toHex(t1!.hash) })
    assert.equal(r.body.results[1], { hash: toHex(t3!.hash) })
    assert.is(r.body.results[2].error.code, 'NONCE_TOO_LOW')
    assert.equal(
      fake.pending().map((t) => t.body.nonce),
      [1, 3],
    )
  })
})

test('mixed good and bad envelopes: each gets what a single submit gives, the good ones are admitted', async () => {
  // What single submits answer, on a fresh server, for the reference.
  const bad = {
    wrongChain: signed({ chainId: 'other-chain', nonce: 5 }).bytes,
    garbage: new Uint8Array([0xc1, 0x00, 0x01]),
  }
  const single: Record<string, { code: string; message: string }> = {}
  await withServer(async ({ url }) => {
    for (const [k, bytes] of Object.entries(bad)) {
      const r = await postBytes(url, bytes)
      assert.is(r.status, 400, k)
      single[k] = r.body.error
    }
  })
  await withServer(async ({ fake, url }) => {
    const good1 = signed({ nonce: 1 })
    const good2 = signed({ nonce: 2 })
    const list = [good1.bytes, bad.wrongChain, bad.garbage, good2.bytes, good1.bytes]
    const r = await postBatchBytes(url, encode(list))
    assert.is(r.status, 200)
    const res = r.body.results
    assert.is(res.length, 5)
    assert.equal(res[0], { hash: toHex(good1.hash) })
    assert.equal(res[1], { error: single.wrongChain })
    assert.equal(res[2], { error: single.garbage })
    assert.equal(res[3], { hash: toHex(good2.hash) })
    assert.is(res[4].error.code, 'DUPLICATE_TX', 'the same envelope twice: the second is a duplicate')
    assert.is(fake.pending().length, 2)

    // JSON form: an element that is not hex is that element's error, as in /v1/txs/json.
    const j = await postBatchJson(url, [hexOf(signed({ nonce: 3 }).bytes), 'zz', 7, ''])
    assert.is(j.status, 200)
    assert.ok(j.body.results[0].hash)
    assert.is(j.body.results[1].error.code, 'BAD_HEX')
    assert.is(j.body.results[2].error.code, 'BAD_HEX')
    assert.is(j.body.results[3].error.code, 'BAD_REQUEST')
    assert.is(fake.pending().length, 3)
  })
})

test('a request that is not a batch is 400 and admits nothing', async () => {
  await withServer(async ({ fake, url }) => {
    const tx = hexOf(signed({ nonce: 1 }).bytes)
    // Thunks, run one after another: an early failure must not leave requests in flight at stop.
    const cases: [string, () => Promise<{ status: number; body: any }>, RegExp][] = [
      ['object', () => postBatchJson(url, { envelopes: [tx] }), /JSON array/],
      ['string', () => postBatchJson(url, JSON.stringify(tx)), /JSON array/],
      ['empty array', () => postBatchJson(url, []), /at least one/],
      ['bad JSON', () => postBatchJson(url, `["${tx}"`), /malformed JSON/],
      ['binary, not msgpack', () => postBatchBytes(url, new Uint8Array([0xc1])), /canonical encoding/],
      ['binary, a map', () => postBatchBytes(url, encode({ txs: [signed({ nonce: 1 }).bytes] })), /array/],
      ['binary, empty array', () => postBatchBytes(url, encode([])), /at least one/],
      ['binary, empty body', () => postBatchBytes(url, new Uint8Array(0)), /empty body/],
      [
        'wait=commit',
        () => postBatchBytes(url, encode([signed({ nonce: 1 }).bytes]), '?wait=commit'),
        /wait/,
      ],
    ]
    for (const [name, run, message] of cases) {
      const r = await run()
      assert.is(r.status, 400, name)
      const code = name === 'bad JSON' ? 'BAD_JSON' : 'BAD_REQUEST'
      assert.is(r.body.error.code, code, name)
      assert.match(r.body.error.message, message, name)
    }
    const text = await call(`${url}/v1/txs/batch`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: tx,
    })
    assert.is(text.status, 415)
    assert.is(fake.pending().length, 0)
  })
})

test('bounds: more envelopes or more bytes than the limits is 413 TOO_LARGE, nothing admitted', async () => {
  await withServer(
    async ({ fake, url }) => {
      const txs = [1, 2, 3, 4].map((nonce) => signed({ nonce }).bytes)
      const many = await postBatchJson(url, txs.map(hexOf))
      assert.is(many.status, 413)
      assert.is(many.body.error.code, 'TOO_LARGE')
      assert.match(many.body.error.message, /4 envelopes, limit 3/)
      const manyBin = await postBatchBytes(url, encode(txs))
      assert.is(manyBin.status, 413)
      assert.match(manyBin.body.error.message, /limit 3/)

      // A binary body over the 2048-byte limit (the JSON limit is larger, so the handler says it).
      const big = encode([txs[0]!, txs[1]!, new Uint8Array(2100)])
      assert.ok(big.length > 2048)
      const bigBin = await postBatchBytes(url, big)
      assert.is(bigBin.status, 413)
      assert.is(bigBin.body.error.code, 'TOO_LARGE')
      assert.match(bigBin.body.error.message, /limit 2048/)
      // Far over even the JSON limit: refused while reading the body.
      const huge = await postBatchJson(url, ['00'.repeat(6000)])
      assert.is(huge.status, 413)
      assert.is(huge.body.error.code, 'TOO_LARGE')
      assert.match(huge.body.error.message, /larger than the limit \(2048 bytes binary/)

      // One envelope over the per-tx limit fails alone.
      const one = await postBatchBytes(url, encode([txs[0]!, new Uint8Array(300)]))
      assert.is(one.status, 200)
      assert.ok(one.body.results[0].hash)
      assert.is(one.body.results[1].error.code, 'TX_TOO_LARGE')
      assert.is(fake.pending().length, 1, 'only the accepted one of the last batch')

      const ok = await postBatchJson(url, txs.slice(1, 4).map(hexOf))
      assert.is(ok.status, 200)
      assert.is(ok.body.results.filter((x: { hash?: string }) => x.hash).length, 3)
    },
    {},
    { maxBatchTxs: 3, maxBatchBytes: 2048, maxBodyBytes: 256 },
  )
})

test('not ready: 503 for the whole batch, nothing admitted', async () => {
  await withServer(async ({ fake, url }) => {
    fake.setReady(false)
    const r = await postBatchBytes(url, encode([signed({ nonce: 1 }).bytes]))
    assert.is(r.status, 503)
    assert.is(r.body.error.code, 'NOT_READY')
    assert.is(fake.pending().length, 0)
  })
})

test('limits are checked when the server is built', async () => {
  const { createRpcServer } = await import('../src/rpc/index.ts')
  const { createFakeBackend } = await import('../src/rpc/fakeBackend.ts')
  for (const bad of [{ maxBatchTxs: 0 }, { maxBatchBytes: 0 }, { maxBatchTxs: 1.5 }])
    assert.throws(
      () =>
        createRpcServer({
          backend: createFakeBackend({ chainId: 'c' }),
          limits: { maxBodyBytes: 4096, maxWaitMs: 0, ...bad },
          host: '127.0.0.1',
          port: 0,
        }),
      /maxBatch/,
    )
})

test.run()
