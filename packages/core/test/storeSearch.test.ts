// ChainStore.searchTxs: every filter and combinations against a model of a seeded chain, paging that
// covers exactly the matches, the keys-read bound, bad input, junk txs, and a store older than the index.
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  ChainStore,
  type CommitInput,
  type KvOp,
  type KvStore,
  SEARCH_LIMITS,
  STORE_PREFIX,
  type TxSearchQuery,
  encode,
  encodeCertificate,
  encodeTxBody,
  generateKeyPair,
  makeBlock,
  merkleRoot,
  openLevelKv,
  openMemoryKv,
  prefixEnd,
  sha256,
  toHex,
  utf8,
} from '@cityledger/core'
import { Rng, testSeed } from '@cityledger/core/testing'
import { tempDir } from './helpers/backends.ts'

const SEED = testSeed(20261201)
const CHAIN = 'search-test'
const at = `(seed ${SEED}; rerun with SEED=${SEED})`

const SERVICES: Record<string, string[]> = {
  token: ['transfer', 'mint', 'burn'],
  names: ['register', 'renew'],
  vote: ['cast'],
}
const EVENTS = [
  ['token', 'transfer'],
  ['token', 'minted'],
  ['names', 'registered'],
  ['vote', 'cast'],
] as const

interface ModelTx {
  hash: string
  height: number
  index: number
  signer: string
  service: string
  method: string
  events: Set<string>
}

/** An envelope the store can index (the store never checks signatures, so a dummy one will do). */
function envelope(signer: Uint8Array, service: string, method: string, nonce: number, rng: Rng): Uint8Array {
  const args = rng.chance(0.5)
    ? { to: toHex(rng.bytes(20)), amount: rng.int(1_000_000), memo: 'x'.repeat(rng.int(300)) }
    : [rng.int(9), [rng.bytes(rng.int(40)), null, true, -rng.int(70000)], { nested: { deep: [1.5] } }]
  const body = encodeTxBody({ chainId: CHAIN, service, method, args, signer, nonce, expiry: 0 })
  return encode([body, new Uint8Array(64)])
}

/** Block `height() + 1` over `txs`, with one result per tx carrying `events`. */
function blockOf(
  store: ChainStore,
  txs: Uint8Array[],
  events: { service: string; name: string }[][],
  failed: boolean[] = [],
): CommitInput {
  const height = store.height() + 1
  const block = makeBlock(
    {
      chainId: CHAIN,
      height,
      view: 0,
      time: 1_700_000_000_000 + height,
      parentHash: store.tipHash(),
      txRoot: merkleRoot(txs.map((t) => sha256(t))),
      prevStateRoot: store.state.root(),
      proposer: sha256(utf8.encode('proposer')),
    },
    txs,
  )
  const certificate = encodeCertificate({
    chainId: CHAIN,
    view: 0,
    height,
    blockHash: block.hash,
    signatures: [{ validator: sha256(utf8.encode('v')), signature: new Uint8Array(64) }],
  })
  const results = txs.map((t, i) => ({
    hash: sha256(t),
    code: failed[i] ? 'BAD_ARGS' : null,
    events: events[i]!.map((e) => ({ ...e, data: { i } })),
  }))
  return { block, certificate, results, stateWrites: new Map() }
}

