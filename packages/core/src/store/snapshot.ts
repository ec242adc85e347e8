import { open, rename, rm } from 'node:fs/promises'
import { decodeBlock } from '../codec/block.ts'
import { decodeStrict, encode } from '../codec/msgpack.ts'
import { sha256 } from '../crypto/hash.ts'
import { CityError } from '../errors/index.ts'
import { corrupt } from './errors.ts'
import { STORE_PREFIX, heightKey, metaKey, readU64 } from './keys.ts'
import type { KvOp, KvStore } from './kv.ts'
import { checkRecent, readChainMeta } from './openChecks.ts'
import { decodeUndo, UNDO_PREFIX } from './rollback.ts'
import { type Hash32, hashFromBytes, hashHex, sha256Str } from './stateHash.ts'
import { syncedChainOps } from './stateSync.ts'
import { StateTree } from './stateTree.ts'
import { latestKeysByPath, leavesOf, loadNode } from './stateWalk.ts'
import { decodeStored, same } from './storedValues.ts'

/**
 * A state snapshot file: `MAGIC`, then one record per chunk, then the manifest record, then the
 * manifest's length (u32). A record is `u32 length || msgpack`; a chunk is `[index, [[key, value]...]]`
 * (keys in tree path order) of about `chunkBytes`, and the manifest names each chunk's SHA-256 and size,
 * so an importer checks every chunk before it uses it, and reads the manifest first (the length at the
 * end says where it starts).
 *
 * The state after height h is certified by block h + 1, whose header carries it as `prevStateRoot` (and
 * block h's hash as `parentHash`): the manifest holds block h's header and certificate (the tip the
 * state belongs to) and block h + 1's header and certificate (what certifies the root). So a snapshot
 * can be taken at any height below the head whose root is still stored and whose next block is not a
 * null fill (a null fill's certificate certifies no header).
 */
export const SNAPSHOT_MAGIC = Uint8Array.from(Buffer.from('CLSNAP1\n', 'latin1'))
export const SNAPSHOT_FORMAT = 1
/** Default chunk size (keys and values), 4 MiB. */
export const SNAPSHOT_CHUNK_BYTES = 4 * 1024 * 1024
/** Largest record an importer reads (a chunk holds at least one entry, whatever its size). */
const MAX_RECORD_BYTES = 256 * 1024 * 1024
/** Most validator history entries a manifest may carry (one per validator-set change). */
export const MAX_SNAPSHOT_HISTORY = 65_536
/** Key of the snapshot's manifest (without the chunk list) in an imported state folder. */
export const SNAPSHOT_META_KEY = metaKey('snapshot')

export type SnapshotErrorCode =
  | 'SNAPSHOT_BAD_HEIGHT'
  | 'SNAPSHOT_KEYS_UNKNOWN'
  | 'SNAPSHOT_BAD_FILE'
  | 'SNAPSHOT_BAD_CHUNK'
  | 'SNAPSHOT_BAD_STATE_ROOT'

const fail = (code: SnapshotErrorCode, message: string, details: Record<string, unknown> = {}) =>
  new CityError<SnapshotErrorCode>(code, message, details)

/** What a snapshot file declares; everything an importer must check before trusting the chunks. */
export interface SnapshotManifest {
  format: number
  chainId: string
  genesisHash: Uint8Array
  /** The height whose state this is. */
  height: number
  /** State root after `height`. */
  stateRoot: Uint8Array
  /** Header bytes and encoded commit certificate of block `height`. */
  header: Uint8Array
  certificate: Uint8Array
  /** Header bytes and certificate of block `height + 1`: its `prevStateRoot` is `stateRoot`. */
  nextHeader: Uint8Array
  nextCertificate: Uint8Array
  /**
   * Block `height` whole (`[headerBytes, [tx...]]`; absent in files of earlier versions): with it the
   * import is a store that opens at `height` (like a state-synced one), without it only the state.
   */
  block?: Uint8Array
  /**
   * The exporting node's validator history (node/validatorHistory.ts: one encoded entry per
   * validator-set change, from change 1 on; absent in files of earlier versions, which then verify
   * against the genesis set only). Opaque here: the importer walks them from its genesis set to learn
   * the set that signed the certificates above.
   */
  validatorHistory?: Uint8Array[]
  /** Number of state entries. */
  entries: number
  chunks: { hash: Uint8Array; bytes: number; entries: number }[]
}

export interface ExportOptions {
  /** Default: the head minus one (the highest height whose root a stored header certifies). */
  height?: number
  chunkBytes?: number
  /** Stored in the manifest as `validatorHistory` (at most MAX_SNAPSHOT_HISTORY). */
  validatorHistory?: readonly Uint8Array[]
  /** Called after each chunk is written. */
  onChunk?: (written: number, entries: number) => void
}

