import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  ChainStore,
  type KvStore,
  STORE_PREFIX,
  StateSyncBuilder,
  type StateKeysCursor,
  type SyncTarget,
  isCityError,
  openMemoryKv,
  readStateKeys,
  readStatePages,
  toHex,
  utf8,
} from '@cityledger/core'
import { testSeed } from '@cityledger/core/testing'
import { CHAIN_ID, genesisWrites, nextBlock } from './helpers/chainFixture.ts'

const SEED = testSeed(20261203)
const HEIGHT = 30
const ZERO = new Uint8Array(32)

const keep = (kv: KvStore): KvStore => ({ ...kv, close: async () => {} })
const entriesOf = (state: { entries(): IterableIterator<[Uint8Array, Uint8Array]> }): string[] =>
  [...state.entries()].map(([k, v]) => `${toHex(k)}=${toHex(v)}`).sort()

/** A chain of HEIGHT blocks with ~2,000 keys (block 3 adds many), and its entries per height. */
async function buildChain(kv: KvStore): Promise<string[][]> {
  const store = await ChainStore.open(keep(kv))
  await store.initGenesis({ chainId: CHAIN_ID, stateWrites: genesisWrites(SEED) })
  const entries = [entriesOf(store.state)]
  for (let h = 1; h <= HEIGHT; h++) {
    const writes =
      h === 3
        ? new Map(
            Array.from({ length: 2000 }, (_, i) => [toHex(utf8.encode(`bulk/${i}`)), utf8.encode(`v${i}`)]),
          )
        : undefined
    await store.commitBlock(nextBlock(store, SEED, writes ? { writes } : {}))
    entries.push(entriesOf(store.state))
  }
  await store.close()
  return entries
}

async function targetAt(kv: KvStore, height: number): Promise<SyncTarget> {
  const store = await ChainStore.open(keep(kv))
  const t = {
    chainId: CHAIN_ID,
    genesisHash: ZERO,
    height,
    stateRoot: (await store.stateRoot(height))!,
    block: (await store.getBlock(height))!.bytes,
    certificate: (await store.getCertificate(height))!,
  }
  await store.close()
  return t
}

async function refused(p: Promise<unknown> | (() => unknown), code: string): Promise<Error> {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (err) {
    assert.ok(isCityError(err, code), String(err))
    return err as Error
  }
  throw new Error(`expected ${code}`)
}

/** Fetches the whole target from `serve` in batches of 16 pages and 100 keys. */
async function fetchAll(b: StateSyncBuilder, src: KvStore, height: number): Promise<number> {
  let requests = 0
  while (b.needsPages) {
    const hs = b.nextHashes(16)
    b.addPages(hs, await readStatePages(src, hs))
    requests++
  }
  let cursor: StateKeysCursor | undefined = ['latest', null]
  while (cursor && b.needsKeys) {
    const page = await readStateKeys(src, height, cursor, 100, 4096)
    b.addKeys(page.keys)
    cursor = page.next
    requests++
  }
  return requests
}

test('a store built from the pages and keys of height h opens at h, holds its state and takes block h + 1', async () => {
  const src = openMemoryKv()
  const entries = await buildChain(src)
  const h = HEIGHT - 4
  const dst = openMemoryKv()
  const builder = await StateSyncBuilder.create(dst, await targetAt(src, h))
  const requests = await fetchAll(builder, src, h)
  assert.ok(requests > 20, `many requests (${requests})`)
  assert.is(builder.missingKeys, 0)
  assert.ok(builder.progress.pages > 100, `pages ${builder.progress.pages}`)
  await builder.finish()
  // The state at h holds keys deleted since (found through the rollback records).
  const keysNow = new Set(entries[HEIGHT]!.map((e) => e.split('=')[0]))
  assert.ok(
    entries[h]!.some((e) => !keysNow.has(e.split('=')[0])),
    'some keys of h deleted later',
  )

  const store = await ChainStore.open(keep(dst), { chainId: CHAIN_ID })
  assert.is(store.height(), h)
  assert.is(store.prunedBelow, h)
  assert.equal(entriesOf(store.state), entries[h])
  assert.ok(await store.getBlock(h))
  await refused(store.getBlock(h - 1), 'PRUNED')
  // Block h came without its results: reads of them are PRUNED, not an empty list.
  await refused(store.getResults(h), 'PRUNED')
  // Block sync continues: the same blocks as the source's, to the same roots.
  const srcStore = await ChainStore.open(keep(src))
  for (let next = h + 1; next <= HEIGHT; next++) {
    await store.commitBlock(nextBlock(store, SEED))
    assert.is(toHex(store.state.root()), toHex((await srcStore.stateRoot(next))!), `root at ${next}`)
  }
  // And it opens again after the blocks it added.
  await store.close()
  const again = await ChainStore.open(keep(dst), { chainId: CHAIN_ID })
  assert.is(again.height(), HEIGHT)
  await again.close()
  await srcStore.close()
})

