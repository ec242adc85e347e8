import { hash } from 'node:crypto'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  CodecError,
  DOMAIN,
  type KvStore,
  STORE_PREFIX,
  type StateProof,
  StateTree,
  decodeStateProof,
  encode,
  encodeStateProof,
  isCityError,
  openMemoryKv,
  sha256,
  taggedHash,
  toHex,
  verifyStateProof,
} from '@cityledger/core'
import { Rng, testSeed } from '@cityledger/core/testing'

const SEED = testSeed(20261124)
const ZERO = new Uint8Array(32)

// Reference root straight from the definition (core's taggedHash over Uint8Arrays), sharing no code
// with the tree: empty = zero, one entry = its leaf hash, otherwise node(left half, right half).
function refRoot(model: ReadonlyMap<string, Uint8Array>): Uint8Array {
  const items = [...model].map(([k, v]) => {
    const path = sha256(Buffer.from(k, 'hex'))
    return { path, leaf: taggedHash(DOMAIN.stateLeaf, path, sha256(v)) }
  })
  const bit = (p: Uint8Array, d: number) => (p[d >> 3]! >> (7 - (d & 7))) & 1
  const rec = (xs: typeof items, d: number): Uint8Array => {
    if (xs.length === 0) return ZERO
    if (xs.length === 1) return xs[0]!.leaf
    return taggedHash(
      DOMAIN.stateNode,
      rec(
        xs.filter((x) => bit(x.path, d) === 0),
        d + 1,
      ),
      rec(
        xs.filter((x) => bit(x.path, d) === 1),
        d + 1,
      ),
    )
  }
  return rec(items, 0)
}

const hex = toHex
const keyOf = (hexKey: string) => Uint8Array.from(Buffer.from(hexKey, 'hex'))

function codeOf(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    if (isCityError(err)) return err.code
    throw err
  }
  return 'OK'
}

async function codeOfAsync(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn()
  } catch (err) {
    if (isCityError(err)) return err.code
    throw err
  }
  return 'OK'
}

function tamperings(proof: StateProof, rng: Rng): StateProof[] {
  const out: StateProof[] = []
  const copy = (): StateProof => ({
    siblings: proof.siblings.map((s) => Uint8Array.from(s)),
    leaf: proof.leaf && {
      path: Uint8Array.from(proof.leaf.path),
      valueHash: Uint8Array.from(proof.leaf.valueHash),
    },
  })
  if (proof.siblings.length > 0) {
    const p = copy()
    p.siblings[rng.int(p.siblings.length)]![rng.int(32)]! ^= 1 << rng.int(8)
    out.push(p)
    const q = copy()
    q.siblings.pop()
    out.push(q)
    const r = copy()
    r.siblings.splice(rng.int(r.siblings.length), 1)
    out.push(r)
  }
  const more = copy()
  more.siblings.push(rng.bytes(32))
  out.push(more)
  const zeroFirst = copy()
  zeroFirst.siblings.unshift(new Uint8Array(32))
  out.push(zeroFirst)
  if (proof.leaf) {
    const p = copy()
    p.leaf!.valueHash[rng.int(32)]! ^= 1
    out.push(p)
    const q = copy()
    q.leaf = null
    out.push(q)
  } else {
    const p = copy()
    p.leaf = { path: rng.bytes(32), valueHash: rng.bytes(32) }
    out.push(p)
  }
  return out
}

function randomBatch(
  rng: Rng,
  pool: string[],
  model: Map<string, Uint8Array>,
): Map<string, Uint8Array | null> {
  const w = new Map<string, Uint8Array | null>()
  const n = rng.range(1, 40)
  for (let i = 0; i < n; i++) {
    const key = rng.chance(0.15) ? hex(rng.bytes(rng.range(0, 40))) : rng.pick(pool)
    const del = model.has(key) ? rng.chance(0.35) : rng.chance(0.05)
    w.set(key, del ? null : rng.bytes(rng.int(60)))
  }
  return w
}

function applyModel(model: Map<string, Uint8Array>, w: ReadonlyMap<string, Uint8Array | null>): void {
  for (const [k, v] of w) {
    if (v === null) model.delete(k)
    else model.set(k, Uint8Array.from(v))
  }
}

