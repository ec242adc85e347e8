import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { type KvOp, type KvStore, isCityError, openLevelKv, prefixEnd, subKv, toHex } from '@cityledger/core'
import { Rng, testSeed } from '@cityledger/core/testing'
import { BACKENDS, type Backend, tempDir } from './helpers/backends.ts'

const SEED = testSeed(20261125)
const b = (...xs: number[]) => Uint8Array.from(xs)
const hex = toHex

async function all(kv: KvStore, range = {}): Promise<string[]> {
  const out: string[] = []
  for await (const [k, v] of kv.iterate(range)) out.push(`${hex(k)}=${hex(v)}`)
  return out
}

async function codeOf(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn()
  } catch (err) {
    if (isCityError(err)) return err.code
    throw err
  }
  return 'OK'
}

async function withBackend(name: string, fn: (be: Backend) => Promise<void>): Promise<void> {
  const be = await BACKENDS.find((x) => x.name === name)!.create()
  try {
    await fn(be)
  } finally {
    await be.cleanup()
  }
}

for (const { name } of BACKENDS) {
  test(`${name}: put, get, getMany, overwrite, delete`, () =>
    withBackend(name, async ({ kv }) => {
      assert.is(await kv.get(b(1)), undefined)
      await kv.write([
        { type: 'put', key: b(1), value: b(10) },
        { type: 'put', key: b(2), value: b() },
      ])
      assert.equal(hex((await kv.get(b(1)))!), '0a')
      assert.equal(hex((await kv.get(b(2)))!), '', 'empty values are values')
      const got = await kv.get(b(1))
      assert.is(got!.constructor, Uint8Array, 'plain Uint8Array, not a Buffer')
      await kv.write([
        { type: 'put', key: b(1), value: b(11) },
        { type: 'del', key: b(2) },
        { type: 'del', key: b(3) },
      ])
      const many = await kv.getMany([b(1), b(2), b(3)])
      assert.equal(
        many.map((v) => v && hex(v)),
        ['0b', undefined, undefined],
      )
      assert.equal(await kv.getMany([]), [])
    }))

  test(`${name}: later ops in one batch win, and the batch is all-or-nothing on bad input`, () =>
    withBackend(name, async ({ kv }) => {
      await kv.write([
        { type: 'put', key: b(5), value: b(1) },
        { type: 'del', key: b(5) },
        { type: 'put', key: b(6), value: b(1) },
        { type: 'put', key: b(6), value: b(2) },
      ])
      assert.equal(await all(kv), ['06=02'])
      const bad = [
        { type: 'put', key: b(7), value: b(1) },
        { type: 'put', key: b(8), value: 'x' },
      ] as unknown as KvOp[]
      assert.equal(await codeOf(() => kv.write(bad)), 'STORE_BAD_INPUT')
      assert.equal(
        await codeOf(() => kv.write([{ type: 'nope', key: b(1) }] as unknown as KvOp[])),
        'STORE_BAD_INPUT',
      )
      assert.equal(await codeOf(() => kv.write('x' as never)), 'STORE_BAD_INPUT')
      assert.equal(await all(kv), ['06=02'], 'nothing of a refused batch is written')
      await kv.write([], { sync: true })
    }))

  test(`${name}: iteration honours gte, lt, reverse and limit (seed ${SEED})`, () =>
    withBackend(name, async ({ kv }) => {
      const rng = new Rng(SEED)
      const keys = new Map<string, Uint8Array>()
      for (let i = 0; i < 300; i++) keys.set(hex(rng.bytes(rng.range(1, 4))), rng.bytes(3))
      await kv.write(
        [...keys].map(([k, v]) => ({ type: 'put', key: Uint8Array.from(Buffer.from(k, 'hex')), value: v })),
        { sync: true },
      )
      const sorted = [...keys.keys()].sort()
      const line = (k: string) => `${k}=${hex(keys.get(k)!)}`
      assert.equal(await all(kv), sorted.map(line))
      for (let i = 0; i < 40; i++) {
        const gte = rng.chance(0.8) ? rng.bytes(rng.range(0, 3)) : undefined
        const lt = rng.chance(0.8) ? rng.bytes(rng.range(1, 3)) : undefined
        const reverse = rng.chance(0.5)
        const limit = rng.chance(0.5) ? rng.int(20) : undefined
        let want = sorted.filter(
          (k) => (gte === undefined || k >= hex(gte)) && (lt === undefined || k < hex(lt)),
        )
        if (reverse) want.reverse()
        if (limit !== undefined) want = want.slice(0, limit)
        assert.equal(await all(kv, { gte, lt, reverse, limit }), want.map(line), `seed ${SEED} query ${i}`)
      }
    }))

  test(`${name}: an iterator sees the data as it was when it started`, () =>
    withBackend(name, async ({ kv }) => {
      await kv.write([1, 2, 3, 4].map((i) => ({ type: 'put', key: b(i), value: b(i) })))
      const seen: string[] = []
      for await (const [k] of kv.iterate({})) {
        seen.push(hex(k))
        if (k[0] === 1)
          await kv.write([
            { type: 'del', key: b(3) },
            { type: 'put', key: b(5), value: b(5) },
          ])
      }
      assert.equal(seen, ['01', '02', '03', '04'])
      assert.equal((await all(kv)).length, 4)
    }))

  test(`${name}: subKv keeps a namespace apart and writes through the parent's batches`, () =>
    withBackend(name, async ({ kv }) => {
      const a = subKv(kv, 0x4a)
      const c = subKv(kv, b(0x4a, 0xff))
      await kv.write([
        { type: 'put', key: b(0x49, 1), value: b(1) },
        { type: 'put', key: b(0x4b), value: b(2) },
      ])
      await a.write([
        { type: 'put', key: b(1), value: b(9) },
        { type: 'put', key: b(), value: b(8) },
      ])
      await c.write([{ type: 'put', key: b(7), value: b(7) }])
      assert.equal(await all(a), ['=08', '01=09', 'ff07=07'])
      assert.equal(await all(c), ['07=07'])
      assert.equal(await all(a, { reverse: true, limit: 1 }), ['ff07=07'])
      assert.equal(hex((await a.get(b(1)))!), '09')
      assert.equal(hex((await kv.get(b(0x4a, 1)))!), '09')
      assert.equal(hex(prefixEnd(b(0x4a, 0xff))!), '4b')
      assert.is(prefixEnd(b(0xff, 0xff)), undefined)
      await a.close()
      assert.equal(await codeOf(() => a.get(b(1))), 'STORE_CLOSED')
      assert.equal(hex((await kv.get(b(0x4a, 1)))!), '09', 'closing a view leaves the parent open')
    }))

  test(`${name}: a closed store refuses every call with STORE_CLOSED`, () =>
    withBackend(name, async ({ kv }) => {
      await kv.close()
      assert.equal(await codeOf(() => kv.get(b(1))), 'STORE_CLOSED')
      assert.equal(await codeOf(() => kv.getMany([b(1)])), 'STORE_CLOSED')
      assert.equal(await codeOf(() => kv.write([{ type: 'put', key: b(1), value: b(1) }])), 'STORE_CLOSED')
      assert.equal(await codeOf(async () => kv.iterate({})), 'STORE_CLOSED')
      await kv.close()
    }))
}