/** A chain of `blocks` blocks of 0..`maxTxs` random txs, and its model. */
async function seededChain(seed: number, blocks: number, maxTxs: number) {
  const rng = new Rng(seed)
  const signers = Array.from({ length: 6 }, () => generateKeyPair(rng.bytes(32)).publicKey)
  const nonces = new Map<string, number>()
  const store = await ChainStore.open(openMemoryKv())
  await store.initGenesis({ chainId: CHAIN, stateWrites: new Map() })
  const model: ModelTx[] = []
  for (let b = 0; b < blocks; b++) {
    const n = rng.int(maxTxs + 1)
    const txs: Uint8Array[] = []
    const events: { service: string; name: string }[][] = []
    const failed: boolean[] = []
    for (let i = 0; i < n; i++) {
      // Skewed: signer 0 and service token are common, signer 5 is rare.
      const s = rng.chance(0.4) ? 0 : rng.chance(0.1) ? 5 : 1 + rng.int(4)
      const signer = signers[s]!
      const service = rng.chance(0.5) ? 'token' : rng.chance(0.5) ? 'names' : 'vote'
      const methods = SERVICES[service]!
      const method = methods[rng.int(methods.length)]!
      const key = toHex(signer)
      const nonce = (nonces.get(key) ?? 0) + 1
      nonces.set(key, nonce)
      const fail = rng.chance(0.15)
      const evs = fail ? [] : Array.from({ length: rng.int(3) }, () => EVENTS[rng.int(EVENTS.length)]!)
      const tx = envelope(signer, service, method, nonce, rng)
      txs.push(tx)
      failed.push(fail)
      events.push(evs.map(([service, name]) => ({ service, name })))
      model.push({
        hash: toHex(sha256(tx)),
        height: store.height() + 1,
        index: i,
        signer: key,
        service,
        method,
        events: new Set(evs.map(([s, e]) => `${s}.${e}`)),
      })
    }
    await store.commitBlock(blockOf(store, txs, events, failed))
  }
  return { store, model, signers, rng }
}

type Filter = Omit<TxSearchQuery, 'limit' | 'cursor' | 'order'>

function expected(model: ModelTx[], f: Filter, desc: boolean): string[] {
  const hits = model.filter(
    (t) =>
      (f.signer === undefined || t.signer === toHex(f.signer)) &&
      (f.service === undefined || t.service === f.service) &&
      (f.method === undefined || t.method === f.method) &&
      (f.event === undefined || t.events.has(`${f.event.service}.${f.event.name}`)) &&
      t.height >= (f.fromHeight ?? 0) &&
      t.height <= (f.toHeight ?? Number.POSITIVE_INFINITY),
  )
  if (desc) hits.reverse()
  return hits.map((t) => `${t.height}/${t.index}/${t.hash}`)
}

/** Every page of a query; checks the page bounds on the way. */
async function allPages(store: ChainStore, q: TxSearchQuery): Promise<{ hits: string[]; pages: number }> {
  const hits: string[] = []
  let cursor: string | undefined
  let pages = 0
  for (;;) {
    const page = await store.searchTxs({ ...q, ...(cursor ? { cursor } : {}) })
    pages++
    assert.ok(page.txs.length <= (q.limit ?? 20), `page longer than the limit ${at}`)
    for (const t of page.txs) hits.push(`${t.height}/${t.index}/${toHex(t.hash)}`)
    if (page.next === undefined) return { hits, pages }
    assert.ok(pages < 10_000, `paging does not end ${at}`)
    cursor = page.next
  }
}

test(`each filter alone and combined, both orders, paged: exactly the model's matches ${at}`, async () => {
  const { store, model, signers, rng } = await seededChain(SEED, 60, 12)
  try {
    assert.ok(model.length >= 200, `only ${model.length} txs ${at}`)
    const tip = store.height()
    const ev = (i: number) => ({ service: EVENTS[i]![0], name: EVENTS[i]![1] })
    const filters: Filter[] = [
      { signer: signers[0]! },
      { signer: signers[5]! },
      { service: 'token' },
      { service: 'vote' },
      { service: 'token', method: 'mint' },
      { service: 'names', method: 'renew' },
      { event: ev(0) },
      { event: ev(2) },
      { signer: signers[0]!, service: 'token' },
      { signer: signers[2]!, event: ev(0) },
      { service: 'token', method: 'transfer', event: ev(0) },
      { service: 'names', event: ev(0) },
      { signer: signers[1]!, service: 'names', method: 'register', event: ev(2) },
      { signer: signers[5]!, service: 'vote', method: 'cast', event: ev(3) },
      { event: { service: 'token', name: 'never-emitted' } },
    ]
    let nonEmpty = 0
    for (const f of filters) {
      for (const order of ['asc', 'desc'] as const) {
        // Whole chain, and a random height window.
        const from = 1 + rng.int(tip)
        const windows: Filter[] = [{}, { fromHeight: from, toHeight: from + rng.int(tip - from + 1) }]
        for (const w of windows) {
          const q = { ...f, ...w }
          const want = expected(model, q, order === 'desc')
          if (want.length > 0) nonEmpty++
          const limit = 1 + rng.int(30)
          const { hits } = await allPages(store, { ...q, order, limit })
          const label = `${JSON.stringify({ ...q, signer: q.signer && toHex(q.signer).slice(0, 8), order, limit })} ${at}`
          assert.equal(new Set(hits).size, hits.length, `duplicates across pages: ${label}`)
          assert.equal(hits, want, label)
        }
      }
    }
    assert.ok(nonEmpty >= 30, `too few queries had matches to mean anything (${nonEmpty}) ${at}`)
  } finally {
    await store.close()
  }
})

