/**
 * Key layout: one ASCII byte per namespace (LevelDB has no sublevels of its own that batch across
 * namespaces cheaply, and one byte keeps keys short). Heights are 8-byte big-endian so that byte order
 * is numeric order and a reverse scan finds the latest entry.
 *
 * | prefix | key after prefix              | value                                        |
 * | `B`    | height                        | block bytes `[headerBytes, [tx...]]`         |
 * | `H`    | block hash (32)               | height                                       |
 * | `C`    | height                        | commit certificate bytes                     |
 * | `T`    | tx hash (32)                  | height (8) + index (4)                       |
 * | `R`    | height + index (4)            | tx result `[txHash, code, message, [[service, name, data]...]]` |
 * | `E`    | height                        | end-of-block events `[[service, name, data]...]` (msgpack)      |
 * | `N`    | node hash (32)                | state tree page (see stateTree)              |
 * | `V`    | state key                     | latest state value                           |
 * | `S`    | height                        | state root after that height (32)            |
 * | `X`    | kind + term + height + index  | tx hash (32): the tx search index (see txSearch) |
 * | `U`    | height                        | state keys that block deleted (u32 len + bytes each; see rollback) |
 * | `J`    | (consensus journal, owned by its user)                                       |
 * | `W`    | (validator history, owned by its user: the node's validatorHistoryStore)     |
 * | `M`    | name (ASCII)                  | metadata: chain id, height, genesis hash...  |
 */
export const STORE_PREFIX = {
  block: 0x42, // B
  blockHash: 0x48, // H
  certificate: 0x43, // C
  txIndex: 0x54, // T
  result: 0x52, // R
  blockEvents: 0x45, // E
  search: 0x58, // X
  undo: 0x55, // U
  stateNode: 0x4e, // N
  stateValue: 0x56, // V
  stateRoot: 0x53, // S
  journal: 0x4a, // J
  validatorHistory: 0x57, // W
  meta: 0x4d, // M
} as const

const TWO32 = 2 ** 32

export function writeU64(out: Uint8Array, offset: number, n: number): void {
  const hi = Math.floor(n / TWO32)
  const lo = n >>> 0
  out[offset] = hi >>> 24
  out[offset + 1] = (hi >>> 16) & 0xff
  out[offset + 2] = (hi >>> 8) & 0xff
  out[offset + 3] = hi & 0xff
  out[offset + 4] = lo >>> 24
  out[offset + 5] = (lo >>> 16) & 0xff
  out[offset + 6] = (lo >>> 8) & 0xff
  out[offset + 7] = lo & 0xff
}

export function readU64(b: Uint8Array, offset: number): number {
  const hi = ((b[offset]! << 24) | (b[offset + 1]! << 16) | (b[offset + 2]! << 8) | b[offset + 3]!) >>> 0
  const lo = ((b[offset + 4]! << 24) | (b[offset + 5]! << 16) | (b[offset + 6]! << 8) | b[offset + 7]!) >>> 0
  return hi * TWO32 + lo
}

export function writeU32(out: Uint8Array, offset: number, n: number): void {
  out[offset] = n >>> 24
  out[offset + 1] = (n >>> 16) & 0xff
  out[offset + 2] = (n >>> 8) & 0xff
  out[offset + 3] = n & 0xff
}

export function readU32(b: Uint8Array, offset: number): number {
  return ((b[offset]! << 24) | (b[offset + 1]! << 16) | (b[offset + 2]! << 8) | b[offset + 3]!) >>> 0
}

/** `prefix || height(8)`. */
export function heightKey(prefix: number, height: number): Uint8Array {
  const k = new Uint8Array(9)
  k[0] = prefix
  writeU64(k, 1, height)
  return k
}

/** `prefix || bytes`. */
export function bytesKey(prefix: number, bytes: Uint8Array): Uint8Array {
  const k = new Uint8Array(1 + bytes.length)
  k[0] = prefix
  k.set(bytes, 1)
  return k
}

export function resultKey(height: number, index: number): Uint8Array {
  const k = new Uint8Array(13)
  k[0] = STORE_PREFIX.result
  writeU64(k, 1, height)
  writeU32(k, 9, index)
  return k
}

export function metaKey(name: string): Uint8Array {
  const k = new Uint8Array(1 + name.length)
  k[0] = STORE_PREFIX.meta
  for (let i = 0; i < name.length; i++) k[i + 1] = name.charCodeAt(i)
  return k
}

/** The format byte stored under `META_KEYS.format`; a store of another format is refused at open. */
export const STORE_FORMAT = 1
/**
 * The chain store's metadata entries (format 1 byte, chain id UTF-8, genesis hash 32, height u64, and
 * `searchFrom` u64: the first height the tx search index covers, absent in a store written before it).
 */
export const META_KEYS = {
  format: metaKey('format'),
  chainId: metaKey('chainId'),
  genesisHash: metaKey('genesisHash'),
  height: metaKey('height'),
  searchFrom: metaKey('searchFrom'),
}

/** The whole namespace of `prefix` as a range. */
export function namespace(prefix: number): { gte: Uint8Array; lt: Uint8Array } {
  return { gte: Uint8Array.of(prefix), lt: Uint8Array.of(prefix + 1) }
}

export function u64(n: number): Uint8Array {
  const b = new Uint8Array(8)
  writeU64(b, 0, n)
  return b
}