for (const { name } of BACKENDS) {
  test(`${name}: long scans in chunks: every entry in order, keysOnly gives the keys, a scan stopped early closes`, () =>
    withBackend(name, async ({ kv }) => {
      // More than two of LevelDB's read chunks (1,000 entries), read one ahead of the consumer.
      const n = 2_500
      const key = (i: number) => Uint8Array.of(7, i >> 8, i & 0xff)
      await kv.write(
        Array.from({ length: n }, (_, i) => ({ type: 'put' as const, key: key(i), value: b(i & 0xff, 1) })),
      )
      const range = { gte: b(7), lt: b(8) }
      let i = 0
      for await (const [k, v] of kv.iterate(range)) {
        assert.equal(hex(k), hex(key(i)))
        assert.equal(hex(v), hex(b(i & 0xff, 1)))
        i++
      }
      assert.is(i, n)
      i = 0
      for await (const [k, v] of kv.iterate({ ...range, keysOnly: true })) {
        assert.equal(hex(k), hex(key(i)))
        // LevelDB reads no values then (empty); the in-memory store hands them back anyway.
        assert.ok(v.length === 0 || hex(v) === hex(b(i & 0xff, 1)))
        i++
      }
      assert.is(i, n)
      // Stopped inside the first chunk and after it, while the next is being read: no error, nothing left open.
      for (const stop of [10, 1_500]) {
        i = 0
        for await (const _ of kv.iterate(range)) if (++i === stop) break
        assert.is(i, stop)
      }
      await kv.write([{ type: 'put', key: key(0), value: b(9) }])
      assert.equal(hex((await kv.get(key(0)))!), '09')
    }))
}

test('level: data survives close and reopen; a second opener of the folder gets STORE_LOCKED', async () => {
  const dir = tempDir('lock')
  const kvs: KvStore[] = []
  try {
    const first = await openLevelKv(join(dir, 'db'))
    kvs.push(first)
    await first.write([{ type: 'put', key: b(1), value: b(2) }], { sync: true })
    assert.equal(await codeOf(async () => kvs.push(await openLevelKv(join(dir, 'db')))), 'STORE_LOCKED')
    await first.close()
    const again = await openLevelKv(join(dir, 'db'))
    kvs.push(again)
    assert.equal(hex((await again.get(b(1)))!), '02')
    assert.equal(await codeOf(() => openLevelKv('')), 'STORE_BAD_INPUT')
  } finally {
    for (const kv of kvs) await kv.close().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
