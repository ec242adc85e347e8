// Reads which table files a LevelDB folder holds live, from its manifest, without opening LevelDB:
// the store checks those tables before LevelDB opens the folder, since LevelDB's start-up compaction
// would otherwise read a damaged table (and classic-level's build aborts the process on one).
// Formats: https://github.com/google/leveldb/blob/main/doc/log_format.md (records) and
// db/version_edit.cc (the VersionEdit tags).
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { crc32c, maskCrc } from './levelTables.ts'

const BLOCK_BYTES = 32 * 1024
const HEADER_BYTES = 7
const FULL = 1
const FIRST = 2
const MIDDLE = 3
const LAST = 4

/** Why a manifest could not be read (a sentence for the operator). */
export class ManifestDamage extends Error {}

interface Cursor {
  buf: Uint8Array
  pos: number
}

function varint(c: Cursor): number {
  let result = 0
  let scale = 1
  for (let i = 0; i < 10; i++) {
    if (c.pos >= c.buf.length) throw new ManifestDamage('truncated varint in a version edit')
    const b = c.buf[c.pos++]!
    result += (b & 0x7f) * scale
    if (b < 0x80) {
      if (!Number.isSafeInteger(result)) throw new ManifestDamage('varint out of range in a version edit')
      return result
    }
    scale *= 128
  }
  throw new ManifestDamage('varint too long in a version edit')
}

function skipSlice(c: Cursor): void {
  const n = varint(c)
  if (c.pos + n > c.buf.length) throw new ManifestDamage('slice runs past a version edit')
  c.pos += n
}

/**
 * The records of a LevelDB log file. A record cut short at the end of the file is dropped, as LevelDB
 * does (the writer died while appending it); a checksum or framing error is damage.
 */
export function logRecords(file: Uint8Array): Uint8Array[] {
  const records: Uint8Array[] = []
  let parts: Uint8Array[] | undefined
  let pos = 0
  while (pos < file.length) {
    const left = BLOCK_BYTES - (pos % BLOCK_BYTES)
    if (left < HEADER_BYTES) {
      pos += left // block trailer
      continue
    }
    if (pos + HEADER_BYTES > file.length) break // header cut short at the end
    const stored =
      (file[pos]! | (file[pos + 1]! << 8) | (file[pos + 2]! << 16) | (file[pos + 3]! << 24)) >>> 0
    const length = file[pos + 4]! | (file[pos + 5]! << 8)
    const type = file[pos + 6]!
    if (type === 0 && length === 0) {
      pos += left // zero padding written by a preallocating writer
      continue
    }
    if (HEADER_BYTES + length > left) throw new ManifestDamage(`record at offset ${pos} runs past its block`)
    if (pos + HEADER_BYTES + length > file.length) break // payload cut short at the end
    if (maskCrc(crc32c(file, pos + 6, pos + HEADER_BYTES + length)) !== stored)
      throw new ManifestDamage(`record at offset ${pos} fails its checksum`)
    const data = file.subarray(pos + HEADER_BYTES, pos + HEADER_BYTES + length)
    pos += HEADER_BYTES + length
    if (type === FULL) {
      if (parts) throw new ManifestDamage(`record at offset ${pos} interrupts a fragmented record`)
      records.push(data)
    } else if (type === FIRST) {
      if (parts) throw new ManifestDamage(`record at offset ${pos} interrupts a fragmented record`)
      parts = [data]
    } else if (type === MIDDLE || type === LAST) {
      if (!parts) throw new ManifestDamage(`record at offset ${pos} continues no record`)
      parts.push(data)
      if (type === LAST) {
        records.push(Buffer.concat(parts))
        parts = undefined
      }
    } else throw new ManifestDamage(`record at offset ${pos} has unknown type ${type}`)
  }
  return records
}

/** Applies one VersionEdit to `live` (key `level:number`, value file number). */
function applyEdit(edit: Uint8Array, live: Map<string, number>): void {
  const c: Cursor = { buf: edit, pos: 0 }
  while (c.pos < edit.length) {
    const tag = varint(c)
    if (tag === 1)
      skipSlice(c) // comparator name
    else if (tag === 2 || tag === 3 || tag === 4 || tag === 9)
      varint(c) // log, next file, sequence, prev log
    else if (tag === 5) {
      varint(c) // level
      skipSlice(c) // compaction pointer
    } else if (tag === 6) {
      const level = varint(c)
      live.delete(`${level}:${varint(c)}`)
    } else if (tag === 7) {
      const level = varint(c)
      const number = varint(c)
      varint(c) // file size
      skipSlice(c) // smallest key
      skipSlice(c) // largest key
      live.set(`${level}:${number}`, number)
    } else throw new ManifestDamage(`unknown version edit tag ${tag}`)
  }
}

/**
 * The names of the table files LevelDB's manifest lists as live in `dir`, or undefined when the folder
 * holds no database yet. A table file not listed is one a crash left behind: LevelDB deletes it when
 * it opens. Throws ManifestDamage when CURRENT or the manifest cannot be read as LevelDB writes them.
 */
export function liveTables(dir: string): string[] | undefined {
  let current: string
  try {
    current = readFileSync(join(dir, 'CURRENT'), 'latin1')
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined
    throw err
  }
  const name = current.endsWith('\n') ? current.slice(0, -1) : current
  if (!/^MANIFEST-\d+$/.test(name))
    throw new ManifestDamage(`CURRENT names no manifest (${JSON.stringify(current)})`)
  let file: Uint8Array
  try {
    file = readFileSync(join(dir, name))
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT')
      throw new ManifestDamage(`${name}, named by CURRENT, is missing`)
    throw err
  }
  const live = new Map<string, number>()
  try {
    for (const edit of logRecords(file)) applyEdit(edit, live)
  } catch (err) {
    if (err instanceof ManifestDamage) throw new ManifestDamage(`${name}: ${err.message}`)
    throw err
  }
  const numbers = [...new Set(live.values())].sort((a, b) => a - b)
  return numbers.map((n) => {
    const base = String(n).padStart(6, '0')
    // Tables are `.ldb`; databases from LevelDB before 1.14 may still hold `.sst` ones.
    return existsSync(join(dir, `${base}.sst`)) ? `${base}.sst` : `${base}.ldb`
  })
}