const u32 = (n: number): Uint8Array => {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}

/** The key of every leaf of the tree at `height` (path -> key), from V and the rollback records above it. */
async function keysAt(kv: KvStore, height: number): Promise<Map<Hash32, Uint8Array>> {
  const keys = await latestKeysByPath(kv)
  for await (const [k, v] of kv.iterate({
    gte: heightKey(UNDO_PREFIX, height + 1),
    lt: Uint8Array.of(UNDO_PREFIX + 1),
  }))
    for (const key of decodeUndo(v, readU64(k, 1))) keys.set(sha256Str(key), key)
  return keys
}

/**
 * Writes the state after `height` of the chain in `kv` (which nothing else may have open) to `file`,
 * through `file.partial` renamed at the end (a failed export leaves no file). Refuses a height without
 * a stored root or certified successor (`SNAPSHOT_BAD_HEIGHT`) and a state whose keys are not all known
 * (`SNAPSHOT_KEYS_UNKNOWN`: a key deleted, above `height`, by a block committed before rollback records).
 */
export async function exportSnapshot(
  kv: KvStore,
  file: string,
  options: ExportOptions = {},
): Promise<SnapshotManifest> {
  const meta = await readChainMeta(kv, undefined)
  if (meta === undefined) throw fail('SNAPSHOT_BAD_HEIGHT', 'the store holds no chain')
  await checkRecent(kv, meta.chainId, meta.height, meta.genesisHash)
  const height = options.height ?? meta.height - 1
  if ((options.validatorHistory?.length ?? 0) > MAX_SNAPSHOT_HISTORY)
    throw new RangeError(`validatorHistory: more than ${MAX_SNAPSHOT_HISTORY} entries`)
  const chunkBytes = options.chunkBytes ?? SNAPSHOT_CHUNK_BYTES
  if (!Number.isSafeInteger(height) || height < 1 || height >= meta.height)
    throw fail(
      'SNAPSHOT_BAD_HEIGHT',
      `height ${height}: a snapshot needs a block and its certified successor, so 1..${meta.height - 1} (the chain is at ${meta.height})`,
    )
  const [root, blockBytes, cert, nextBytes, nextCert] = await kv.getMany([
    heightKey(STORE_PREFIX.stateRoot, height),
    heightKey(STORE_PREFIX.block, height),
    heightKey(STORE_PREFIX.certificate, height),
    heightKey(STORE_PREFIX.block, height + 1),
    heightKey(STORE_PREFIX.certificate, height + 1),
  ])
  if (root?.length !== 32) throw fail('SNAPSHOT_BAD_HEIGHT', `no state root stored for height ${height}`)
  if (!blockBytes || !cert || !nextBytes || !nextCert)
    throw corrupt(`block ${height} or ${height + 1}`, 'missing')
  const block = decodeStored(blockBytes, `block at height ${height}`, height)
  const next = decodeStored(nextBytes, `block at height ${height + 1}`, height + 1)
  if (!same(next.header.prevStateRoot, root) || !same(next.header.parentHash, block.hash))
    throw corrupt(`block at height ${height + 1}`, `does not follow block ${height} and its state`)
  const keys = await keysAt(kv, height)
  const partial = `${file}.partial`
  const out = await open(partial, 'w')
  const chunks: SnapshotManifest['chunks'] = []
  let total = 0
  try {
    let at = 0
    const writeRecord = async (bytes: Uint8Array): Promise<void> => {
      await out.write(u32(bytes.length), 0, 4, at)
      await out.write(bytes, 0, bytes.length, at + 4)
      at += 4 + bytes.length
    }
    await out.write(SNAPSHOT_MAGIC, 0, SNAPSHOT_MAGIC.length, 0)
    at = SNAPSHOT_MAGIC.length
    let entries: [Uint8Array, Uint8Array][] = []
    let size = 0
    const flush = async (): Promise<void> => {
      const record = encode([chunks.length, entries])
      await writeRecord(record)
      chunks.push({ hash: sha256(record), bytes: record.length, entries: entries.length })
      total += entries.length
      options.onChunk?.(chunks.length, total)
      entries = []
      size = 0
    }
    for await (const leaf of leavesOf(kv, await loadNode(kv, hashFromBytes(root)))) {
      const key = keys.get(leaf.path)
      if (key === undefined)
        throw fail(
          'SNAPSHOT_KEYS_UNKNOWN',
          `the state at height ${height} holds a key (path ${hashHex(leaf.path)}) deleted later by a block committed before rollback records were kept: its key is not stored; take the snapshot at the head instead`,
        )
      entries.push([key, leaf.value])
      size += key.length + leaf.value.length + 8
      if (size >= chunkBytes) await flush()
    }
    if (entries.length > 0 || chunks.length === 0) await flush()
    const manifest: SnapshotManifest = {
      format: SNAPSHOT_FORMAT,
      chainId: meta.chainId,
      genesisHash: meta.genesisHash,
      height,
      stateRoot: Uint8Array.from(root),
      header: block.headerBytes,
      certificate: cert,
      nextHeader: next.headerBytes,
      nextCertificate: nextCert,
      block: blockBytes,
      ...(options.validatorHistory ? { validatorHistory: [...options.validatorHistory] } : {}),
      entries: total,
      chunks,
    }
    const m = encode(manifest)
    await writeRecord(m)
    await out.write(u32(m.length + 4), 0, 4, at)
    await out.sync()
    await out.close()
    await rename(partial, file)
    return manifest
  } catch (err) {
    await out.close().catch(() => {})
    await rm(partial, { force: true })
    throw err
  }
}

