import type { Block } from '../codec/block.ts'
import type { ServiceEvent, TxResult } from '../runtime/executor.ts'
import type { StateWrites, SyncedState } from './stateTree.ts'

// The inputs of ChainStore (chainStore.ts).

/** What `ChainStore.open` may check. */
export interface ChainStoreOptions {
  /** Refuse (`STORE_WRONG_CHAIN`) a store that belongs to another chain. */
  chainId?: string
  /**
   * The state tree a state sync into this store built (`StateSyncBuilder.finish`): taken instead of
   * rebuilding the tree from the stored values when it is of the store's height and root.
   */
  syncedState?: SyncedState
}

/** The genesis state, written once as height 0. */
export interface GenesisInput {
  chainId: string
  /** Hash that block 1 names as its parent; 32 zero bytes when omitted. */
  genesisHash?: Uint8Array
  stateWrites: StateWrites
}

/** Everything that one committed block changes, persisted in one atomic, synced batch. */
export interface CommitInput {
  block: Block
  /** The encoded commit certificate (`encodeCertificate`) for `block`. */
  certificate: Uint8Array
  /** One result per transaction, in block order. */
  results: readonly TxResult[]
  /** The state writes of the whole block (failed txs' writes already dropped). */
  stateWrites: StateWrites
  /** Events of the end-of-block hooks (none when omitted). */
  blockEvents?: readonly ServiceEvent[]
}
