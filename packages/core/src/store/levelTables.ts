// Checks LevelDB table files against their own checksums. classic-level opens LevelDB without
// `paranoid_checks` and reads without `verify_checksums` (neither is exposed), so a damaged table is
// otherwise found only when a read happens to touch it, or never when the damage leaves a valid block.
// Format: https://github.com/google/leveldb/blob/main/doc/table_format.md
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'

const FOOTER_BYTES = 48
const TRAILER_BYTES = 5
// kTableMagicNumber 0xdb4775248b80fb57, little-endian.
const MAGIC = Uint8Array.of(0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb)
const MASK_DELTA = 0xa282ead8

/** Why a table file is damaged (a sentence for the operator). */
export class TableDamage extends Error {}

// Slicing-by-8 tables: T[k][b] is the CRC of byte b followed by k zero bytes.
const CRC_TABLES = (() => {
  const t = new Uint32Array(8 * 256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1
    t[n] = c >>> 0
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++)
      t[k * 256 + n] = (t[(k - 1) * 256 + n]! >>> 8) ^ t[t[(k - 1) * 256 + n]! & 0xff]!
  }
  return t
})()

/** CRC-32C (Castagnoli) of `bytes[from, to)`, as LevelDB computes it. */
export function crc32c(bytes: Uint8Array, from = 0, to = bytes.length): number {
  const t = CRC_TABLES
  let c = 0xffffffff
  let i = from
  for (; i + 8 <= to; i += 8) {
    const lo = c ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))
    c =
      t[7 * 256 + (lo & 0xff)]! ^
      t[6 * 256 + ((lo >>> 8) & 0xff)]! ^
      t[5 * 256 + ((lo >>> 16) & 0xff)]! ^
      t[4 * 256 + (lo >>> 24)]! ^
      t[3 * 256 + bytes[i + 4]!]! ^
      t[2 * 256 + bytes[i + 5]!]! ^
      t[256 + bytes[i + 6]!]! ^
      t[bytes[i + 7]!]!
  }
  for (; i < to; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

/** LevelDB's masked form of a stored CRC (so that a CRC of data holding CRCs is not degenerate). */
export const maskCrc = (crc: number): number => ((((crc >>> 15) | (crc << 17)) >>> 0) + MASK_DELTA) >>> 0

interface Cursor {
  buf: Uint8Array
  pos: number
  end: number
}

function varint(c: Cursor, what: string): number {
  let result = 0
  let scale = 1
  for (let i = 0; i < 10; i++) {
    if (c.pos >= c.end) throw new TableDamage(`${what}: truncated varint`)
    const b = c.buf[c.pos++]!
    result += (b & 0x7f) * scale
    if (b < 0x80) {
      if (!Number.isSafeInteger(result)) throw new TableDamage(`${what}: varint out of range`)
      return result
    }
    scale *= 128
  }
  throw new TableDamage(`${what}: varint too long`)
}

interface Handle {
  offset: number
  size: number
}

function handle(c: Cursor, what: string): Handle {
  return { offset: varint(c, what), size: varint(c, what) }
}

/** Snappy raw decompression (LevelDB compresses blocks with it). */
function unsnappy(src: Uint8Array, what: string): Uint8Array {
  const c: Cursor = { buf: src, pos: 0, end: src.length }
  const length = varint(c, `${what}: snappy length`)
  if (length > 64 * 1024 * 1024) throw new TableDamage(`${what}: snappy length ${length} is implausible`)
  const out = new Uint8Array(length)
  let o = 0
  const le = (n: number): number => {
    if (c.pos + n > c.end) throw new TableDamage(`${what}: snappy element truncated`)
    let v = 0
    for (let i = 0; i < n; i++) v += src[c.pos++]! * 2 ** (8 * i)
    return v
  }
  while (c.pos < c.end) {
    const tag = src[c.pos++]!
    const kind = tag & 3
    if (kind === 0) {
      let len = tag >>> 2
      len = len < 60 ? len + 1 : le(len - 59) + 1
      if (c.pos + len > c.end || o + len > length)
        throw new TableDamage(`${what}: snappy literal out of bounds`)
      out.set(src.subarray(c.pos, c.pos + len), o)
      c.pos += len
      o += len
      continue
    }
    let len: number
    let offset: number
    if (kind === 1) {
      len = ((tag >>> 2) & 7) + 4
      offset = ((tag >>> 5) << 8) | le(1)
    } else {
      len = (tag >>> 2) + 1
      offset = le(kind === 2 ? 2 : 4)
    }
    if (offset === 0 || offset > o || o + len > length)
      throw new TableDamage(`${what}: snappy copy out of bounds`)
    for (let i = 0; i < len; i++, o++) out[o] = out[o - offset]!
  }
  if (o !== length) throw new TableDamage(`${what}: snappy output is ${o} bytes, expected ${length}`)
  return out
}

/**
 * Checks the block at `h` against its trailer's CRC (taken over the stored, compressed bytes) and
 * returns its uncompressed contents, or nothing when `decode` is false (data blocks).
 */
function readBlock(file: Uint8Array, h: Handle, limit: number, what: string, decode = true): Uint8Array {
  if (h.offset + h.size + TRAILER_BYTES > limit)
    throw new TableDamage(`${what} at offset ${h.offset} (${h.size} bytes) runs past the end of the table`)
  const end = h.offset + h.size
  const type = file[end]!
  const stored =
    (file[end + 1]! | (file[end + 2]! << 8) | (file[end + 3]! << 16) | (file[end + 4]! << 24)) >>> 0
  const crc = crc32c(file, h.offset, end + 1)
  if (maskCrc(crc) !== stored) throw new TableDamage(`${what} at offset ${h.offset} fails its checksum`)
  const contents = file.subarray(h.offset, end)
  if (type !== 0 && type !== 1)
    throw new TableDamage(`${what} at offset ${h.offset} has unknown compression ${type}`)
  if (!decode || type === 0) return contents
  return unsnappy(contents, what)
}

/** The values of a block's entries (index and metaindex blocks hold block handles as values). */
function blockValues(block: Uint8Array, what: string): Uint8Array[] {
  if (block.length < 4) throw new TableDamage(`${what}: shorter than its restart count`)
  const restarts = new DataView(block.buffer, block.byteOffset, block.byteLength).getUint32(
    block.length - 4,
    true,
  )
  const entriesEnd = block.length - 4 * (restarts + 1)
  if (restarts < 1 || entriesEnd < 0) throw new TableDamage(`${what}: bad restart count ${restarts}`)
  const c: Cursor = { buf: block, pos: 0, end: entriesEnd }
  const values: Uint8Array[] = []
  while (c.pos < c.end) {
    varint(c, what) // shared key bytes
    const unshared = varint(c, what)
    const valueLength = varint(c, what)
    c.pos += unshared
    if (c.pos + valueLength > c.end) throw new TableDamage(`${what}: entry runs past the block`)
    values.push(block.subarray(c.pos, c.pos + valueLength))
    c.pos += valueLength
  }
  return values
}

/**
 * Checks one table file: its footer, the checksum of every block (data, filter, metaindex, index),
 * and that those blocks cover the whole file, so any changed or missing byte is found. Throws
 * TableDamage saying what is wrong.
 */
export function checkTable(input: Uint8Array): void {
  // A plain Uint8Array view (readFile gives a Buffer): keeps the byte loops monomorphic, 8x faster.
  const file =
    input.constructor === Uint8Array
      ? input
      : new Uint8Array(input.buffer, input.byteOffset, input.byteLength)
  if (file.length < FOOTER_BYTES) throw new TableDamage(`${file.length} bytes, shorter than a table footer`)
  const footerAt = file.length - FOOTER_BYTES
  for (let i = 0; i < 8; i++) {
    if (file[footerAt + 40 + i] !== MAGIC[i]) throw new TableDamage('footer has no table magic (truncated?)')
  }
  const footer: Cursor = { buf: file, pos: footerAt, end: footerAt + 40 }
  const metaHandle = handle(footer, 'footer')
  const indexHandle = handle(footer, 'footer')
  const covered: Handle[] = [metaHandle, indexHandle]
  for (const v of blockValues(readBlock(file, indexHandle, footerAt, 'index block'), 'index block')) {
    const h = handle({ buf: v, pos: 0, end: v.length }, 'index entry')
    readBlock(file, h, footerAt, 'data block', false)
    covered.push(h)
  }
  for (const v of blockValues(readBlock(file, metaHandle, footerAt, 'metaindex block'), 'metaindex block')) {
    const h = handle({ buf: v, pos: 0, end: v.length }, 'metaindex entry')
    readBlock(file, h, footerAt, 'meta block', false)
    covered.push(h)
  }
  covered.sort((a, b) => a.offset - b.offset)
  let at = 0
  for (const h of covered) {
    if (h.offset !== at) throw new TableDamage(`bytes ${at}..${h.offset} belong to no block`)
    at = h.offset + h.size + TRAILER_BYTES
  }
  if (at !== footerAt) throw new TableDamage(`bytes ${at}..${footerAt} belong to no block`)
}

/** Checks the named table files of the LevelDB folder `dir` (the live ones: a missing one is damage). */
export async function checkTables(dir: string, names: readonly string[]): Promise<void> {
  for (const name of names) {
    let bytes: Uint8Array
    try {
      bytes = await readFile(join(dir, name))
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT')
        throw new TableDamage(`${name}: missing, though the manifest lists it`)
      throw err
    }
    try {
      checkTable(bytes)
    } catch (err) {
      if (err instanceof TableDamage) throw new TableDamage(`${name}: ${err.message}`)
      throw err
    }
  }
}
