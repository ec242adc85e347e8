import { CityError } from '../errors/index.ts'
import { corrupt } from './errors.ts'
import { META_KEYS, STORE_PREFIX, bytesKey, heightKey, namespace, readU32, u64, writeU32 } from './keys.ts'
import type { KvOp, KvStore } from './kv.ts'
import { checkRecent, readChainMeta } from './openChecks.ts'
import { readPrunedBelow } from './prune.ts'
import { type Hash32, hashFromBytes, hashHex, sha256Str } from './stateHash.ts'
import type { CommittedState, StateWrites } from './stateTree.ts'
import { diffVersions, latestKeysByPath } from './stateWalk.ts'
import { decodeStored, same } from './storedValues.ts'
import { pushBlockDeletes } from './blockDeletes.ts'

/**
 * `U || height(8)` -> the keys block `height` deleted that had a value (each u32 length + bytes).
 * Tree pages hold SHA-256(key), not the key, and `V` no longer holds a deleted key, so without this
 * record a rollback could not restore a deleted value under its key. Written in the block's commit batch
 * (see `pushUndoOps`); blocks committed before it existed have none, and rolling back such a block that
 * deleted keys is refused (`ROLLBACK_KEYS_UNKNOWN`).
 */
export const UNDO_PREFIX = STORE_PREFIX.undo

/** Codes of `rollbackChain`'s refusals (store damage is `STORE_CORRUPT`). */
export type RollbackErrorCode =
  | 'ROLLBACK_AT_GENESIS'
  | 'ROLLBACK_KEYS_UNKNOWN'
  | 'ROLLBACK_NOT_INITIALIZED'
  | 'ROLLBACK_PRUNED'

/** Appends the undo record of block `height` to its commit batch; `state` is the state before the block. */
export function pushUndoOps(ops: KvOp[], height: number, writes: StateWrites, state: CommittedState): void {
  const keys: Uint8Array[] = []
  for (const [hexKey, value] of writes) {
    if (value !== null) continue
    const key = Buffer.from(hexKey, 'hex')
    if (state.get(key) !== undefined) keys.push(key)
  }
  if (keys.length === 0) return
  const out = new Uint8Array(keys.reduce((n, k) => n + 4 + k.length, 0))
  let at = 0
  for (const k of keys) {
    writeU32(out, at, k.length)
    out.set(k, at + 4)
    at += 4 + k.length
  }
  ops.push({ type: 'put', key: heightKey(UNDO_PREFIX, height), value: out })
}

/** The keys of an undo record. */
export function decodeUndo(bytes: Uint8Array, height: number): Uint8Array[] {
  const keys: Uint8Array[] = []
  let at = 0
  while (at < bytes.length) {
    if (at + 4 > bytes.length) throw corrupt(`rollback record of block ${height}`, 'truncated')
    const n = readU32(bytes, at)
    if (at + 4 + n > bytes.length) throw corrupt(`rollback record of block ${height}`, 'truncated key')
    keys.push(bytes.slice(at + 4, at + 4 + n))
    at += 4 + n
  }
  return keys
}

/** What `rollbackChain` did. */
export interface RollbackResult {
  /** The height removed. */
  removed: number
  /** The height the store is at now (`removed - 1`). */
  height: number
  /** State root at `height` (the state is back to it). */
  root: Uint8Array
  /** Transactions of the removed block. */
  txs: number
  /** State keys whose value was put back (or deleted). */
  keys: number
  /** Whether the consensus journal (`J`) was deleted too. */
  forgotJournal: boolean
}

/**
 * Removes the latest block of the chain stored in `kv` (which nothing else may have open: a running
 * node's LevelDB is locked) and puts the state back to the root of the height below, in one atomic
 * synced batch: the block, its hash index, certificate, tx index, results, end-of-block events, search
 * index, state root and rollback record go; the latest values of the keys the block changed get their
 * earlier values (read from the tree of the height below, whose pages are never deleted); the metadata
 * height drops by one. A crash leaves the store either as it was or rolled back. State pages stay (the
 * same content-addressed pages may serve other roots).
 *
 * With `forgetJournal` the consensus journal goes in the same batch (a validator's votes: see the node's
 * README before using it). Refuses height 0 (`ROLLBACK_AT_GENESIS`), an empty store
 * (`ROLLBACK_NOT_INITIALIZED`), a block whose parent height was pruned (`ROLLBACK_PRUNED`), and a block that deleted keys before rollback records were kept
 * (`ROLLBACK_KEYS_UNKNOWN`); nothing is written then.
 */