/** `kv`, counting the scans of the latest values (what `StateTree.open` reads to rebuild the tree). */
function countingValueScans(kv: KvStore): { kv: KvStore; scans: () => number } {
  let scans = 0
  return {
    kv: {
      ...keep(kv),
      iterate(range) {
        if (range.gte?.[0] === STORE_PREFIX.stateValue && range.gte.length === 1) scans++
        return kv.iterate(range)
      },
    },
    scans: () => scans,
  }
}

test('the open takes the tree the sync built (no value read back), and blocks go on to the same roots', async () => {
  const src = openMemoryKv()
  const entries = await buildChain(src)
  const h = HEIGHT - 3
  const dst = openMemoryKv()
  const b = await StateSyncBuilder.create(dst, await targetAt(src, h))
  // Pages in a scrambled order (a later request answered first), as parallel requests arrive.
  while (b.needsPages) {
    const hs = b.nextHashes(12)
    const tail = hs.splice(6)
    const later = b.nextHashes(5)
    b.addPages(later, await readStatePages(src, later))
    b.addPages(tail, await readStatePages(src, tail))
    b.addPages(hs, await readStatePages(src, hs))
  }
  let cursor: StateKeysCursor | undefined = ['latest', null]
  while (cursor && b.needsKeys) {
    const page = await readStateKeys(src, h, cursor, 300, 1 << 20)
    b.addKeys(page.keys)
    cursor = page.next
  }
  const synced = await b.finish()
  assert.ok(synced, 'a tree handed on')
  const counted = countingValueScans(dst)
  const store = await ChainStore.open(counted.kv, { chainId: CHAIN_ID, syncedState: synced })
  assert.is(counted.scans(), 0, 'no value read back')
  assert.equal(entriesOf(store.state), entries[h])
  assert.is(toHex(store.state.root()), toHex((await targetAt(src, h)).stateRoot))
  const srcStore = await ChainStore.open(keep(src))
  for (let next = h + 1; next <= HEIGHT; next++) {
    await store.commitBlock(nextBlock(store, SEED))
    assert.is(toHex(store.state.root()), toHex((await srcStore.stateRoot(next))!), `root at ${next}`)
  }
  await store.close()
  await srcStore.close()
  // A tree of another height is not taken: the open rebuilds the state and checks it.
  const again = countingValueScans(dst)
  const reopened = await ChainStore.open(again.kv, { chainId: CHAIN_ID, syncedState: synced })
  assert.is(again.scans(), 1, 'values read and checked')
  assert.equal(entriesOf(reopened.state), entries[HEIGHT])
  await reopened.close()
})

test('a corrupted or missing page is refused, nothing of that answer is kept, and another source finishes', async () => {
  const src = openMemoryKv()
  await buildChain(src)
  const h = HEIGHT - 1
  const dst = openMemoryKv()
  const b = await StateSyncBuilder.create(dst, await targetAt(src, h))
  let bad = 0
  let round = 0
  while (b.needsPages) {
    const hs = b.nextHashes(8)
    const pages = await readStatePages(src, hs)
    round++
    if (round % 3 === 0) {
      // A lying source: one byte of one page flipped, or a page left out.
      const lie = pages.map((p) => p && Uint8Array.from(p))
      if (round % 2 === 0) lie[lie.length - 1]![5]! ^= 1
      else lie[0] = undefined
      const before = b.progress.pages
      const err = await refused(() => b.addPages(hs, lie), 'STATE_SYNC_BAD_PAGE')
      assert.ok((err as unknown as { penalize: boolean }).penalize)
      assert.is(b.progress.pages, before, 'nothing of the bad answer counted')
      bad++
      continue
    }
    b.addPages(hs, pages)
  }
  assert.ok(bad >= 3)
  // At the head itself the keys are the latest ones, and all of them (no rollback records above it).
  const atHead = await readStateKeys(src, HEIGHT, ['latest', null], 1e6, 1 << 30)
  assert.is(atHead.next, undefined)
  assert.is(atHead.keys.length, (await ChainStore.open(keep(src))).state.size)
  // Keys of another source that lies (random keys) count for nothing; the honest one completes.
  assert.is(b.addKeys([utf8.encode('not/a/key'), utf8.encode('bulk/x')]), 0)
  await refused(b.finish(), 'STATE_SYNC_INCOMPLETE')
  let cursor: StateKeysCursor | undefined = ['latest', null]
  while (cursor) {
    const page = await readStateKeys(src, h, cursor, 500, 1 << 20)
    b.addKeys(page.keys)
    cursor = page.next
  }
  const synced = await b.finish()
  // The tree built around the refused answers is the state's: the same entries as a rebuilt one.
  const rebuilt = await ChainStore.open(keep(dst))
  assert.is(toHex(rebuilt.state.root()), toHex((await targetAt(src, h)).stateRoot))
  const adopted = await ChainStore.open(keep(dst), { syncedState: synced })
  assert.equal(entriesOf(adopted.state), entriesOf(rebuilt.state))
  await rebuilt.close()
  await adopted.commitBlock(nextBlock(adopted, SEED))
  assert.is(toHex(adopted.state.root()), toHex((await targetAt(src, h + 1)).stateRoot))
  await adopted.close()
})

