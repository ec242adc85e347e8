// Verified queries across validator-set changes: GET /v1/validators/history, client.validatorHistory and
// queryVerified with checkpointInterval, over a chain whose set changed twice (changedSetChain.ts). The
// RPC server is real; its backend answers blocks, a proven query and the history from that chain's store
// (the history through the node's NodeRpcBackend). Before, queryVerified checked every certificate
// against the genesis set and refused an anchor of epoch 2 with WRONG_CHAIN. Deterministic: no clock.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  type KvStore,
  decodeCertificate,
  encode,
  encodeStateProof,
  openMemoryKv,
  toHex,
  utf8,
} from '@cityledger/core'
import { createClient } from '../src/client/index.ts'
import { type BackendOptions, NodeRpcBackend } from '../src/node/backend.ts'
import { decodeHistoryEntry, encodeHistoryEntry } from '../src/node/validatorHistory.ts'
import { blockView } from '../src/node/views.ts'
import { createFakeBackend } from '../src/rpc/fakeBackend.ts'
import { type RpcBackend, createRpcServer } from '../src/rpc/index.ts'
import { A, C, K, certify, changedSetChain, pub } from './changedSetChain.ts'
import { call } from './rpcHarness.ts'

const chainId = 'history-client'
const keep = (kv: KvStore): KvStore => ({ ...kv, close: async () => {} })
/** The answer's state: after block 20, in epoch 2 (set C from 17); block 21 anchors it. */
const AT = 20

type History = RpcBackend['validatorHistory']

async function chainBackend(edit?: (honest: History) => History) {
  const { store, history } = await changedSetChain(keep(openMemoryKv()), { chainId, blocks: 24 })
  // NodeRpcBackend.validatorHistory reads only `history`.
  const node = new NodeRpcBackend({ history: history.kv } as unknown as BackendOptions)
  const honest: History = (from, limit, maxBytes) => node.validatorHistory(from, limit, maxBytes)
  const backend: RpcBackend = {
    ...createFakeBackend({ chainId }),
    async block(height) {
      const h = height === 'latest' ? store.height() : height
      const block = await store.getBlock(h)
      return block ? blockView(block, await store.getCertificate(h)) : undefined
    },
    async query() {
      const key = utf8.encode(`k/${AT}`)
      const p = await store.state.prove(key, AT)
      const entry = { key: toHex(key), value: toHex(p.value!), proof: toHex(encodeStateProof(p.proof)) }
      return {
        height: AT,
        value: `h${AT}`,
        proof: { root: toHex(p.root), height: AT, key: entry.key, entries: [entry] },
      }
    },
    validatorHistory: edit ? edit(honest) : honest,
  }
  return { backend, honest }
}

async function serve<T>(backend: RpcBackend, fn: (url: string) => Promise<T>): Promise<T> {
  const server = createRpcServer({
    backend,
    limits: { maxBodyBytes: 4096, maxWaitMs: 1000 },
    host: '127.0.0.1',
    port: 0,
  })
  const { url } = await server.start()
  try {
    return await fn(url)
  } finally {
    await server.stop()
  }
}

/** A fetch that records the `from` of every history request. */
function countingFetch(froms: string[]): typeof fetch {
  return (input, init) => {
    const m = /\/v1\/validators\/history\?from=(\d+)/.exec(String(input))
    if (m) froms.push(m[1]!)
    return fetch(input, init)
  }
}

const verified = { chainId, validators: pub(A), timeoutMs: 1000 }
const outcome = (p: Promise<unknown>) =>
  p.then(
    () => 'accepted',
    (err) => `${err.code}: ${err.message}`,
  )

test('queryVerified with checkpointInterval accepts an anchor of epoch 2 (walked history, cached); without it, WRONG_CHAIN', async () => {
  const { backend } = await chainBackend()
  await serve(backend, async (url) => {
    const froms: string[] = []
    const client = createClient({ url, fetch: countingFetch(froms) })
    const ask = (o: object = {}) => client.queryVerified('kv', 'get', {}, { ...verified, ...o })
    // The genesis set alone: what every call did before.
    const before = await outcome(ask())
    assert.match(before, /^BAD_PROOF: certificate of block 21: WRONG_CHAIN/, before)
    assert.equal(froms, [])
    const v = await ask({ checkpointInterval: K })
    assert.is(v.height, AT)
    assert.is(v.value, `h${AT}`)
    assert.equal(
      v.anchor.signers,
      pub(C)
        .slice(0, 3)
        .map((k) => toHex(k)),
    )
    assert.equal(froms, ['1', '3'], 'two entries, then the empty answer that ends the walk')
    // The second call extends the cached walk from its last change: one request.
    await ask({ checkpointInterval: K })
    assert.equal(froms, ['1', '3', '3'])
    // Another genesis (K) is another walk, from change 1; its schedule does not fit this chain.
    const otherK = await outcome(ask({ checkpointInterval: 16 }))
    assert.match(
      otherK,
      /^BAD_PROOF: validator history from 1: .*entry 2: certificate of block \d+: WRONG_CHAIN/,
      otherK,
    )
  })
})