test(`the answer says where the index starts, and a page of the default size is 20 ${at}`, async () => {
  const { store, model } = await seededChain(SEED + 1, 30, 10)
  try {
    const page = await store.searchTxs({ service: 'token' })
    assert.is(page.indexedFrom, 1)
    const want = expected(model, { service: 'token' }, false)
    assert.ok(want.length > 20, `${want.length} token txs ${at}`)
    assert.is(page.txs.length, SEARCH_LIMITS.defaultLimit)
    assert.ok(page.next, 'a cut page says where to go on')
    // Heights past the tip, and a window above it, are empty and final.
    const above = await store.searchTxs({ service: 'token', fromHeight: store.height() + 1 })
    assert.equal(above, { txs: [], indexedFrom: 1 })
    // Cursors past either end of the range: nothing more, and no next.
    for (const order of ['asc', 'desc'] as const) {
      const cursor = order === 'asc' ? `${store.height() + 5}.0` : '0.0'
      assert.equal(await store.searchTxs({ service: 'token', order, cursor }), { txs: [], indexedFrom: 1 })
    }
  } finally {
    await store.close()
  }
})

/** Counts the keys a KvStore hands out (iterate entries and getMany slots). */
function countingKv(kv: KvStore): { kv: KvStore; reads: () => number; reset: () => void } {
  let n = 0
  return {
    reads: () => n,
    reset: () => {
      n = 0
    },
    kv: {
      get: (k) => {
        n++
        return kv.get(k)
      },
      getMany: (keys) => {
        n += keys.length
        return kv.getMany(keys)
      },
      write: (ops, o) => kv.write(ops, o),
      async *iterate(range) {
        for await (const e of kv.iterate(range)) {
          n++
          yield e
        }
      },
      close: () => kv.close(),
    },
  }
}

test(`a query that matches nothing over many txs is bounded per call and ends ${at}`, async () => {
  const rng = new Rng(SEED + 2)
  const counted = countingKv(openMemoryKv())
  const store = await ChainStore.open(counted.kv)
  try {
    await store.initGenesis({ chainId: CHAIN, stateWrites: new Map() })
    const signer = generateKeyPair(rng.bytes(32)).publicKey
    // Dense and disjoint: token txs emit nothing, names txs emit token.transfer.
    let nonce = 0
    for (let b = 0; b < 30; b++) {
      const txs: Uint8Array[] = []
      const events: { service: string; name: string }[][] = []
      for (let i = 0; i < 100; i++) {
        const token = i % 2 === 0
        txs.push(envelope(signer, token ? 'token' : 'names', token ? 'mint' : 'register', ++nonce, rng))
        events.push(token ? [] : [{ service: 'token', name: 'transfer' }])
      }
      await store.commitBlock(blockOf(store, txs, events))
    }
    const q: TxSearchQuery = { service: 'token', event: { service: 'token', name: 'transfer' }, limit: 100 }
    let cursor: string | undefined
    let calls = 0
    do {
      counted.reset()
      const page = await store.searchTxs({ ...q, ...(cursor ? { cursor } : {}) })
      assert.ok(
        counted.reads() <= SEARCH_LIMITS.maxKeysRead,
        `one call read ${counted.reads()} keys, bound ${SEARCH_LIMITS.maxKeysRead} ${at}`,
      )
      assert.is(page.txs.length, 0)
      cursor = page.next
      calls++
    } while (cursor !== undefined && calls < 100)
    assert.is(cursor, undefined, `still going after ${calls} calls ${at}`)
    assert.ok(calls > 1, 'the bound was never reached: the test does not test it')
    // Every signer's tx is found, across pages that each stay in the bound.
    counted.reset()
    const { hits, pages } = await allPages(store, { signer, limit: 100, order: 'desc' })
    assert.is(hits.length, 3000)
    // 30 full pages; a 31st, empty one when the 30th could not tell that the range ended there.
    assert.ok(pages === 30 || pages === 31, `${pages} pages`)
    assert.is(hits[0]!.split('/')[0], '30')
  } finally {
    await store.close()
  }
})