test('a key sent twice counts once; until finish the store is no chain, then it holds the state', async () => {
  const src = openMemoryKv()
  const entries = await buildChain(src)
  const h = HEIGHT - 2
  const dst = openMemoryKv()
  const b = await StateSyncBuilder.create(dst, await targetAt(src, h))
  while (b.needsPages) {
    const hs = b.nextHashes(64)
    b.addPages(hs, await readStatePages(src, hs))
  }
  const first = await readStateKeys(src, h, ['latest', null], 5, 1 << 20)
  assert.is(b.addKeys(first.keys), 5)
  assert.is(b.addKeys(first.keys), 0, 'the same keys again count for nothing')
  assert.is(b.progress.keys, 5)
  // Interrupted here (values queued or written, no chain metadata): never opened as a chain.
  await b.settled()
  const opened = await ChainStore.open(keep(dst)).then(
    (store) => store.height(),
    (err) => (isCityError(err, 'STORE_CORRUPT') ? 'refused' : Promise.reject(err)),
  )
  assert.ok(opened === -1 || opened === 'refused', String(opened))
  let cursor: StateKeysCursor | undefined = first.next
  while (cursor) {
    const page = await readStateKeys(src, h, cursor, 50, 1 << 20)
    b.addKeys(page.keys)
    cursor = page.next
  }
  assert.is(b.missingKeys, 0)
  await b.finish()
  const store = await ChainStore.open(keep(dst), { chainId: CHAIN_ID })
  assert.equal(entriesOf(store.state), entries[h])
  await store.close()
})

test('keys that come while pages are still missing count when their leaf comes', async () => {
  const src = openMemoryKv()
  const entries = await buildChain(src)
  const h = HEIGHT - 3
  const dst = openMemoryKv()
  const b = await StateSyncBuilder.create(dst, await targetAt(src, h))
  // Every key of h (and of later heights, which no leaf of h has) before any page is answered.
  const root = b.nextHashes(1)
  const all = await readStateKeys(src, h, ['latest', null], 1e6, 1 << 30)
  assert.is(all.next, undefined)
  assert.is(b.addKeys(all.keys), 0, 'no leaf yet')
  b.addPages(root, await readStatePages(src, root))
  while (b.needsPages) {
    const hs = b.nextHashes(16)
    b.addPages(hs, await readStatePages(src, hs))
  }
  assert.is(b.missingKeys, 0, 'matched as their leaves came')
  assert.is(b.progress.keys, b.progress.leaves)
  // After the pages, a key of no leaf is not kept.
  assert.is(b.addKeys([utf8.encode('not/a/key')]), 0)
  await b.finish()
  const store = await ChainStore.open(keep(dst), { chainId: CHAIN_ID })
  assert.equal(entriesOf(store.state), entries[h])
  await store.close()
})

test('a target whose certificate is not for its block, or a store that is not empty, is refused', async () => {
  const src = openMemoryKv()
  await buildChain(src)
  const t = await targetAt(src, 10)
  const other = await targetAt(src, 11)
  await refused(
    StateSyncBuilder.create(openMemoryKv(), { ...t, certificate: other.certificate }),
    'STATE_SYNC_BAD_TARGET',
  )
  await refused(StateSyncBuilder.create(openMemoryKv(), { ...t, height: 11 }), 'STATE_SYNC_BAD_TARGET')
  await refused(
    StateSyncBuilder.create(openMemoryKv(), { ...t, chainId: 'other-chain' }),
    'STATE_SYNC_BAD_TARGET',
  )
  await refused(StateSyncBuilder.create(src, t), 'STATE_SYNC_NOT_EMPTY')
  // An unfinished build writes no chain metadata: the store opens as an empty one.
  const dst = openMemoryKv()
  const b = await StateSyncBuilder.create(dst, t)
  const hs = b.nextHashes(4)
  b.addPages(hs, await readStatePages(src, hs))
  await b.settled()
  await refused(b.finish(), 'STATE_SYNC_INCOMPLETE')
  const store = await ChainStore.open(keep(dst))
  assert.is(store.height(), -1)
})

test.run()