export async function rollbackChain(
  kv: KvStore,
  options: { chainId?: string; forgetJournal?: boolean } = {},
): Promise<RollbackResult> {
  const meta = await readChainMeta(kv, options.chainId)
  if (meta === undefined) throw new CityError('ROLLBACK_NOT_INITIALIZED', 'the store holds no chain')
  const { chainId, genesisHash, height } = meta
  if (height === 0)
    throw new CityError<RollbackErrorCode>(
      'ROLLBACK_AT_GENESIS',
      `chain ${chainId} is at height 0 (genesis only): there is no block to roll back`,
    )
  await checkRecent(kv, chainId, height, genesisHash)
  const keptFrom = await readPrunedBelow(kv)
  if (height - 1 < keptFrom)
    throw new CityError<RollbackErrorCode>(
      'ROLLBACK_PRUNED',
      `cannot roll back block ${height}: the state of height ${height - 1} was pruned (this store keeps heights from ${keptFrom} on)`,
      { height, prunedBelow: keptFrom },
    )
  const [blockBytes, rootNow, rootBefore, undo] = await kv.getMany([
    heightKey(STORE_PREFIX.block, height),
    heightKey(STORE_PREFIX.stateRoot, height),
    heightKey(STORE_PREFIX.stateRoot, height - 1),
    heightKey(UNDO_PREFIX, height),
  ])
  const block = decodeStored(blockBytes!, `block at height ${height}`, height)
  if (rootNow?.length !== 32) throw corrupt(`state root at height ${height}`, 'missing')
  if (rootBefore?.length !== 32) throw corrupt(`state root at height ${height - 1}`, 'missing')
  if (!same(block.header.prevStateRoot, rootBefore))
    throw corrupt(`state root at height ${height - 1}`, `block ${height} names another one`)

  const ops: KvOp[] = []
  // State: every key whose value differs between the two versions.
  const { before: older, after: now } = await diffVersions(
    kv,
    hashFromBytes(rootBefore),
    hashFromBytes(rootNow),
  )
  // Keys of the latest version are all in V; keys the block deleted are in its rollback record.
  const keys = await latestKeysByPath(kv)
  if (undo !== undefined) for (const k of decodeUndo(undo, height)) keys.set(sha256Str(k), k)
  let changed = 0
  const valueKey = (path: Hash32): Uint8Array => {
    const key = keys.get(path)
    if (key === undefined)
      throw new CityError<RollbackErrorCode>(
        'ROLLBACK_KEYS_UNKNOWN',
        `block ${height} deleted a state key (path ${hashHex(path)}) that no rollback record names: it was committed before rollback records were kept, so its value cannot be put back under its key`,
        { height },
      )
    return bytesKey(STORE_PREFIX.stateValue, key)
  }
  for (const path of now.keys()) {
    if (older.has(path)) continue
    ops.push({ type: 'del', key: valueKey(path) })
    changed++
  }
  for (const [path, value] of older) {
    const latest = now.get(path)
    if (latest !== undefined && same(latest, value)) continue
    ops.push({ type: 'put', key: valueKey(path), value })
    changed++
  }

  // The block and everything indexed by it.
  await pushBlockDeletes(kv, ops, height, block)
  ops.push({ type: 'put', key: META_KEYS.height, value: u64(height - 1) })
  if (options.forgetJournal)
    for await (const [k] of kv.iterate(namespace(STORE_PREFIX.journal))) ops.push({ type: 'del', key: k })
  await kv.write(ops, { sync: true })
  return {
    removed: height,
    height: height - 1,
    root: Uint8Array.from(rootBefore),
    txs: block.txs.length,
    keys: changed,
    forgotJournal: options.forgetJournal === true,
  }
}