const isBytes = (x: unknown, n?: number): x is Uint8Array =>
  x instanceof Uint8Array && (n === undefined || x.length === n)
const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0

/** Reads and checks the shape of a snapshot file's manifest (`SNAPSHOT_BAD_FILE` naming what is wrong). */
export async function readSnapshotManifest(file: string): Promise<SnapshotManifest> {
  const fh = await open(file, 'r')
  try {
    const { size } = await fh.stat()
    const bad = (why: string) => fail('SNAPSHOT_BAD_FILE', `${file}: ${why}`)
    const head = Buffer.alloc(SNAPSHOT_MAGIC.length)
    await fh.read(head, 0, head.length, 0)
    if (size < SNAPSHOT_MAGIC.length + 8 || !same(head, SNAPSHOT_MAGIC))
      throw bad('not a cityledger snapshot')
    const tail = Buffer.alloc(4)
    await fh.read(tail, 0, 4, size - 4)
    const len = tail.readUInt32BE()
    if (len < 4 || len > MAX_RECORD_BYTES || size - 4 - len < SNAPSHOT_MAGIC.length)
      throw bad('truncated (manifest)')
    const rec = Buffer.alloc(len)
    await fh.read(rec, 0, len, size - 4 - len)
    if (rec.readUInt32BE() !== len - 4) throw bad('manifest record length')
    let m: Record<string, unknown>
    try {
      m = decodeStrict(rec.subarray(4), { maxBytes: MAX_RECORD_BYTES, maxDepth: 8 }) as Record<
        string,
        unknown
      >
    } catch (err) {
      throw bad(`manifest does not decode (${(err as Error).message})`)
    }
    if (m === null || typeof m !== 'object') throw bad('manifest is not a map')
    if (m.format !== SNAPSHOT_FORMAT) throw bad(`unknown format ${String(m.format)}`)
    if (typeof m.chainId !== 'string') throw bad('manifest.chainId')
    if (!isBytes(m.genesisHash, 32)) throw bad('manifest.genesisHash')
    if (!isCount(m.height) || m.height < 1) throw bad('manifest.height')
    if (!isBytes(m.stateRoot, 32)) throw bad('manifest.stateRoot')
    for (const f of ['header', 'certificate', 'nextHeader', 'nextCertificate'])
      if (!isBytes(m[f])) throw bad(`manifest.${f}`)
    if (m.block !== undefined && !isBytes(m.block)) throw bad('manifest.block')
    if (
      m.validatorHistory !== undefined &&
      (!Array.isArray(m.validatorHistory) ||
        m.validatorHistory.length > MAX_SNAPSHOT_HISTORY ||
        !m.validatorHistory.every((e) => isBytes(e)))
    )
      throw bad(`manifest.validatorHistory: expected at most ${MAX_SNAPSHOT_HISTORY} byte strings`)
    if (!isCount(m.entries)) throw bad('manifest.entries')
    if (!Array.isArray(m.chunks) || m.chunks.length === 0) throw bad('manifest.chunks')
    let bytes = SNAPSHOT_MAGIC.length
    let entries = 0
    for (const [i, c] of (m.chunks as Record<string, unknown>[]).entries()) {
      if (
        c === null ||
        typeof c !== 'object' ||
        !isBytes(c.hash, 32) ||
        !isCount(c.bytes) ||
        !isCount(c.entries)
      )
        throw bad(`manifest.chunks[${i}]`)
      if (c.bytes > MAX_RECORD_BYTES) throw bad(`manifest.chunks[${i}].bytes: over ${MAX_RECORD_BYTES}`)
      bytes += 4 + c.bytes
      entries += c.entries
    }
    if (entries !== m.entries) throw bad('manifest.entries is not the sum of the chunks')
    if (bytes + len + 4 !== size) throw bad(`${size} bytes, the manifest describes ${bytes + len + 4}`)
    return m as unknown as SnapshotManifest
  } finally {
    await fh.close()
  }
}