test('bad input is STORE_BAD_INPUT naming the field, and nothing is read', async () => {
  const store = await ChainStore.open(openMemoryKv())
  await store.initGenesis({ chainId: CHAIN, stateWrites: new Map() })
  const cases: [unknown, string][] = [
    [null, 'search'],
    [{}, 'search'],
    [{ order: 'desc' }, 'search'],
    [{ signer: new Uint8Array(31) }, 'signer'],
    [{ signer: 'ab'.repeat(32) }, 'signer'],
    [{ service: 'Token' }, 'service'],
    [{ service: 7 }, 'service'],
    [{ method: 'transfer' }, 'method'],
    [{ service: 'token', method: 'trans fer' }, 'method'],
    [{ event: 'token.transfer' }, 'event'],
    [{ event: { service: 'token' } }, 'event.name'],
    [{ event: { service: '', name: 'x' } }, 'event.service'],
    [{ event: { service: 'token', name: 'é'.repeat(65) } }, 'event.name'],
    [{ service: 'token', fromHeight: -1 }, 'fromHeight'],
    [{ service: 'token', fromHeight: 1.5 }, 'fromHeight'],
    [{ service: 'token', toHeight: '9' }, 'toHeight'],
    [{ service: 'token', fromHeight: 5, toHeight: 4 }, 'toHeight'],
    [{ service: 'token', order: 'up' }, 'order'],
    [{ service: 'token', limit: 0 }, 'limit'],
    [{ service: 'token', limit: 101 }, 'limit'],
    [{ service: 'token', limit: 2.5 }, 'limit'],
    [{ service: 'token', cursor: 'abc' }, 'cursor'],
    [{ service: 'token', cursor: '1.99999999999' }, 'cursor'],
    [{ service: 'token', cursor: 12 }, 'cursor'],
  ]
  for (const [q, field] of cases) {
    try {
      await store.searchTxs(q as TxSearchQuery)
      assert.unreachable(`accepted ${JSON.stringify(q)}`)
    } catch (err) {
      const e = err as { code?: string; details?: { field?: string }; message: string }
      assert.is(e.code, 'STORE_BAD_INPUT', `${JSON.stringify(q)}: ${e.message}`)
      assert.is(e.details?.field, field, `${JSON.stringify(q)}: ${e.message}`)
    }
  }
  await store.close()
  try {
    await store.searchTxs({ service: 'token' })
    assert.unreachable('searched a closed store')
  } catch (err) {
    assert.is((err as { code?: string }).code, 'STORE_CLOSED')
  }
})

test(`txs that are not envelopes, and mangled envelopes, commit and are found by their events only ${at}`, async () => {
  const rng = new Rng(SEED + 3)
  const store = await ChainStore.open(openMemoryKv())
  try {
    await store.initGenesis({ chainId: CHAIN, stateWrites: new Map() })
    const signer = generateKeyPair(rng.bytes(32)).publicKey
    const good = envelope(signer, 'token', 'mint', 1, rng)
    const txs = [good, encode(['junk', 1]), good.subarray(0, 40), Uint8Array.of(0x92, 0xc4, 0xff)]
    for (let i = 0; i < 300; i++) {
      // Random byte flips and cuts of a valid envelope: the index reader must never throw on them.
      const t = Uint8Array.from(good.subarray(0, rng.range(1, good.length)))
      for (let f = rng.int(4); f > 0; f--) t[rng.int(t.length)] = rng.int(256)
      txs.push(t)
    }
    const unique = [...new Map(txs.map((t) => [toHex(t), t])).values()]
    const events = unique.map(() => [{ service: 'vote', name: 'cast' }])
    await store.commitBlock(blockOf(store, unique, events))
    const byEvent = await allPages(store, { event: { service: 'vote', name: 'cast' }, limit: 100 })
    assert.is(byEvent.hits.length, unique.length)
    const bySigner = await allPages(store, { signer, limit: 100 })
    assert.ok(bySigner.hits.includes(`1/0/${toHex(sha256(good))}`), `the intact envelope is indexed ${at}`)
  } finally {
    await store.close()
  }
})