test('empty state: root is 32 zero bytes and every key proves absent', async () => {
  const tree = await StateTree.open(openMemoryKv())
  assert.equal(tree.version, -1)
  assert.equal(hex(tree.root()), hex(ZERO))
  const key = new Uint8Array([1, 2, 3])
  const { proof, value } = tree.proveLatest(key)
  assert.is(value, undefined)
  assert.ok(verifyStateProof(ZERO, key, undefined, proof))
  assert.not.ok(verifyStateProof(ZERO, key, new Uint8Array(0), proof))
  const root = await tree.apply(new Map())
  assert.equal(hex(root), hex(ZERO), 'an empty first version still has the zero root')
  assert.equal(tree.version, 0)
})

test('one entry: root is its leaf hash; deleting it gives the zero root back', async () => {
  const tree = await StateTree.open(openMemoryKv())
  const key = new Uint8Array([7])
  const value = new Uint8Array([1, 2])
  const root = await tree.apply(new Map([[hex(key), value]]))
  assert.equal(hex(root), hex(taggedHash(DOMAIN.stateLeaf, sha256(key), sha256(value))))
  const { proof } = tree.proveLatest(key)
  assert.equal(proof.siblings.length, 0)
  assert.ok(verifyStateProof(root, key, value, proof))
  assert.equal(hex(await tree.apply(new Map([[hex(key), null]]))), hex(ZERO))
  // The old single-leaf root is still provable from storage.
  const old = await tree.prove(key, 0)
  assert.equal(hex(old.value!), hex(value))
  assert.ok(verifyStateProof(root, key, value, old.proof))
})

test(`random batches match a Map model, a from-scratch root and the reference definition (seed ${SEED})`, async () => {
  const rng = new Rng(SEED)
  const kv = openMemoryKv()
  const tree = await StateTree.open(kv)
  const pool = Array.from({ length: 120 }, () => hex(rng.bytes(rng.range(1, 24))))
  const model = new Map<string, Uint8Array>()
  const history: { root: Uint8Array; model: Map<string, Uint8Array> }[] = []
  for (let round = 0; round < 60; round++) {
    const batch = randomBatch(rng, pool, model)
    const root = await tree.apply(batch)
    applyModel(model, batch)
    const where = `seed ${SEED} round ${round}`
    assert.equal(hex(root), hex(tree.root()), where)
    assert.equal(hex(root), hex(refRoot(model)), `root differs from the reference definition (${where})`)
    assert.equal(tree.size, model.size, where)
    assert.equal(tree.version, round)
    history.push({ root, model: new Map(model) })

    // The same entries inserted into a fresh tree in another order, in random chunks.
    const fresh = await StateTree.open(openMemoryKv())
    const entries = rng.shuffle([...model])
    while (entries.length > 0) await fresh.apply(new Map(entries.splice(0, rng.range(1, 30))))
    assert.equal(hex(fresh.root()), hex(root), `order changed the root (${where})`)

    for (const [k, v] of model) {
      const key = keyOf(k)
      assert.equal(hex(tree.get(key)!), hex(v), where)
      const { proof, value } = tree.proveLatest(key)
      assert.equal(hex(value!), hex(v))
      assert.ok(verifyStateProof(root, key, v, proof), `member proof fails (${where}, key ${k})`)
      const wrong = v.length > 0 ? Uint8Array.from(v, (b, i) => (i === 0 ? b ^ 1 : b)) : new Uint8Array([0])
      assert.not.ok(verifyStateProof(root, key, wrong, proof), `wrong value verifies (${where})`)
      assert.not.ok(verifyStateProof(root, key, undefined, proof), `member proves absent (${where})`)
      if (rng.chance(0.2)) {
        for (const bad of tamperings(proof, rng))
          assert.not.ok(verifyStateProof(root, key, v, bad), `tampered proof verifies (${where})`)
      }
    }
    for (let i = 0; i < 10; i++) {
      const k = rng.chance(0.5) ? rng.pick(pool) : hex(rng.bytes(rng.range(0, 30)))
      if (model.has(k)) continue
      const key = keyOf(k)
      assert.is(tree.get(key), undefined)
      const { proof, value } = tree.proveLatest(key)
      assert.is(value, undefined)
      assert.ok(verifyStateProof(root, key, undefined, proof), `non-member proof fails (${where})`)
      assert.not.ok(
        verifyStateProof(root, key, new Uint8Array(0), proof),
        `non-member proves present (${where})`,
      )
      for (const bad of tamperings(proof, rng))
        assert.not.ok(verifyStateProof(root, key, undefined, bad), `tampered absence verifies (${where})`)
    }
  }

  // Every stored version still proves what it held, from the pages on disk.
  for (let i = 0; i < 80; i++) {
    const height = rng.int(history.length)
    const { root, model: then } = history[height]!
    const k = rng.chance(0.7) && then.size > 0 ? rng.pick([...then.keys()]) : rng.pick(pool)
    const res = await tree.prove(keyOf(k), height)
    assert.equal(hex(res.root), hex(root))
    assert.equal(
      res.value && hex(res.value),
      then.get(k) && hex(then.get(k)!),
      `old value (seed ${SEED}, height ${height})`,
    )
    assert.ok(
      verifyStateProof(root, keyOf(k), then.get(k), res.proof),
      `old proof (seed ${SEED}, height ${height})`,
    )
  }

  // Reopening rebuilds the same tree from the stored latest values.
  const again = await StateTree.open(kv)
  assert.equal(again.version, tree.version)
  assert.equal(hex(again.root()), hex(tree.root()))
  assert.equal(again.size, model.size)
  for (const [k, v] of model) assert.equal(hex(again.get(keyOf(k))!), hex(v))
})

