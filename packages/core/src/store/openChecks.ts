import { utf8 } from '../bytes/index.ts'
import type { Block } from '../codec/block.ts'
import { CHAIN_ID_RE } from '../codec/limits.ts'
import { sha256 } from '../crypto/hash.ts'
import { StoreError, corrupt } from './errors.ts'
import {
  META_KEYS,
  STORE_FORMAT,
  STORE_PREFIX,
  bytesKey,
  heightKey,
  namespace,
  readU32,
  readU64,
  resultKey,
} from './keys.ts'
import type { KvStore } from './kv.ts'
import { checkCertificate } from './commitChecks.ts'
import { readPrunedBelow } from './prune.ts'
import { readSyncedFrom } from './stateSync.ts'
import { decodeResult, decodeStored, hex, same } from './storedValues.ts'

// What `ChainStore.open` checks of a store before it serves it: the metadata, then the latest blocks.

/**
 * Reads and checks the metadata (format, chain id, genesis hash, height) and that the last stored block
 * is at the recorded height (`searchFrom` undefined: a store written before the tx search index). `undefined` for an empty store (no metadata and no data);
 * `STORE_WRONG_CHAIN` when `expectChainId` is given and differs; `STORE_CORRUPT` naming what is wrong.
 */
export async function readChainMeta(
  kv: KvStore,
  expectChainId: string | undefined,
): Promise<
  { chainId: string; genesisHash: Uint8Array; height: number; searchFrom: number | undefined } | undefined
> {
  const [format, chainIdRaw, genesisHash, heightRaw, searchFromRaw] = await kv.getMany([
    META_KEYS.format,
    META_KEYS.chainId,
    META_KEYS.genesisHash,
    META_KEYS.height,
    META_KEYS.searchFrom,
  ])
  if (
    format === undefined &&
    chainIdRaw === undefined &&
    genesisHash === undefined &&
    heightRaw === undefined
  ) {
    for (const prefix of [STORE_PREFIX.block, STORE_PREFIX.stateRoot, STORE_PREFIX.stateValue]) {
      for await (const _ of kv.iterate({ ...namespace(prefix), limit: 1 })) {
        throw corrupt(
          'metadata',
          `missing, but the store holds data (namespace ${String.fromCharCode(prefix)})`,
        )
      }
    }
    return undefined
  }
  if (format === undefined) throw corrupt('metadata format', 'missing')
  if (format.length !== 1 || format[0] !== STORE_FORMAT)
    throw corrupt('metadata format', `unknown format ${hex(format)}`)
  if (chainIdRaw === undefined) throw corrupt('metadata chainId', 'missing')
  let chainId: string
  try {
    chainId = utf8.decode(chainIdRaw)
  } catch {
    throw corrupt('metadata chainId', 'not UTF-8')
  }
  if (!CHAIN_ID_RE.test(chainId))
    throw corrupt('metadata chainId', `invalid chain id ${JSON.stringify(chainId)}`)
  if (expectChainId !== undefined && expectChainId !== chainId) {
    throw new StoreError('STORE_WRONG_CHAIN', `store belongs to chain ${chainId}, not ${expectChainId}`, {
      stored: chainId,
      expected: expectChainId,
    })
  }
  if (genesisHash === undefined) throw corrupt('metadata genesisHash', 'missing')
  if (genesisHash.length !== 32)
    throw corrupt('metadata genesisHash', `${genesisHash.length} bytes instead of 32`)
  if (heightRaw === undefined) throw corrupt('metadata height', 'missing')
  if (heightRaw.length !== 8) throw corrupt('metadata height', `${heightRaw.length} bytes instead of 8`)
  const height = readU64(heightRaw, 0)
  for await (const [k] of kv.iterate({ ...namespace(STORE_PREFIX.block), reverse: true, limit: 1 })) {
    const last = k.length === 9 ? readU64(k, 1) : -1
    if (last !== height)
      throw corrupt('block index', `last stored block is ${last}, metadata height is ${height}`)
  }
  let searchFrom: number | undefined
  if (searchFromRaw !== undefined) {
    if (searchFromRaw.length !== 8)
      throw corrupt('metadata searchFrom', `${searchFromRaw.length} bytes instead of 8`)
    searchFrom = readU64(searchFromRaw, 0)
    if (searchFrom < 1 || searchFrom > height + 1)
      throw corrupt('metadata searchFrom', `${searchFrom} is not a height from 1 to ${height + 1}`)
  }
  return { chainId, genesisHash, height, searchFrom }
}

