/**
 * Storage: the ordered key-value store (LevelDB or memory), the authenticated state tree with its
 * proofs, and the chain store that commits each block in one atomic batch.
 */
export type { KvOp, KvRange, KvStore, KvWriteOptions } from './kv.ts'
export { prefixEnd } from './kv.ts'
export { openMemoryKv } from './memoryKv.ts'
export { openLevelKv, type LevelKvOptions } from './levelKv.ts'
export { liveTables } from './levelManifest.ts'
export { subKv } from './subKv.ts'
export { STORE_PREFIX } from './keys.ts'
export { StoreError, type StoreErrorCode } from './errors.ts'
export {
  StateTree,
  type CommittedState,
  type StagedState,
  type StateProofResult,
  type StateWrites,
  type SyncedState,
} from './stateTree.ts'
export { type StateProof, verifyStateProof, encodeStateProof, decodeStateProof } from './stateProof.ts'
export {
  type StoredTx,
  encodeTxResult,
  decodeTxResult,
  encodeBlockEvents,
  decodeBlockEvents,
  MAX_RESULT_BYTES,
} from './results.ts'
export {
  SEARCH_LIMITS,
  type TxSearchHit,
  type TxSearchPage,
  type TxSearchQuery,
} from './txSearch.ts'
export { ChainStore, type ChainStoreOptions, type CommitInput, type GenesisInput } from './chainStore.ts'
export type { SweepResult } from './statePrune.ts'
export { rollbackChain, type RollbackResult, type RollbackErrorCode, UNDO_PREFIX } from './rollback.ts'
export {
  exportSnapshot,
  importSnapshot,
  readSnapshotManifest,
  type ExportOptions,
  type SnapshotErrorCode,
  type SnapshotManifest,
  SNAPSHOT_CHUNK_BYTES,
  SNAPSHOT_META_KEY,
  MAX_SNAPSHOT_HISTORY,
} from './snapshot.ts'
export {
  StateSyncBuilder,
  type StateSyncErrorCode,
  type StateSyncProgress,
  type SyncTarget,
  SYNCED_FROM_KEY,
  syncedChainOps,
  readSyncedFrom,
} from './stateSync.ts'
export { readStatePages, readStateKeys, type StateKeysCursor, type StateKeysPage } from './stateSyncServe.ts'