/**
 * Rebuilds the state of `manifest` (read and checked by the caller) from the chunks of `file` into `kv`
 * (an empty store): every chunk must hash to the manifest's (`SNAPSHOT_BAD_CHUNK` naming it) before it
 * is decoded, and the rebuilt root must be `manifest.stateRoot` (`SNAPSHOT_BAD_STATE_ROOT`), all before
 * anything is written. Writes the tree pages, latest values, the root under `manifest.height` and the
 * manifest (without chunks) under `SNAPSHOT_META_KEY`. When the manifest holds block `height` whole
 * (files of this version), also that block, its certificate and the chain metadata of a store that
 * starts at `height` (`syncedChainOps`, as state sync writes): `ChainStore.open` opens the result at
 * `height` and block sync goes on from there. Without it (older files) there is no chain metadata.
 */
export async function importSnapshot(
  file: string,
  manifest: SnapshotManifest,
  kv: KvStore,
  options: { onChunk?: (read: number, entries: number) => void } = {},
): Promise<Uint8Array> {
  const writes = new Map<string, Uint8Array>()
  const fh = await open(file, 'r')
  try {
    let at = SNAPSHOT_MAGIC.length
    for (const [i, c] of manifest.chunks.entries()) {
      const rec = Buffer.alloc(4 + c.bytes)
      const { bytesRead } = await fh.read(rec, 0, rec.length, at)
      at += rec.length
      const badChunk = (why: string) =>
        fail('SNAPSHOT_BAD_CHUNK', `${file}: chunk ${i}: ${why}`, { chunk: i })
      if (bytesRead !== rec.length || rec.readUInt32BE() !== c.bytes)
        throw badChunk('truncated or wrong length')
      const body = rec.subarray(4)
      if (!same(sha256(body), c.hash)) throw badChunk('hash does not match the manifest')
      const v = decodeStrict(body, { maxBytes: MAX_RECORD_BYTES, maxDepth: 4 })
      if (
        !Array.isArray(v) ||
        v.length !== 2 ||
        v[0] !== i ||
        !Array.isArray(v[1]) ||
        v[1].length !== c.entries
      )
        throw badChunk('not the chunk the manifest describes')
      for (const e of v[1] as unknown[]) {
        if (!Array.isArray(e) || e.length !== 2 || !isBytes(e[0]) || !isBytes(e[1]))
          throw badChunk('bad entry')
        const hex = Buffer.from(e[0]).toString('hex')
        if (writes.has(hex)) throw badChunk(`key ${hex.slice(0, 80)} repeated`)
        writes.set(hex, e[1])
      }
      options.onChunk?.(i + 1, writes.size)
    }
  } finally {
    await fh.close()
  }
  const tree = await StateTree.open(kv)
  if (tree.version !== -1 || tree.size !== 0) throw fail('SNAPSHOT_BAD_FILE', 'the target store is not empty')
  const staged = tree.stage(writes)
  if (!same(staged.root, manifest.stateRoot))
    throw fail(
      'SNAPSHOT_BAD_STATE_ROOT',
      `the chunks rebuild state root ${Buffer.from(staged.root).toString('hex')}, the manifest certifies ${Buffer.from(manifest.stateRoot).toString('hex')}`,
    )
  // The tree's first version is 0; here it is the snapshot's height.
  const ops: KvOp[] = staged.ops.map((op) =>
    op.key[0] === STORE_PREFIX.stateRoot
      ? { ...op, key: heightKey(STORE_PREFIX.stateRoot, manifest.height) }
      : op,
  )
  // The history is the node's to store (in its own namespace), not part of the kept manifest.
  const { chunks: _, block, validatorHistory: _h, ...rest } = manifest
  ops.push({ type: 'put', key: SNAPSHOT_META_KEY, value: encode(rest) })
  if (block !== undefined) {
    const ownHeader = (() => {
      try {
        return decodeBlock(block).headerBytes
      } catch {
        return undefined
      }
    })()
    if (!ownHeader || !same(ownHeader, manifest.header))
      throw fail(
        'SNAPSHOT_BAD_FILE',
        `manifest.block is not block ${manifest.height} of the manifest's header`,
      )
    // Last: the chain metadata (its height at the very end) goes in the final synced batch.
    ops.push(...syncedChainOps({ ...manifest, block }))
  }
  // Several batches: the caller builds in a temp folder and renames it, so a crash leaves nothing used.
  for (let i = 0; i < ops.length; i += 20_000)
    await kv.write(ops.slice(i, i + 20_000), { sync: i + 20_000 >= ops.length })
  return staged.root
}
