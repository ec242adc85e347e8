import type { Block } from '../codec/block.ts'
import type { TxResult } from '../runtime/executor.ts'
import { corrupt } from './errors.ts'
import { STORE_PREFIX, bytesKey, heightKey, readU32, readU64, resultKey } from './keys.ts'
import type { KvOp, KvStore } from './kv.ts'
import { hashBytes, sha256Str } from './stateHash.ts'
import { decodeResult } from './storedValues.ts'
import { pushSearchOps } from './txSearch.ts'

/**
 * Appends the deletes of everything block `height` indexes, as its commit wrote them: its tx results,
 * the tx index entries that point to it, its tx search keys, the block, its hash index entry,
 * certificate, end-of-block events, rollback record and state root. Shared by rollback (one block off
 * the head) and pruning (history below a height), so both remove exactly what a commit writes.
 */
export async function pushBlockDeletes(
  kv: KvStore,
  ops: KvOp[],
  height: number,
  block: Block,
): Promise<void> {
  const results: TxResult[] = []
  for await (const [k, v] of kv.iterate({
    gte: resultKey(height, 0),
    lt: heightKey(STORE_PREFIX.result, height + 1),
  })) {
    results.push(decodeResult(v, height, readU32(k, 9)))
    ops.push({ type: 'del', key: k })
  }
  if (results.length !== block.txs.length)
    throw corrupt(`results of block ${height}`, `${results.length} for ${block.txs.length} txs`)
  const txHashes = block.txs.map((t) => hashBytes(sha256Str(t)))
  const indexKeys = txHashes.map((h) => bytesKey(STORE_PREFIX.txIndex, h))
  // An entry pointing to another height belongs to that height (a tx committed twice by code older
  // than STORE_TX_COMMITTED).
  const indexed = indexKeys.length === 0 ? [] : await kv.getMany(indexKeys)
  for (const [i, at] of indexed.entries())
    if (at?.length === 12 && readU64(at, 0) === height) ops.push({ type: 'del', key: indexKeys[i]! })
  // The search keys are a function of the block and its results: building them again names them all.
  const search: KvOp[] = []
  pushSearchOps(search, height, block.txs, txHashes, results)
  for (const op of search) ops.push({ type: 'del', key: op.key })
  ops.push(
    { type: 'del', key: heightKey(STORE_PREFIX.block, height) },
    { type: 'del', key: bytesKey(STORE_PREFIX.blockHash, block.hash) },
    { type: 'del', key: heightKey(STORE_PREFIX.certificate, height) },
    { type: 'del', key: heightKey(STORE_PREFIX.blockEvents, height) },
    { type: 'del', key: heightKey(STORE_PREFIX.stateRoot, height) },
    { type: 'del', key: heightKey(STORE_PREFIX.undo, height) },
  )
}