test('queryVerified refuses an anchor when the history is forged, tampered or withheld', async () => {
  const cases: [string, (honest: History) => History, RegExp][] = [
    [
      'tampered record (names set C for change 1)',
      (honest) => async (from, l, b) => {
        const list = await honest(from, l, b)
        if (from !== 1) return list
        const e = decodeHistoryEntry(list[0]!)
        e.value = encode({ height: 6, executedAt: 5, keys: pub(C) })
        return [encodeHistoryEntry(e), ...list.slice(1)]
      },
      /^BAD_PROOF: validator history from 1: .*entry 1: the proof does not show the record/,
    ],
    [
      'forged certificate (block signed by set C)',
      (honest) => async (from, l, b) => {
        const list = await honest(from, l, b)
        if (from !== 1) return list
        const e = decodeHistoryEntry(list[0]!)
        const c = decodeCertificate(e.certificate)
        e.certificate = certify(chainId, c.height, c.blockHash, pub(C), 0)
        return [encodeHistoryEntry(e), ...list.slice(1)]
      },
      /^BAD_PROOF: validator history from 1: .*entry 1: certificate of block \d+: UNKNOWN_VALIDATOR/,
    ],
    ['withheld (no entries)', () => async () => [], /^BAD_PROOF: certificate of block 21: WRONG_CHAIN/],
    [
      'withheld (change 2 hidden)',
      (honest) => async (from, l, b) =>
        (await honest(from, l, b)).filter((e) => decodeHistoryEntry(e).seq < 2),
      /^BAD_PROOF: certificate of block 21: WRONG_CHAIN/,
    ],
    [
      'entries out of order (change 2 first)',
      (honest) => async (from, l, b) => (from === 1 ? (await honest(from, l, b)).reverse() : []),
      /^BAD_PROOF: validator history from 1: .*out of order/,
    ],
  ]
  for (const [name, edit, expected] of cases) {
    const { backend } = await chainBackend(edit)
    const got = await serve(backend, (url) =>
      outcome(createClient({ url }).queryVerified('kv', 'get', {}, { ...verified, checkpointInterval: K })),
    )
    assert.match(got, expected, `${name}: ${got}`)
  }
})

test('GET /v1/validators/history: pages of at most 64 entries, bounded bytes, from defaults to 1, bad from is 400', async () => {
  const backend = createFakeBackend({ chainId })
  const small = Array.from({ length: 70 }, (_, i) => utf8.encode(`entry-${i + 1}`))
  backend.setValidatorHistory(small)
  await serve(backend, async (url) => {
    const page = async (qs: string) => call(`${url}/v1/validators/history${qs}`)
    const first = await page('')
    assert.is(first.status, 200)
    const entries = (first.body as { entries: string[] }).entries
    assert.is(entries.length, 64)
    assert.is(entries[0], toHex(small[0]!))
    assert.is(((await page('?from=65')).body as { entries: string[] }).entries.length, 6)
    assert.equal((await page('?from=71')).body, { entries: [] })
    for (const qs of ['?from=0', '?from=x', '?from=-1', '?from=1&to=2']) {
      const r = await page(qs)
      assert.is(r.status, 400, qs)
      assert.is((r.body as { error: { code: string } }).error.code, 'BAD_REQUEST', qs)
    }
    const client = createClient({ url })
    assert.equal(await client.validatorHistory(65), small.slice(64))
    assert.equal(await client.validatorHistory(71), [])
    // Entries of 1 MiB: an answer stops before passing 4 MiB (the first always goes).
    backend.setValidatorHistory(Array.from({ length: 6 }, () => new Uint8Array(1024 * 1024)))
    assert.is((await client.validatorHistory()).length, 4)
  })
})

test('the node backend serves the stored history in order, from any change', async () => {
  const { honest } = await chainBackend()
  const all = await honest(1, 64, 1 << 20)
  assert.equal(
    all.map((e) => decodeHistoryEntry(e).seq),
    [1, 2],
  )
  assert.equal(await honest(2, 64, 1 << 20), [all[1]!])
  assert.equal(await honest(3, 64, 1 << 20), [])
  assert.equal(await honest(1, 1, 1 << 20), [all[0]!])
})

test.run()