test(`5,000 entries: root matches the reference, proofs stay about log2(n) long (seed ${SEED})`, async () => {
  const rng = new Rng(SEED + 1)
  const tree = await StateTree.open(openMemoryKv())
  const model = new Map<string, Uint8Array>()
  for (let i = 0; i < 5000; i++) model.set(hex(rng.bytes(20)), rng.bytes(rng.int(40)))
  const root = await tree.apply(model)
  assert.equal(hex(root), hex(refRoot(model)))
  let total = 0
  let max = 0
  for (const [k, v] of model) {
    const { proof } = tree.proveLatest(keyOf(k))
    assert.ok(verifyStateProof(root, keyOf(k), v, proof))
    total += proof.siblings.length
    max = Math.max(max, proof.siblings.length)
  }
  const mean = total / model.size
  // log2(5000) = 12.3; a compressed tree over uniform paths averages ~log2(n) + 1.3 (an uncompressed one: 256).
  assert.ok(mean < 15, `mean proof length ${mean}`)
  assert.ok(max < 40, `max proof length ${max}`)
})

test(`reopening rebuilds the same tree: 20,000 entries, 34 of them sharing a 16-bit path prefix (seed ${SEED})`, async () => {
  // open sorts the leaves by path in buckets of the first 16 bits; a bucket of more than 32 sorts otherwise.
  const rng = new Rng(SEED + 7)
  const model = new Map<string, Uint8Array>()
  for (let i = 0; i < 20_000; i++) model.set(hex(rng.bytes(1 + rng.int(30))), rng.bytes(rng.int(40)))
  const key = Buffer.from('crowd:0000')
  for (let i = 0, found = 0; found < 34; i++) {
    key.writeUInt32BE(i, 6)
    const path = hash('sha256', key, 'buffer')
    if (path[0] === 0xab && path[1] === 0xcd) {
      model.set(key.toString('hex'), rng.bytes(rng.int(40)))
      found++
    }
  }
  const kv = openMemoryKv()
  const tree = await StateTree.open(kv)
  const root = await tree.apply(model)
  assert.equal(hex(root), hex(refRoot(model)))
  const reopened = await StateTree.open(kv, 0)
  assert.equal(hex(reopened.root()), hex(root))
  assert.equal(reopened.size, model.size)
  // The reopened tree is usable: proofs check, and an update gives the reference root.
  for (const k of [...model.keys()].slice(-50)) {
    const { proof, value } = reopened.proveLatest(keyOf(k))
    assert.ok(verifyStateProof(root, keyOf(k), value, proof))
  }
  const writes = new Map<string, Uint8Array | null>(
    [...model.keys()].slice(-30).map((k, i) => [k, i % 2 ? null : rng.bytes(8)]),
  )
  const next = await reopened.apply(writes)
  applyModel(model, writes)
  assert.equal(hex(next), hex(refRoot(model)))
})

test('large values (beyond the page buffer guess) are stored and proven at old heights', async () => {
  const rng = new Rng(SEED + 5)
  const kv = openMemoryKv()
  const tree = await StateTree.open(kv)
  const big = rng.bytes(200_000)
  const root0 = await tree.apply(new Map([['0a', big]]))
  const w = new Map<string, Uint8Array>([['0b', rng.bytes(70_000)]])
  for (let i = 0; i < 50; i++) w.set(hex(rng.bytes(4)), rng.bytes(rng.int(3000)))
  const root1 = await tree.apply(w)
  await tree.apply(
    new Map([
      ['0a', null],
      ['0b', null],
    ]),
  )
  const old0 = await tree.prove(Uint8Array.of(10), 0)
  assert.equal(old0.value!.length, big.length)
  assert.ok(verifyStateProof(root0, Uint8Array.of(10), big, old0.proof))
  const old1 = await tree.prove(Uint8Array.of(11), 1)
  assert.ok(verifyStateProof(root1, Uint8Array.of(11), w.get('0b'), old1.proof))
  const again = await StateTree.open(kv)
  assert.equal(hex(again.root()), hex(tree.root()))
})

