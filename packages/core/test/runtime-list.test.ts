import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  type StatePage,
  StateTree,
  type Value,
  createRuntime,
  defineService,
  encodeTxBody,
  encode,
  openMemoryKv,
  s,
  sha256,
  utf8,
} from '@cityledger/core'
import { Rng, createTestChain, testSeed } from '@cityledger/core/testing'

// Ordered prefix iteration over a service's own namespace: key order, pages, this block's writes and
// deletes, metered, and the same answers over the test chain's reader and the node's state tree.

const lister = defineService({
  name: 'lister',
  version: '1.0.0',
  methods: {
    put: {
      args: s.object({ keys: s.array(s.string({ max: 32 }), { max: 64 }) }),
      handler(ctx, { keys }) {
        for (const k of keys) ctx.state.set(k, k.length)
      },
    },
    del: {
      args: s.object({ keys: s.array(s.string({ max: 32 }), { max: 64 }) }),
      handler(ctx, { keys }) {
        for (const k of keys) ctx.state.delete(k)
      },
    },
    // Lists `prefix` page by page and emits every key seen, in order.
    scan: {
      args: s.object({ prefix: s.string({ max: 32 }), limit: s.uint({ min: 1, max: 1000 }) }),
      handler(ctx, { prefix, limit }) {
        const seen: string[] = []
        let page: StatePage = ctx.state.list(prefix, { limit })
        for (;;) {
          for (const e of page.entries) seen.push(e.key)
          if (page.next === undefined) break
          page = ctx.state.list(prefix, { limit, after: page.next })
        }
        ctx.emit('seen', seen)
      },
    },
  },
  queries: {
    first: {
      args: s.object({ prefix: s.string({ max: 32 }) }),
      handler: (q, { prefix }) => q.state.list(prefix, { limit: 2 }).entries.map((e) => e.key),
    },
  },
})

const seen = (r: { code: string | null; events: { data: Value }[] }) => {
  assert.is(r.code, null)
  return r.events[0]!.data as string[]
}

test('keys come in byte order, page by page, with this block’s writes and without its deletes', () => {
  const c = createTestChain({ services: [lister] })
  const k = c.keys('a')
  c.tx(k, 'lister', 'put', { keys: ['a/3', 'a/1', 'b/1', 'a/2', 'a/10', 'ab'] })
  const r = c.block([
    { key: k, service: 'lister', method: 'put', args: { keys: ['a/0', 'a/25'] } },
    { key: k, service: 'lister', method: 'del', args: { keys: ['a/2'] } },
    { key: k, service: 'lister', method: 'scan', args: { prefix: 'a/', limit: 2 } },
  ])
  assert.equal(seen(r[2]!), ['a/0', 'a/1', 'a/10', 'a/25', 'a/3'])
  assert.equal(c.query('lister', 'first', { prefix: 'a' }), ['a/0', 'a/1'])
})

test('a page larger than 256 is refused; every entry listed counts against the read limit', () => {
  const c = createTestChain({ services: [lister], onBug: () => {} })
  const k = c.keys('a')
  assert.is(c.tx(k, 'lister', 'scan', { prefix: '', limit: 257 }).code, 'INTERNAL')
  const small = createRuntime({ services: [lister], limits: { maxReads: 10 } })
  const keys = Array.from({ length: 12 }, (_, i) => `k/${String(i).padStart(2, '0')}`)
  const store = new Map<string, Uint8Array>()
  for (const key of keys) store.set(Buffer.from(`lister/${key}`).toString('hex'), encode(1))
  const reader = {
    get: (key: Uint8Array) => store.get(Buffer.from(key).toString('hex')),
    range: (p: Uint8Array, after: Uint8Array | undefined, limit: number) => {
      const ph = Buffer.from(p).toString('hex')
      const ah = after ? Buffer.from(after).toString('hex') : undefined
      return [...store.keys()]
        .filter((x) => x.startsWith(ph) && (ah === undefined || x > ah))
        .sort()
        .slice(0, limit)
        .map((x) => [Uint8Array.from(Buffer.from(x, 'hex')), store.get(x)!] as [Uint8Array, Uint8Array])
    },
  }
  const signer = new Uint8Array(32).fill(1)
  const body = {
    chainId: 'c',
    service: 'lister',
    method: 'scan',
    args: { prefix: 'k/', limit: 100 },
    signer,
    nonce: 1,
    expiry: 0,
  }
  const bodyBytes = encodeTxBody(body)
  const bytes = encode([bodyBytes, new Uint8Array(64)])
  const out = small.executeBlock(reader, {
    height: 1,
    time: 1,
    txs: [{ body, bodyBytes, signature: new Uint8Array(64), bytes, hash: sha256(bytes) }],
  })
  assert.is(out.results[0]!.code, 'RESOURCE_LIMIT')
})

test('the state tree lists the same entries as a sorted map, after random writes and deletes', async () => {
  const seed = testSeed(1207)
  const rng = new Rng(seed)
  const tree = await StateTree.open(openMemoryKv())
  const model = new Map<string, Uint8Array>()
  const hex = (t: string) => Buffer.from(t).toString('hex')
  for (let round = 0; round < 30; round++) {
    const writes = new Map<string, Uint8Array | null>()
    for (let i = 0; i < 20; i++) {
      const key = `p${rng.range(0, 2)}/${rng.range(0, 40)}`
      const del = rng.range(0, 3) === 0
      writes.set(hex(key), del ? null : utf8.encode(`${round}`))
    }
    for (const [k, v] of writes) {
      if (v === null) model.delete(k)
      else model.set(k, v)
    }
    await tree.apply(writes)
    // The index is built on first use (round 3) and kept in step afterwards.
    if (round < 3) continue
    for (const prefix of ['p1/', 'p', '', 'p2/1']) {
      const after = rng.range(0, 1) === 0 ? undefined : `p1/${rng.range(0, 40)}`
      const limit = rng.range(1, 50)
      const want = [...model.keys()]
        .filter((k) => k.startsWith(hex(prefix)) && (after === undefined || k > hex(after)))
        .sort()
        .slice(0, limit)
      const got = tree
        .range(utf8.encode(prefix), after === undefined ? undefined : utf8.encode(after), limit)
        .map(([k, v]) => [Buffer.from(k).toString('hex'), utf8.decode(v)])
      assert.equal(
        got,
        want.map((k) => [k, utf8.decode(model.get(k)!)]),
        `seed ${seed}, round ${round}, prefix ${prefix}, after ${after}, limit ${limit}`,
      )
    }
  }
})

test.run()
