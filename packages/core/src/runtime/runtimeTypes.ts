// The runtime's public types (what `createRuntime` returns and takes), apart from its code in executor.ts.
import type { Value } from '../codec/msgpack.ts'
import type { Tx } from '../codec/tx.ts'
import type { HookCounters } from './hooks.ts'
import type { StateReader, WorkLimits } from './layer.ts'
import type { ServiceDefinition } from './service.ts'
import type { VersionReport } from './versions.ts'
import type { ValidatorChange } from './validators.ts'

/** One event a service emitted. */
export interface ServiceEvent {
  service: string
  name: string
  data: Value
}

/** The outcome of one transaction. `code` is null on success. */
export interface TxResult {
  hash: Uint8Array
  code: string | null
  message?: string
  events: ServiceEvent[]
}

export interface BlockExecution {
  /** State writes of the whole block: hex of the full key -> encoded value, or null for a delete. */
  writes: Map<string, Uint8Array | null>
  results: TxResult[]
  /** Events of end-of-block hooks. */
  blockEvents: ServiceEvent[]
}

export interface RuntimeOptions {
  services: ServiceDefinition[]
  limits?: Partial<WorkLimits>
  /** Told about handler bugs (exceptions that are not ServiceErrors). */
  onBug?: (info: { service: string; method: string; error: unknown }) => void
  /**
   * Consecutive failures after which a service's end-of-block hook is halted (default 3). A consensus
   * parameter: every node of a chain must use the same value.
   */
  maxHookFailures?: number
  /**
   * Ordered reads of the latest committed state, used by `state.list` when the StateReader handed to
   * executeBlock/query has no `range` of its own (a node passes its state tree's `range`). Only valid
   * when those readers read the latest committed state.
   */
  range?: NonNullable<StateReader['range']>
}

export interface QueryResult {
  value: Value
  /** Full state keys the query read (the node proves them against the state root). */
  keys: Uint8Array[]
}

/**
 * The service runtime: executes blocks of transactions against services, deterministically.
 *
 * @example
 * const runtime = createRuntime({ services: [identity, token] })
 * const { writes, results } = runtime.executeBlock(state, { height: 7, time, txs })
 */
export interface Runtime {
  readonly services: ReadonlyMap<string, ServiceDefinition>
  genesis(state: StateReader, config: Record<string, Value | undefined>, time: number): BlockExecution
  executeBlock(
    state: StateReader,
    block: { height: number; time: number; chainId?: string; txs: Tx[] },
  ): BlockExecution
  /** Mempool admission: refuses (throws CityError) what would certainly fail; never writes. */
  checkTx(state: StateReader, tx: Tx): void
  /** The last nonce committed for a signer (0 if none). */
  committedNonce(state: StateReader, signer: Uint8Array): number
  /** Counters of end-of-block hook failures since this runtime started (for the node's metrics). */
  readonly counters: HookCounters
  /** Each end-of-block hook's failure record in chain state (consecutive failures, halted). */
  hookStatus(
    state: StateReader,
  ): Record<string, { failures: number; halted: boolean; height: number; message: string }>
  /** The version each service runs on chain, the version of this node's code, and scheduled upgrades. */
  versions(state: StateReader): VersionReport[]
  /** The validator-set changes recorded in `state` with `seq > after` (see validators.ts), oldest first. */
  validatorChanges(state: StateReader, after?: number): ValidatorChange[]
  query(
    state: StateReader,
    height: number,
    service: string,
    name: string,
    args: Value | Record<string, string>,
    text?: boolean,
  ): QueryResult
}