test('proofs survive msgpack; decodeStateProof is strict', async () => {
  const rng = new Rng(SEED + 2)
  const tree = await StateTree.open(openMemoryKv())
  const w = new Map<string, Uint8Array>()
  for (let i = 0; i < 200; i++) w.set(hex(rng.bytes(8)), rng.bytes(10))
  const root = await tree.apply(w)
  for (const key of [keyOf([...w.keys()][3]!), rng.bytes(8)]) {
    const { proof, value } = tree.proveLatest(key)
    const back = decodeStateProof(encodeStateProof(proof))
    assert.equal(back, proof)
    assert.ok(verifyStateProof(root, key, value, back))
    // The plain object form encodes too (RPC may send it as is).
    assert.ok(encode(proof as never).length > 0)
  }
  for (const junk of [
    new Uint8Array(0),
    encode([]),
    encode([[new Uint8Array(31)], null, null]),
    encode([[], new Uint8Array(32), null]),
    encode([[], null, null, 1]),
  ]) {
    assert.throws(
      () => decodeStateProof(junk),
      (e: unknown) => e instanceof CodecError,
    )
  }
})

test(`verifyStateProof never throws on garbage (seed ${SEED})`, () => {
  const rng = new Rng(SEED + 3)
  const junk = (): unknown =>
    rng.pick([
      null,
      undefined,
      0,
      'x',
      {},
      [],
      rng.bytes(rng.int(40)),
      [rng.bytes(32)],
      { siblings: 'no' },
      new Array(300).fill(new Uint8Array(32)),
    ])
  for (let i = 0; i < 2000; i++) {
    const root = rng.chance(0.8) ? rng.bytes(32) : junk()
    const key = rng.chance(0.8) ? rng.bytes(rng.int(10)) : junk()
    const value = rng.chance(0.5) ? undefined : rng.chance(0.8) ? rng.bytes(5) : junk()
    const proof = rng.chance(0.5)
      ? {
          siblings: Array.from({ length: rng.int(5) }, () => (rng.chance(0.9) ? rng.bytes(32) : junk())),
          leaf: rng.chance(0.5) ? null : { path: junk(), valueHash: rng.bytes(32) },
        }
      : junk()
    assert.is(verifyStateProof(root as never, key as never, value as never, proof as never), false)
  }
})

test('bad writes are refused before anything changes', async () => {
  const tree = await StateTree.open(openMemoryKv())
  await tree.apply(new Map([['aa', new Uint8Array([1])]]))
  const before = hex(tree.root())
  const bad: Map<string, unknown>[] = [
    new Map([['AB', new Uint8Array(1)]]),
    new Map([['abc', new Uint8Array(1)]]),
    new Map([['zz', new Uint8Array(1)]]),
    new Map([['ab', 'text']]),
    new Map([['ab', undefined]]),
  ]
  for (const w of bad)
    assert.equal(
      codeOf(() => tree.stage(w as never)),
      'STORE_BAD_INPUT',
    )
  assert.equal(
    codeOf(() => tree.stage({} as never)),
    'STORE_BAD_INPUT',
  )
  assert.equal(hex(tree.root()), before)
  assert.equal(tree.version, 0)
})

test('a dropped stage changes nothing; a stale stage cannot commit', async () => {
  const tree = await StateTree.open(openMemoryKv())
  const first = tree.stage(new Map([['01', new Uint8Array([1])]]))
  assert.equal(tree.version, -1)
  assert.equal(hex(tree.root()), hex(ZERO))
  const second = tree.stage(new Map([['02', new Uint8Array([2])]]))
  second.commit()
  assert.throws(() => first.commit(), /invariant/)
  assert.equal(tree.get(new Uint8Array([1])), undefined)
  assert.equal(hex(tree.get(new Uint8Array([2]))!), '02')
})

