import type { Block, CommitCertificate, Mempool, ServiceEvent, Tx, TxResult } from '@cityledger/core'
import type { Input, Output } from '@cityledger/consensus'
import type { Ledger } from '../chain/ledger.ts'
import type { Logger } from '../log/index.ts'
import type { Metrics } from '../metrics/index.ts'
import type { ReplicaSet } from './epochReplicas.ts'
import type { Journal } from './journal.ts'

// What the consensus driver (driver.ts) is handed: the replica, time, the network, and its settings.

/** The replica as the driver sees it: a synchronous, deterministic step function. */
export interface ReplicaLike {
  step(input: Input): Output[]
}

/** Time as the driver needs it (the p2p layer's Clock fits). */
export interface DriverClock {
  now(): number
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

/** Where the driver sends messages and reports peers (the p2p layer, adapted). */
export interface ConsensusNet {
  broadcast(bytes: Uint8Array): void
  /** To validator `validatorIndex` of the current epoch's set. */
  send(validatorIndex: number, bytes: Uint8Array): void
  /** To a validator by its hex key (a retired epoch's replica answering a laggard); optional. */
  sendKey?(publicKeyHex: string, bytes: Uint8Array): void
  penalize(peer: string, reason: string): void
}

export interface DriverOptions {
  chainId: string
  publicKey: Uint8Array
  /** The one replica of a chain without reconfiguration (ignored when `replicas` is given). */
  replica?: ReplicaLike
  /** The replicas by epoch (epochReplicas.ts); default: `replica` for every height. */
  replicas?: ReplicaSet
  /** The stored certificate of the head (a new epoch's replica starts with it). */
  headCertificate?: () => Promise<CommitCertificate | undefined>
  journal: Journal
  ledger: Ledger
  mempool: Mempool
  net: ConsensusNet
  clock: DriverClock
  logger: Logger
  metrics?: Metrics
  /** Wall-clock ms for block headers (injected so tests can pin it). */
  wallClock: () => number
  maxBlockTxs: number
  maxBlockBytes: number
  /**
   * With it, the txs per proposed block follow this node's measured rounds so that a round stays under
   * this many ms (see blockBudget.ts); without it every block may hold `maxBlockTxs`.
   */
  targetRoundMs?: number
  /** Wait this long after the last commit before proposing a block with txs (batching). */
  blockIntervalMs: number
  /** Propose an empty block after this long without txs (the heartbeat of an idle chain). */
  emptyBlockIntervalMs: number
  /**
   * Tell the replica when the mempool goes from empty to non-empty and back (`pending` inputs, edges
   * only), for a replica whose progress timer follows the heartbeat (`heartbeatMs`). Default false.
   */
  reportPending?: boolean
  /** Called after every committed block (RPC waiters, events, mempool gossip bookkeeping). */
  onCommitted: (c: { block: Block; txs: Tx[]; results: TxResult[]; blockEvents: ServiceEvent[] }) => void
  /** The replica asks for blocks it missed (below the stable checkpoint). */
  onSyncNeeded: (fromHeight: number, toHeight: number) => void
  /** A fatal inconsistency (e.g. a commit that contradicts the stored chain): the node must stop. */
  onFatal: (err: Error) => void
  /**
   * Most consensus messages from one peer waiting in the input queue, by count and by bytes (default
   * 256 and 64 MiB). Past either the peer's message is dropped and it is penalised (`queue:` reason);
   * the node's own inputs (timers, validations, sync) are never dropped.
   */
  maxQueuedPerPeer?: { messages: number; bytes: number }
}

/** Default bound of each peer's consensus messages in the driver queue. */
export const DEFAULT_MAX_QUEUED_PER_PEER = { messages: 256, bytes: 64 * 1024 * 1024 }
