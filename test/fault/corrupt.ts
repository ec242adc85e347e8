// Damage a stopped node's data folder the way crashes and bad disks do: a truncated or garbled
// consensus journal entry, a truncated or bit-flipped LevelDB file. Each returns what it did.
import { readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { STORE_PREFIX, liveTables, openLevelKv, subKv } from '@cityledger/core'
import type { Rng } from '@cityledger/core/testing'

/** Truncates an existing journal entry (or writes a garbage one when the journal is empty). */
export async function corruptJournal(dataDir: string, rng: Rng): Promise<string> {
  const kv = await openLevelKv(dataDir)
  try {
    const journal = subKv(kv, STORE_PREFIX.journal)
    const entries: [Uint8Array, Uint8Array][] = []
    for await (const e of journal.iterate({})) entries.push(e)
    if (entries.length && rng.chance(0.7)) {
      const [key, value] = rng.pick(entries)
      const cut = value.subarray(0, rng.int(Math.max(1, value.length - 1)))
      await journal.write([{ type: 'put', key, value: cut }], { sync: true })
      return `journal entry truncated from ${value.length} to ${cut.length} bytes`
    }
    const key = new Uint8Array(8)
    new DataView(key.buffer).setBigUint64(0, 2n ** 40n)
    await journal.write([{ type: 'put', key, value: rng.bytes(rng.range(1, 64)) }], { sync: true })
    return 'garbage journal entry'
  } finally {
    await kv.close()
  }
}

// The live tables (from the manifest): a table file it does not list is a flush a close cut short,
// which LevelDB deletes or writes over when it opens, so damaging it proves nothing.
const tableFiles = (dataDir: string) => liveTables(dataDir) ?? []

/**
 * Makes sure a stopped node's store has LevelDB table files (with a 32 MiB write buffer a short run
 * keeps everything in the log): opening the store replays the log into a level-0 table. Returns how
 * many table files there are.
 */
export async function ensureTables(dataDir: string): Promise<number> {
  if (!tableFiles(dataDir).length) await (await openLevelKv(dataDir)).close()
  return tableFiles(dataDir).length
}

/** Which LevelDB file `corruptStoreFile` damages, and how. */
export type StoreDamage = 'truncateManifest' | 'missingManifest' | 'truncateTable' | 'flipTable'
const DAMAGES: StoreDamage[] = ['truncateManifest', 'missingManifest', 'truncateTable', 'flipTable']

/**
 * Damages one LevelDB file: the MANIFEST truncated, CURRENT pointing nowhere, or a table file
 * truncated or with flipped bytes in its middle (`damage`, or a random one).
 */
export function corruptStoreFile(dataDir: string, rng: Rng, damage?: StoreDamage): string {
  const files = readdirSync(dataDir)
  const tables = tableFiles(dataDir)
  const manifest = files.find((f) => f.startsWith('MANIFEST-'))
  const choice = damage ? DAMAGES.indexOf(damage) : rng.int(tables.length ? 4 : 2)
  if (choice >= 2 && !tables.length) throw new Error(`no table file in ${dataDir} to damage`)
  if (choice === 0 && manifest) {
    const p = join(dataDir, manifest)
    truncateSync(p, Math.floor(statSync(p).size / 2))
    return `store file ${manifest} truncated to half`
  }
  if (choice <= 1) {
    writeFileSync(join(dataDir, 'CURRENT'), 'MANIFEST-999999\n')
    return 'store file CURRENT pointing at a missing MANIFEST'
  }
  const t = rng.pick(tables)
  const p = join(dataDir, t)
  const size = statSync(p).size
  if (choice === 2) {
    truncateSync(p, Math.floor(size / 2))
    return `store table ${t} truncated to half`
  }
  const b = readFileSync(p)
  for (let i = 0; i < 16; i++) b[rng.int(b.length)]! ^= 0xff
  writeFileSync(p, b)
  return `store table ${t} with 16 flipped bytes`
}