/** How many of the latest blocks `open` checks in full (block, links, certificate, results, tx index). */
export const CHECKED_AT_OPEN = 16

/**
 * Checks the last `CHECKED_AT_OPEN` blocks against what is stored about them: each decodes and names
 * its predecessor's hash (the genesis hash below height 1), its hash index, its certificate (decodes,
 * and certifies it or its null fill), its first and last result (decode, with that tx's hash) and
 * tx index entries, and no result past the last. Returns the tip's hash.
 */
export async function checkRecent(
  kv: KvStore,
  chainId: string,
  height: number,
  genesisHash: Uint8Array,
): Promise<Uint8Array> {
  // Heights below the pruned mark have no block any more (see prune.ts).
  const lowest = Math.max(1, await readPrunedBelow(kv))
  // A state-synced store's first block has no results or tx index (nothing certifies them).
  const syncedFrom = await readSyncedFrom(kv)
  const from = Math.max(lowest, height - CHECKED_AT_OPEN + 1)
  let child: Block | undefined
  let tipHash = genesisHash
  for (let h = height; h >= from - 1 && h >= lowest; h--) {
    const block = await checkStoredBlock(kv, chainId, h, h >= from, h === syncedFrom)
    if (h === height) tipHash = block.hash
    if (child && !same(child.header.parentHash, block.hash))
      throw corrupt(
        `block at height ${h + 1}`,
        `names parent ${hex(child.header.parentHash)}, block ${h} is ${hex(block.hash)}`,
      )
    child = block
  }
  if (child && child.header.height === 1 && !same(child.header.parentHash, genesisHash))
    throw corrupt('block at height 1', 'does not name the genesis hash as its parent')
  return tipHash
}

/** One stored block and (when `full`) what is stored with it; see `checkRecent`. */
async function checkStoredBlock(
  kv: KvStore,
  chainId: string,
  height: number,
  full: boolean,
  synced = false,
): Promise<Block> {
  const [bytes, cert] = await kv.getMany([
    heightKey(STORE_PREFIX.block, height),
    heightKey(STORE_PREFIX.certificate, height),
  ])
  if (bytes === undefined)
    throw corrupt(`block at height ${height}`, 'missing (metadata height points past the stored blocks)')
  const block = decodeStored(bytes, `block at height ${height}`, height)
  if (!full) return block
  if (block.header.chainId !== chainId)
    throw corrupt(`block at height ${height}`, `belongs to chain ${block.header.chainId}`)
  if (cert === undefined || cert.length === 0) throw corrupt(`certificate at height ${height}`, 'missing')
  try {
    checkCertificate(cert, block)
  } catch (err) {
    throw corrupt(`certificate at height ${height}`, (err as Error).message)
  }
  if (synced) return block
  // Constant work per block (a full read of 16 blocks of 5,000 txs took 14 s on the test machine):
  // the first and last result and tx index entry, and nothing after the last result. The bytes
  // themselves are covered by the table checksums (`openLevelKv`).
  const n = block.txs.length
  const ends = n === 0 ? [] : n === 1 ? [0] : [0, n - 1]
  const hashes = ends.map((i) => sha256(block.txs[i]!))
  const got = await kv.getMany([
    bytesKey(STORE_PREFIX.blockHash, block.hash),
    resultKey(height, n),
    ...ends.map((i) => resultKey(height, i)),
    ...hashes.map((h) => bytesKey(STORE_PREFIX.txIndex, h)),
  ])
  const at = got[0]
  if (at === undefined || at.length !== 8 || readU64(at, 0) !== height)
    throw corrupt(`hash index of block ${height}`, 'missing or wrong')
  if (got[1] !== undefined)
    throw corrupt(`results of block ${height}`, `extra result ${n} (the block has ${n} txs)`)
  for (const [j, i] of ends.entries()) {
    const bytes = got[2 + j]
    if (bytes === undefined) throw corrupt(`results of block ${height}`, `result ${i} missing`)
    if (!same(decodeResult(bytes, height, i).hash, hashes[j]!))
      throw corrupt(`result ${i} of block ${height}`, 'belongs to another tx')
    const v = got[2 + ends.length + j]
    // A later height: the tx was committed again by code older than STORE_TX_COMMITTED (not damage).
    if (v?.length === 12 && readU64(v, 0) > height) continue
    if (v === undefined || v.length !== 12 || readU64(v, 0) !== height || readU32(v, 8) !== i)
      throw corrupt(`tx index of block ${height}`, `tx ${i} is missing or points elsewhere`)
  }
  return block
}
