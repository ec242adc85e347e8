import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  ChainStore,
  type KvStore,
  StateTree,
  exportSnapshot,
  importSnapshot,
  isCityError,
  openMemoryKv,
  readSnapshotManifest,
  toHex,
} from '@cityledger/core'
import { testSeed } from '@cityledger/core/testing'
import { tempDir } from './helpers/backends.ts'
import { CHAIN_ID, genesisWrites, nextBlock } from './helpers/chainFixture.ts'

const SEED = testSeed(20261202)
const HEIGHT = 30

const keep = (kv: KvStore): KvStore => ({ ...kv, close: async () => {} })
const entriesOf = (state: { entries(): IterableIterator<[Uint8Array, Uint8Array]> }): string[] =>
  [...state.entries()].map(([k, v]) => `${toHex(k)}=${toHex(v)}`).sort()

async function buildChain(kv: KvStore): Promise<{ roots: string[]; entries: string[][] }> {
  const store = await ChainStore.open(keep(kv))
  await store.initGenesis({ chainId: CHAIN_ID, stateWrites: genesisWrites(SEED) })
  const roots = [toHex(store.state.root())]
  const entries = [entriesOf(store.state)]
  for (let h = 1; h <= HEIGHT; h++) {
    await store.commitBlock(nextBlock(store, SEED))
    roots.push(toHex(store.state.root()))
    entries.push(entriesOf(store.state))
  }
  await store.close()
  return { roots, entries }
}

async function refused(p: Promise<unknown>, code: string): Promise<Error> {
  try {
    await p
  } catch (err) {
    assert.ok(isCityError(err, code), String(err))
    return err as Error
  }
  throw new Error(`expected ${code}`)
}

test('export then import rebuilds the same state, at the default height and an older one', async () => {
  const dir = tempDir('snapshot')
  try {
    const kv = openMemoryKv()
    const chain = await buildChain(kv)
    for (const height of [undefined, HEIGHT - 12]) {
      const file = join(dir, `s-${height}`)
      const lines: number[] = []
      const m = await exportSnapshot(keep(kv), file, {
        height,
        chunkBytes: 1024,
        onChunk: (n) => lines.push(n),
      })
      const h = height ?? HEIGHT - 1
      assert.is(m.height, h)
      assert.is(toHex(m.stateRoot), chain.roots[h])
      assert.ok(m.chunks.length > 3, `several chunks (${m.chunks.length})`)
      assert.is(lines.length, m.chunks.length)
      const read = await readSnapshotManifest(file)
      assert.equal(read.chunks.length, m.chunks.length)
      const target = openMemoryKv()
      const root = await importSnapshot(file, read, target)
      assert.is(toHex(root), chain.roots[h])
      // The imported state opens (values against the root stored under the snapshot's height).
      const tree = await StateTree.open(target, h)
      assert.is(toHex(tree.root()), chain.roots[h])
      assert.equal(entriesOf(tree), chain.entries[h])
      // The import is a store that starts at h (block h, its certificate, chain metadata), as state sync makes.
      const store = await ChainStore.open(keep(target), { chainId: CHAIN_ID })
      assert.is(store.height(), h)
      assert.is(toHex(store.state.root()), chain.roots[h])
      await store.commitBlock(nextBlock(store, SEED))
      assert.is(toHex(store.state.root()), chain.roots[h + 1])
      // The older state holds keys deleted since: found through the blocks' rollback records.
      const keysNow = new Set(chain.entries[HEIGHT]!.map((e) => e.split('=')[0]))
      if (height !== undefined) assert.ok(chain.entries[h]!.some((e) => !keysNow.has(e.split('=')[0])))
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a flipped byte in a chunk is refused naming the chunk, and nothing is written', async () => {
  const dir = tempDir('snapshot')
  try {
    const kv = openMemoryKv()
    await buildChain(kv)
    const file = join(dir, 's')
    const m = await exportSnapshot(keep(kv), file, { chunkBytes: 1024 })
    // Flip a byte inside chunk 2 (after the magic and the records before it).
    const bytes = readFileSync(file)
    const at = 8 + 4 + m.chunks[0]!.bytes + 4 + m.chunks[1]!.bytes + 4 + 10
    bytes[at]! ^= 0x01
    writeFileSync(file, bytes)
    const target = openMemoryKv()
    const err = await refused(
      importSnapshot(file, await readSnapshotManifest(file), target),
      'SNAPSHOT_BAD_CHUNK',
    )
    assert.match(err.message, /chunk 2: hash does not match/)
    for await (const _ of target.iterate({})) assert.unreachable('nothing written')
    // A manifest whose root the chunks do not rebuild is refused the same way.
    const good = join(dir, 'g')
    const m2 = await exportSnapshot(keep(kv), good, { chunkBytes: 1024 })
    const lying = { ...m2, stateRoot: new Uint8Array(32).fill(7) }
    await refused(importSnapshot(good, lying, target), 'SNAPSHOT_BAD_STATE_ROOT')
    for await (const _ of target.iterate({})) assert.unreachable('nothing written')
    // A truncated file has no manifest to trust.
    writeFileSync(good, readFileSync(good).subarray(0, 500))
    await refused(readSnapshotManifest(good), 'SNAPSHOT_BAD_FILE')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('heights without a certified successor are refused', async () => {
  const dir = tempDir('snapshot')
  try {
    const kv = openMemoryKv()
    await buildChain(kv)
    for (const height of [0, HEIGHT, HEIGHT + 1, 1.5])
      await refused(exportSnapshot(keep(kv), join(dir, 's'), { height }), 'SNAPSHOT_BAD_HEIGHT')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
