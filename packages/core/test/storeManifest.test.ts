// The manifest reader that tells which LevelDB tables are live, checked against folders LevelDB
// itself wrote: the live tables are checked before LevelDB opens a folder (storeTables.test.ts).
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Level } from 'level'
import { isCityError, openLevelKv } from '@cityledger/core'
import { Rng, testSeed } from '@cityledger/core/testing'
import { liveTables, logRecords } from '../src/store/levelManifest.ts'
import { tempDir } from './helpers/backends.ts'

const SEED = testSeed(20261203)
const SMALL = { writeBufferSize: 64 * 1024, maxFileSize: 64 * 1024 }
const tables = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.ldb') || f.endsWith('.sst'))
    .sort()
const manifestOf = (dir: string) => join(dir, readFileSync(join(dir, 'CURRENT'), 'latin1').trim())

/** A LevelDB folder with many tables and compactions behind it, closed; what was written (hex keys). */
async function build(dir: string, rng: Rng): Promise<Map<string, Uint8Array>> {
  const written = new Map<string, Uint8Array>()
  const kv = await openLevelKv(dir, SMALL)
  for (let round = 0; round < 40; round++) {
    const ops = Array.from({ length: 200 }, () => ({
      type: 'put' as const,
      key: rng.bytes(12),
      value: rng.bytes(rng.int(200)),
    }))
    for (const op of ops) written.set(Buffer.from(op.key).toString('hex'), op.value)
    await kv.write(ops)
  }
  await kv.close()
  return written
}

const openResult = (dir: string) =>
  openLevelKv(dir, SMALL).then(
    async (kv) => {
      await kv.close()
      return 'OK'
    },
    (err) => (isCityError(err) ? `${err.code}: ${err.message}` : String(err)),
  )

/** The table numbers LevelDB itself holds live (classic-level's `leveldb.sstables` property), sorted. */
const sstables = (db: Level<Uint8Array, Uint8Array>) =>
  [
    ...(db as unknown as { getProperty(name: string): string })
      .getProperty('leveldb.sstables')
      .matchAll(/^ (\d+):\d+\[/gm),
  ]
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b)

test(`the manifest lists the tables LevelDB holds live, while it runs and after (SEED=${SEED})`, async () => {
  const root = tempDir('manifest')
  try {
    const dir = join(root, 'db')
    const rng = new Rng(SEED)
    await build(dir, rng)
    const db = new Level<Uint8Array, Uint8Array>(dir, {
      keyEncoding: 'view',
      valueEncoding: 'view',
      ...SMALL,
    })
    await db.open()
    for (let round = 0; round < 30; round++) {
      await db.batch(
        Array.from({ length: 100 }, () => ({
          type: 'put' as const,
          key: rng.bytes(12),
          value: rng.bytes(150),
        })),
      )
      // LevelDB writes a version edit to the manifest, then installs it: the two can differ for a
      // moment while a compaction finishes, but must agree once it has (a wrong reading never does).
      let agreed = false
      for (let look = 0; look < 10_000 && !agreed; look++) {
        const listed = liveTables(dir)!.map((t) => Number.parseInt(t, 10))
        agreed = listed.join() === sstables(db).join()
        if (!agreed) await new Promise(setImmediate)
      }
      assert.ok(agreed, `round ${round}: manifest ${liveTables(dir)} vs LevelDB ${sstables(db)}`)
    }
    await db.close()
    assert.ok(liveTables(dir)!.length >= 3)
    assert.is(liveTables(join(root, 'none')), undefined, 'no database yet')
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
})

test('records longer than a log block come back whole (LevelDB writes them in fragments)', async () => {
  const root = tempDir('manifest-log')
  try {
    const dir = join(root, 'db')
    const rng = new Rng(SEED)
    const big = rng.bytes(100_000) // three blocks of the write-ahead log
    const kv = await openLevelKv(dir)
    await kv.write([{ type: 'put', key: Uint8Array.of(1), value: big }], { sync: true })
    await kv.write([{ type: 'put', key: Uint8Array.of(2), value: Uint8Array.of(7) }], { sync: true })
    const log = readdirSync(dir).find((f) => f.endsWith('.log'))!
    const bytes = readFileSync(join(dir, log))
    await kv.close()
    const records = logRecords(bytes)
    assert.is(records.length, 2)
    // A write batch: 8-byte sequence, 4-byte count, then the entries (the value last here).
    assert.equal(Buffer.from(records[0]!.subarray(records[0]!.length - big.length)), Buffer.from(big))
    assert.is(records[1]!.at(-1), 7)
    // Cut short at the end, as by a crash mid-append: the partial record is dropped, not damage.
    assert.is(logRecords(bytes.subarray(0, bytes.length - 3)).length, 1)
    assert.is(logRecords(bytes.subarray(0, 50_000)).length, 0)
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
})

test('a table a crash left behind (not in the manifest) does not stop the store from opening', async () => {
  const root = tempDir('manifest-leftover')
  try {
    const dir = join(root, 'db')
    await build(dir, new Rng(SEED))
    writeFileSync(join(dir, '999999.ldb'), new Rng(SEED).bytes(5000))
    assert.is(await openResult(dir), 'OK')
    assert.not.ok(tables(dir).includes('999999.ldb'), 'LevelDB deletes the leftover')
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
})

test('a damaged or missing manifest, or a missing live table, is refused with a message naming it', async () => {
  const root = tempDir('manifest-damage')
  try {
    const dir = join(root, 'db')
    await build(dir, new Rng(SEED))
    const manifest = manifestOf(dir)
    const original = readFileSync(manifest)
    const damaged = Buffer.from(original)
    damaged[20]! ^= 0xff
    writeFileSync(manifest, damaged)
    const got = await openResult(dir)
    assert.match(
      got,
      /^STORE_CORRUPT: .*LevelDB manifest MANIFEST-\d+: record at offset \d+ fails its checksum/,
      got,
    )
    writeFileSync(manifest, original)
    // A record cut short at the tail is what a crash while appending leaves: LevelDB reads the edits
    // before it (here: the first record's header and 3 bytes of it, appended again).
    writeFileSync(manifest, Buffer.concat([original, original.subarray(0, 10)]))
    assert.is(await openResult(dir), 'OK')
    const table = tables(dir)[0]!
    rmSync(join(dir, table))
    assert.match(await openResult(dir), new RegExp(`^STORE_CORRUPT: .*LevelDB table ${table}: missing`))
    writeFileSync(join(dir, 'CURRENT'), 'MANIFEST-424242\n')
    assert.match(
      await openResult(dir),
      /^STORE_CORRUPT: .*LevelDB manifest MANIFEST-424242, named by CURRENT, is missing/,
    )
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
})

test.run()
