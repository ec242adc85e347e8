// ChainStore.pruneState: after block history is pruned, the tree pages only pruned versions reached are
// deleted and compacted (the folder shrinks), every kept version stays whole (proofs of every key at
// every kept height), and a commit during the sweep that rewrites a page the sweep found unreachable
// keeps it.
import { readdirSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  ChainStore,
  type KvRange,
  type KvStore,
  STORE_PREFIX,
  encode,
  fromHex,
  openLevelKv,
  verifyStateProof,
} from '@cityledger/core'
import { testSeed } from '@cityledger/core/testing'
import { countEntries, tempDir } from './helpers/backends.ts'
import { CHAIN_ID, genesisWrites, nextBlock, stateKey, writesFor } from './helpers/chainFixture.ts'

const SEED = testSeed(20261203)
const LEVEL = { writeBufferSize: 64 * 1024, maxFileSize: 256 * 1024 }
const POOL = Array.from({ length: 300 }, (_, n) => fromHex(stateKey(n)))

const folderBytes = (dir: string): number =>
  readdirSync(dir).reduce((n, f) => n + (statSync(join(dir, f), { throwIfNoEntry: false })?.size ?? 0), 0)

const countPages = (kv: KvStore): Promise<number> => countEntries(kv, STORE_PREFIX.stateNode)

/** Every pool key proves (present or absent) against the stored root of every height in `heights`. */
async function assertWhole(store: ChainStore, heights: number[]): Promise<void> {
  for (const h of heights) {
    const root = await store.stateRoot(h)
    for (const key of POOL) {
      const p = await store.state.prove(key, h)
      assert.ok(verifyStateProof(root!, key, p.value, p.proof), `key ${Buffer.from(key)} at height ${h}`)
    }
  }
}

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i)

test('after pruning blocks, the sweep deletes the unreachable pages, the folder shrinks, kept versions are whole', async () => {
  const dir = tempDir('prune-state')
  const db = join(dir, 'db')
  try {
    const kv = await openLevelKv(db, LEVEL)
    const store = await ChainStore.open(kv)
    await store.initGenesis({ chainId: CHAIN_ID, stateWrites: genesisWrites(SEED) })
    for (let h = 1; h <= 300; h++)
      await store.commitBlock(nextBlock(store, SEED, { writes: writesFor(h, SEED, 30), txCount: 0 }))
    // Nothing pruned yet: a sweep keeps every page.
    const pagesBefore = await countPages(kv)
    const none = await store.pruneState()
    assert.equal([none.deleted, none.kept], [0, pagesBefore])
    await store.prune(290)
    const swept = await store.pruneState()
    const pagesAfter = await countPages(kv)
    assert.is(swept.kept, pagesAfter)
    assert.is(swept.deleted, pagesBefore - pagesAfter)
    assert.ok(pagesAfter * 5 < pagesBefore, `${pagesBefore} pages -> ${pagesAfter}`)
    assert.ok(swept.roots >= 2 && swept.roots <= 11, `${swept.roots} roots`)
    await assertWhole(store, range(290, 300))
    await store.close()
    const bytesAfter = folderBytes(db)

    // The same chain unpruned, for the size comparison.
    const db2 = join(dir, 'archive')
    const archive = await ChainStore.open(await openLevelKv(db2, LEVEL))
    await archive.initGenesis({ chainId: CHAIN_ID, stateWrites: genesisWrites(SEED) })
    for (let h = 1; h <= 300; h++)
      await archive.commitBlock(nextBlock(archive, SEED, { writes: writesFor(h, SEED, 30), txCount: 0 }))
    await archive.close()
    assert.ok(bytesAfter * 3 < folderBytes(db2), `pruned ${bytesAfter} bytes, archive ${folderBytes(db2)}`)

    // Reopened, it commits on and proves as before.
    const reopened = await ChainStore.open(await openLevelKv(db, LEVEL))
    for (let i = 0; i < 5; i++)
      await reopened.commitBlock(nextBlock(reopened, SEED, { writes: writesFor(400 + i, SEED, 30) }))
    await assertWhole(reopened, range(300, 305))
    await reopened.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a commit during the sweep that rewrites pages the sweep found unreachable keeps them', async () => {
  const dir = tempDir('prune-state-race')
  const db = join(dir, 'db')
  try {
    const level = await openLevelKv(db, LEVEL)
    let hook: (() => Promise<void>) | undefined
    // The page walk of the sweep: after its first page, `hook` runs (once), between marking and deleting.
    const kv: KvStore = {
      get: (k) => level.get(k),
      getMany: (ks) => level.getMany(ks),
      write: (ops, o) => level.write(ops, o),
      compact: (r) => level.compact!(r),
      close: () => level.close(),
      iterate(r: KvRange) {
        const inner = level.iterate(r)
        if (r.gte?.[0] !== STORE_PREFIX.stateNode || !hook) return inner
        const run = hook
        hook = undefined
        return {
          async *[Symbol.asyncIterator]() {
            let first = true
            for await (const e of inner) {
              yield e
              if (first) await run()
              first = false
            }
          },
        }
      },
    }
    const store = await ChainStore.open(kv)
    await store.initGenesis({ chainId: CHAIN_ID, stateWrites: genesisWrites(SEED) })
    const a = stateKey(7)
    const first = encode(['first value'])
    await store.commitBlock(nextBlock(store, SEED, { writes: new Map([[a, first]]) }))
    const root1 = store.state.root()
    for (let h = 2; h <= 10; h++)
      await store.commitBlock(nextBlock(store, SEED, { writes: new Map([[a, encode([h])]]) }))
    await store.prune(9)
    // Block 11 puts the value of block 1 back: the state, so every page, of height 1 again.
    hook = async () => {
      await store.commitBlock(nextBlock(store, SEED, { writes: new Map([[a, first]]) }))
    }
    const swept = await store.pruneState()
    assert.is(hook, undefined, 'the sweep walked the pages')
    assert.is(store.height(), 11)
    assert.equal(store.state.root(), root1)
    assert.ok(swept.deleted > 0, `${swept.deleted} deleted`)
    // The head's version is served from memory: one more block makes height 11 a stored version.
    await store.commitBlock(nextBlock(store, SEED, { writes: new Map([[a, encode(['last'])]]) }))
    await assertWhole(store, [9, 10, 11, 12])
    await store.close()
    const reopened = await ChainStore.open(await openLevelKv(db, LEVEL))
    await assertWhole(reopened, [9, 10, 11, 12])
    await reopened.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