test('values the caller reuses after a write do not change the state', async () => {
  const tree = await StateTree.open(openMemoryKv())
  const big = new Uint8Array(100).fill(9)
  const view = big.subarray(10, 20)
  await tree.apply(new Map([['01', view]]))
  const root = hex(tree.root())
  big.fill(0)
  assert.equal(hex(tree.get(new Uint8Array([1]))!), '09'.repeat(10), 'a view into a larger buffer is copied')
  const got = tree.get(new Uint8Array([1]))!
  got.fill(1)
  assert.equal(hex(tree.get(new Uint8Array([1]))!), '09'.repeat(10), 'get returns a copy')
  assert.equal(hex(tree.root()), root)
})

async function corruptedOpen(mutate: (kv: KvStore) => Promise<void>): Promise<string> {
  const kv = openMemoryKv()
  const tree = await StateTree.open(kv)
  await tree.apply(
    new Map([
      ['01', new Uint8Array([1])],
      ['02', new Uint8Array([2])],
      ['03', new Uint8Array([3])],
    ]),
  )
  await tree.apply(new Map([['04', new Uint8Array([4])]]))
  await mutate(kv)
  try {
    await StateTree.open(kv)
    return 'OK'
  } catch (err) {
    if (isCityError(err)) return `${err.code} ${err.message}`
    throw err
  }
}

test('open refuses altered, missing or truncated state data with STORE_CORRUPT', async () => {
  const V = (k: number[]) => Uint8Array.of(STORE_PREFIX.stateValue, ...k)
  const S = (h: number) => Uint8Array.of(STORE_PREFIX.stateRoot, 0, 0, 0, 0, 0, 0, 0, h)
  let r = await corruptedOpen((kv) => kv.write([{ type: 'put', key: V([2]), value: new Uint8Array([9]) }]))
  assert.match(r, /^STORE_CORRUPT .*state at height 1/)
  r = await corruptedOpen((kv) => kv.write([{ type: 'del', key: V([3]) }]))
  assert.match(r, /^STORE_CORRUPT/)
  r = await corruptedOpen((kv) => kv.write([{ type: 'put', key: S(1), value: new Uint8Array(31) }]))
  assert.match(r, /^STORE_CORRUPT .*state root at height 1.*31 bytes/)
  r = await corruptedOpen((kv) =>
    kv.write([
      { type: 'del', key: S(0) },
      { type: 'del', key: S(1) },
    ]),
  )
  assert.match(r, /^STORE_CORRUPT .*no state root/)
})

test('an old proof over a damaged or missing page is STORE_CORRUPT, never a wrong answer', async () => {
  const rng = new Rng(SEED + 4)
  const kv = openMemoryKv()
  const tree = await StateTree.open(kv)
  const w = new Map<string, Uint8Array>()
  for (let i = 0; i < 300; i++) w.set(hex(rng.bytes(6)), rng.bytes(8))
  await tree.apply(w)
  await tree.apply(new Map([[hex(rng.bytes(6)), rng.bytes(8)]]))
  const pages: [Uint8Array, Uint8Array][] = []
  for await (const e of kv.iterate({
    gte: Uint8Array.of(STORE_PREFIX.stateNode),
    lt: Uint8Array.of(STORE_PREFIX.stateNode + 1),
  }))
    pages.push(e)
  const key = keyOf([...w.keys()][0]!)
  // Damage every page in turn: each old proof either does not touch it or fails loudly.
  let failures = 0
  for (const [k, v] of pages) {
    const damaged = Uint8Array.from(v)
    damaged[rng.int(damaged.length)]! ^= 0x10
    for (const bad of [damaged, v.subarray(0, v.length - 1)]) {
      await kv.write([{ type: 'put', key: k, value: bad }])
      const code = await codeOfAsync(() => tree.prove(key, 0))
      if (code !== 'OK') {
        assert.equal(code, 'STORE_CORRUPT')
        failures++
      }
    }
    await kv.write([{ type: 'del', key: k }])
    const code = await codeOfAsync(() => tree.prove(key, 0))
    assert.ok(code === 'OK' || code === 'STORE_CORRUPT')
    await kv.write([{ type: 'put', key: k, value: v }])
  }
  assert.ok(failures > 0)
  const ok = await tree.prove(key, 0)
  assert.ok(verifyStateProof(ok.root, key, ok.value, ok.proof))
  assert.equal(await codeOfAsync(() => tree.prove(key, 7)), 'STORE_UNKNOWN_HEIGHT')
  assert.equal(await codeOfAsync(() => tree.prove(key, -1)), 'STORE_UNKNOWN_HEIGHT')
})

test.run()
