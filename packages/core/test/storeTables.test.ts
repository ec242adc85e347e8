// Damaged LevelDB table files are found when the store opens (issue #11 point 6), whichever table is
// hit: before, a table holding only old blocks went unnoticed until a read of one of them failed.
import { cpSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ChainStore, type KvStore, isCityError, openLevelKv } from '@cityledger/core'
import { Rng, testSeed } from '@cityledger/core/testing'
import { liveTables } from '../src/store/levelManifest.ts'
import { crc32c } from '../src/store/levelTables.ts'
import { tempDir } from './helpers/backends.ts'
import { CHAIN_ID, genesisWrites, nextBlock } from './helpers/chainFixture.ts'

const SEED = testSeed(20261202)
const BLOCKS = 80
// A small memtable so that a short chain is spread over several table files (the node uses 32 MiB).
const SMALL = { writeBufferSize: 64 * 1024, maxFileSize: 64 * 1024 }

// The live tables, from the manifest. A table file it does not list is a flush that a close cut short
// (how often depends on timing): LevelDB deletes it, or writes a new table over it, when it opens, so
// its damage is harmless and not refused (storeManifest.test.ts).
const tables = (dir: string) => liveTables(dir) ?? []

/** A LevelDB store of BLOCKS blocks whose data sits in table files (closed, reopened, closed). */
async function buildStore(dir: string): Promise<void> {
  const store = await ChainStore.open(await openLevelKv(dir, SMALL))
  await store.initGenesis({ chainId: CHAIN_ID, stateWrites: genesisWrites(SEED) })
  for (let h = 1; h <= BLOCKS; h++) await store.commitBlock(nextBlock(store, SEED, { txCount: 12 }))
  await store.close()
  // Reopening replays the write-ahead log into a level-0 table.
  await (await ChainStore.open(await openLevelKv(dir, SMALL))).close()
}

/** Opens a copy of `dir` damaged by `damage`; 'OK' or the error's code and message. */
async function openDamaged(dir: string, damage: (copy: string) => void): Promise<string> {
  const copy = `${dir}-copy`
  rmSync(copy, { recursive: true, force: true })
  cpSync(dir, copy, { recursive: true })
  try {
    damage(copy)
    let kv: KvStore | undefined
    try {
      kv = await openLevelKv(copy, SMALL)
      await ChainStore.open(kv)
      return 'OK'
    } catch (err) {
      if (isCityError(err)) return `${err.code}: ${err.message}`
      throw err
    } finally {
      await kv?.close()
    }
  } finally {
    rmSync(copy, { recursive: true, force: true })
  }
}

const flip = (file: string, rng: Rng, from: number, to: number) => {
  const b = readFileSync(file)
  for (let i = 0; i < 16; i++) b[from + rng.int(to - from)]! ^= 0xff
  writeFileSync(file, b)
}

test(`a damaged table file, whichever it is, is refused when the store opens (SEED=${SEED})`, async () => {
  const root = tempDir('tables')
  const dir = join(root, 'db')
  try {
    await buildStore(dir)
    const files = tables(dir)
    assert.ok(files.length >= 2, `expected several table files, got ${files.length}`)
    assert.is(await openDamaged(dir, () => {}), 'OK')
    const rng = new Rng(SEED)
    const missed: string[] = []
    for (const t of files) {
      const size = statSync(join(dir, t)).size
      const damages: [string, (copy: string) => void][] = [
        ['truncated to half', (copy) => truncateSync(join(copy, t), Math.floor(size / 2))],
        ['16 bytes flipped in its first half', (copy) => flip(join(copy, t), rng, 0, Math.floor(size / 2))],
        ['16 bytes flipped anywhere', (copy) => flip(join(copy, t), rng, 0, size)],
      ]
      for (const [what, damage] of damages) {
        const got = await openDamaged(dir, damage)
        if (!/^STORE_CORRUPT: .*LevelDB table/.test(got) || !got.includes(t))
          missed.push(`${t} ${what}: ${got}`)
      }
    }
    assert.equal(missed, [], `damage not refused with a message naming the table:\n${missed.join('\n')}`)
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
})

/** Every file of `dir` with its bytes, to compare a folder before and after. */
const snapshot = (dir: string) =>
  Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f)).toString('base64')]))

// CI, once: opening a damaged copy aborted the process (SIGABRT, LevelDB's TableBuilder::Add key-order
// assertion). LevelDB was opened before the tables were checked, and its start-up compaction read the
// damaged table. The tables the manifest lists are now checked before LevelDB opens the folder, so a
// refused store is never touched: nothing can compact it, and its files are left as they were.
test('a damaged store is refused before LevelDB opens it: its folder is left byte for byte as it was', async () => {
  const root = tempDir('tables-untouched')
  const dir = join(root, 'db')
  try {
    await buildStore(dir)
    const rng = new Rng(SEED + 1)
    for (const t of tables(dir)) {
      const copy = join(root, `copy-${t}`)
      cpSync(dir, copy, { recursive: true })
      flip(join(copy, t), rng, 0, statSync(join(copy, t)).size)
      const before = snapshot(copy)
      const got = await openLevelKv(copy, SMALL).then(
        async (kv) => {
          await kv.close()
          return 'OK'
        },
        (err) => (isCityError(err) ? `${err.code}: ${err.message}` : String(err)),
      )
      assert.match(got, /^STORE_CORRUPT: .*LevelDB table/, `${t}: ${got}`)
      assert.equal(Object.keys(snapshot(copy)), Object.keys(before), `${t}: files added or removed`)
      assert.ok(
        Object.entries(before).every(([f, b]) => snapshot(copy)[f] === b),
        `${t}: a file of the refused store was rewritten`,
      )
      rmSync(copy, { recursive: true, force: true })
    }
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
})

test('a store whose tables are intact opens, and its last blocks read back', async () => {
  const root = tempDir('tables-ok')
  const dir = join(root, 'db')
  try {
    await buildStore(dir)
    const store = await ChainStore.open(await openLevelKv(dir, SMALL))
    assert.is(store.height(), BLOCKS)
    for (let h = 1; h <= BLOCKS; h++) assert.is((await store.getBlock(h))?.header.height, h)
    await store.close()
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
})

test('CRC-32C matches the published vectors (RFC 3720 B.4; LevelDB crc32c_test)', () => {
  assert.is(crc32c(new Uint8Array(32)), 0x8a9136aa)
  assert.is(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43)
  assert.is(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e)
  assert.is(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c)
  assert.is(crc32c(new TextEncoder().encode('123456789')), 0xe3069283)
  // Any start and end (the 8-byte loop and the tail agree).
  const b = new TextEncoder().encode('xx123456789yy')
  assert.is(crc32c(b, 2, 11), 0xe3069283)
})

test.run()