test('a store written before the index: searched from the first block it commits after the upgrade', async () => {
  const dir = tempDir('search-old')
  const db = join(dir, 'db')
  const rng = new Rng(SEED + 4)
  const signer = generateKeyPair(rng.bytes(32)).publicKey
  const block = (store: ChainStore, nonce: number) =>
    blockOf(store, [envelope(signer, 'token', 'mint', nonce, rng)], [[{ service: 'token', name: 'minted' }]])
  try {
    let store = await ChainStore.open(await openLevelKv(db))
    await store.initGenesis({ chainId: CHAIN, stateWrites: new Map() })
    for (let n = 1; n <= 3; n++) await store.commitBlock(block(store, n))
    await store.close()
    // What the code before the index left on disk: no X namespace and no searchFrom.
    const kv = await openLevelKv(db)
    const ops: KvOp[] = [{ type: 'del', key: Uint8Array.of(STORE_PREFIX.meta, ...utf8.encode('searchFrom')) }]
    const x = Uint8Array.of(STORE_PREFIX.search)
    for await (const [k] of kv.iterate({ gte: x, lt: prefixEnd(x)! })) ops.push({ type: 'del', key: k })
    assert.is(ops.length, 1 + 3 * 4, 'three txs of four keys each were indexed')
    await kv.write(ops, { sync: true })
    await kv.close()

    store = await ChainStore.open(await openLevelKv(db))
    assert.equal(await store.searchTxs({ signer }), { txs: [], indexedFrom: 4 })
    await store.commitBlock(block(store, 4))
    await store.commitBlock(block(store, 5))
    const page = await store.searchTxs({ signer, fromHeight: 1 })
    assert.is(page.indexedFrom, 4)
    assert.equal(
      page.txs.map((t) => t.height),
      [4, 5],
    )
    await store.close()
    // The start height is stored, not recomputed at open.
    store = await ChainStore.open(await openLevelKv(db))
    const again = await store.searchTxs({ event: { service: 'token', name: 'minted' }, order: 'desc' })
    assert.equal(
      again.txs.map((t) => t.height),
      [5, 4],
    )
    assert.is(again.indexedFrom, 4)
    await store.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a damaged searchFrom is STORE_CORRUPT at open', async () => {
  const dir = tempDir('search-meta')
  const db = join(dir, 'db')
  const key = Uint8Array.of(STORE_PREFIX.meta, ...utf8.encode('searchFrom'))
  try {
    const store = await ChainStore.open(await openLevelKv(db))
    await store.initGenesis({ chainId: CHAIN, stateWrites: new Map() })
    await store.close()
    for (const [value, why] of [
      [Uint8Array.of(1), '1 bytes instead of 8'],
      [new Uint8Array(8), 'not a height from 1 to 1'],
      [Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 2), 'not a height from 1 to 1'],
    ] as const) {
      const kv = await openLevelKv(db)
      await kv.write([{ type: 'put', key, value }], { sync: true })
      try {
        await ChainStore.open(kv)
        assert.unreachable(`opened with searchFrom ${toHex(value)}`)
      } catch (err) {
        const e = err as { code?: string; message: string }
        assert.is(e.code, 'STORE_CORRUPT', e.message)
        assert.ok(e.message.includes('metadata searchFrom') && e.message.includes(why), e.message)
      } finally {
        await kv.close()
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
