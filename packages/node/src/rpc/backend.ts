/**
 * The contract between the RPC server and the node (declared here, where it is consumed). The server
 * never reaches into node internals: it calls these methods and turns their answers and their
 * `CityError`s into RPC v1 responses. Every value it returns is already in JSON form: byte strings as
 * lowercase hex, integers as safe JavaScript numbers.
 */

import type { TxSearchAnswer, TxSearchParams } from './searchRoutes.ts'

/** Where a transaction stands, as `GET /v1/txs/:hash` reports it. */
export interface TxStatus {
  /** Hex SHA-256 of the exact envelope bytes. */
  hash: string
  /** `unknown`: never seen, or dropped from the mempool before commit. */
  status: 'pending' | 'committed' | 'failed' | 'unknown'
  /** Block height, for committed and failed txs. */
  height?: number
  /** Position in the block, for committed and failed txs. */
  index?: number
  /** The service error code of a failed tx. */
  code?: string
  /** The service's message for a failed tx. */
  message?: string
  /** Events the tx emitted (committed txs only), in emission order. */
  events?: TxEventView[]
  /** The signed body, decoded (committed, failed and pending txs; absent for unknown ones). */
  tx?: TxBodyView
}

/** A tx body in JSON form (see `TxBody` in @cityledger/core; bytes as hex, in `args` too). */
export interface TxBodyView {
  chainId: string
  service: string
  method: string
  /** JSON form of the call's arguments. */
  args: unknown
  /** Ed25519 public key of the signer, hex. */
  signer: string
  nonce: number
  /** Last height the tx may be included at; 0 means none. */
  expiry: number
}

/** `GET /v1/genesis`: the genesis the node runs and its hash. */
export interface GenesisView {
  /** The same hex `GET /v1/status` reports. */
  genesisHash: string
  /**
   * The genesis in the form of a genesis.json file (service configs with bytes as "0x" hex, as the
   * file has them), defaults filled in: saved as a file it hashes to `genesisHash`.
   */
  genesis: unknown
}

/** `GET /v1/blocks?from=&to=`: consecutive blocks from `from`, and where to go on when cut short. */
export interface BlockRange {
  blocks: BlockView[]
  /** Set when the answer stopped before the requested `to` (block or byte bound): ask again from here. */
  next?: number
}

/** One service event, as recorded in a tx result and streamed on `GET /v1/events`. */
export interface TxEventView {
  service: string
  type: string
  /** JSON form of the event payload (bytes as hex). */
  data: unknown
}

/** `GET /v1/status`. */
export interface NodeStatus {
  chainId: string
  /** This node's validator (or peer) public key, hex. */
  nodeId: string
  /** Last committed height (0 before the first block). */
  height: number
  /** Current PBFT view. */
  view: number
  /** State root after executing block `height`, hex. */
  stateRoot: string
  /** True while block sync runs; the node does not admit txs then. */
  catchingUp: boolean
  /** Connected peers. */
  peers: number
  /** The @cityledger/node version the node runs. */
  version: string
  /** The genesis hash (the parent of block 1), hex: two nodes of one chain have the same. */
  genesisHash: string
  /** Hash of block `height`, hex (at height 0, the genesis hash). */
  latestBlockHash: string
  /** Block time of block `height`, ms since the epoch (at height 0, the genesis time). */
  latestBlockTime: number
  /**
   * Lowest height whose block, certificate, results and events this node keeps (1 unless it pruned
   * its history, see `store.retainBlocks`): reads below it answer 410 PRUNED.
   */
  lowestHeight: number
}

/** Block header in JSON form (see `BlockHeader` in @cityledger/core; bytes as hex). */
export interface BlockHeaderView {
  chainId: string
  height: number
  view: number
  /** Proposer's time, ms since the Unix epoch. */
  time: number
  parentHash: string
  txRoot: string
  prevStateRoot: string
  proposer: string
}

/** Commit certificate in JSON form (see `CommitCertificate` in @cityledger/core; bytes as hex). */
export interface CertificateView {
  chainId: string
  view: number
  height: number
  blockHash: string
  signatures: { validator: string; signature: string }[]
}

/** `GET /v1/blocks/...`: a committed block with the certificate that finalised it. */
export interface BlockView {
  /** Hex SHA-256 of the header bytes. */
  hash: string
  header: BlockHeaderView
  /** Hex hashes of the block's txs, in block order. */
  txs: string[]
  certificate: CertificateView
}

/** One member of the validator set. */
/** `GET /v1/peers`: a connected peer, as its key names it. */
export interface PeerView {
  /** Ed25519 public key, hex. */
  publicKey: string
  /** `validator` (every protocol) or `observer` (sync and tx gossip only). */
  role: string
  /** Remote addresses of its open connection (multiaddrs). */
  addrs: string[]
}

export interface ValidatorView {
  /** Ed25519 public key, hex. */
  publicKey: string
  name?: string
}

/** `GET /v1/services/:service/:query`. */
export interface QueryResult {
  /** Height of the committed state the answer was read from. */
  height: number
  /** JSON form of the answer. */
  value: unknown
  /**
   * Present when the service can prove its answer. By convention an object carrying at least `root`
   * (hex state root after block `height`) and `key` (hex state key), plus the proof itself; the
   * client hands them to a caller-supplied verifier.
   */
  proof?: unknown
}

/** `GET /v1/health`: 200 when ok, 503 with reasons otherwise. */
export interface HealthReport {
  ok: boolean
  reasons?: string[]
}

/**
 * What `GET /v1/events` streams, in commit order: for each block its `block` message (the `BlockView`,
 * certificate included), then one `event` message per service event of that block: the block's tx
 * events in tx order, then the events of its end-of-block hooks, each a `TxEventView` with `height`
 * added, and for tx events `tx` and `index` (hex hash and position in the block of the tx that
 * emitted it): `{ service, type, data, height, tx?, index? }`.
 *
 * `height` and `index` place the message in the chain; they make its SSE id (`<height>` for a block,
 * `<height>/<index>` for an event), by which a client resumes.
 */
export interface RpcEvent {
  type: 'block' | 'event'
  /** Height of the block the message belongs to. */
  height: number
  /** `event` only: the event's position among its block's events, from 0. */
  index?: number
  data: unknown
}

/** Prometheus exposition text. */
export interface MetricsText {
  contentType: string
  body: string
}

/**
 * What the node provides to the RPC server. Implementations throw `CityError`s with the stable codes
 * of `RPC_ERROR_STATUS` (rpc/errors.ts); anything else becomes a logged 500 INTERNAL.
 *
 * @example
 * const server = createRpcServer({ backend: node.rpcBackend(), logger, limits, host: '127.0.0.1', port: 26657 })
 */
export interface RpcBackend {
  /**
   * Admits an envelope to the mempool: strict decode (codec codes MALFORMED, TRAILING_BYTES,
   * NON_CANONICAL, BAD_FIELD, TX_TOO_LARGE), signature (BAD_SIGNATURE), chain (WRONG_CHAIN),
   * service check (UNKNOWN_SERVICE, UNKNOWN_METHOD, NONCE_TOO_LOW, NONCE_TAKEN, NONCE_GAP, TX_EXPIRED,
   * or the service's own code), DUPLICATE_TX, MEMPOOL_FULL. Resolves with the tx hash once admitted.
   */
  submitTx(bytes: Uint8Array): Promise<{ hash: Uint8Array }>
  txStatus(hash: Uint8Array): Promise<TxStatus>
  /**
   * Resolves as soon as the tx is committed or failed, or after `timeoutMs` (or when `signal` aborts)
   * with the status at that moment. Must not reject on timeout or abort.
   */
  waitForTx(hash: Uint8Array, opts: { timeoutMs: number; signal: AbortSignal }): Promise<TxStatus>
  status(): Promise<NodeStatus>
  /** `undefined` when no block is committed at that height (or none at all for 'latest'). */
  block(height: number | 'latest'): Promise<BlockView | undefined>
  blockByHash(hash: Uint8Array): Promise<BlockView | undefined>
  /**
   * Committed blocks `from`..`to` (both committed, `from <= to`), in order. Stops early, after at
   * least one block, before the block that would take the blocks' encoded bytes past `maxBytes`;
   * `next` then names the first block left out.
   */
  blockRange(from: number, to: number, maxBytes: number): Promise<BlockRange>
  /** The genesis the node was started with (see `GenesisView`). */
  genesis(): Promise<GenesisView>
  validators(): Promise<ValidatorView[]>
  /**
   * The node's validator history (node/validatorHistory.ts): the encoded entries of changes `from`,
   * `from + 1`, ... as stored, consecutive, at most `limit` of them and, after the first, no more than
   * `maxBytes` in all; `[]` when it holds no entry `from`. The caller checks them (a walk from its own
   * genesis set): the node's word is not trusted.
   */
  validatorHistory(from: number, limit: number, maxBytes: number): Promise<Uint8Array[]>
  /** The peers connected now. */
  peers(): Promise<PeerView[]>
  /** Throws UNKNOWN_SERVICE / UNKNOWN_QUERY (404), or the service's own code for bad args (400). */
  query(service: string, query: string, args: Record<string, string>): Promise<QueryResult>
  health(): Promise<HealthReport>
  /**
   * Calls `listener` for every new committed block and service event, in commit order, and returns
   * the function that unsubscribes. The listener must not throw; it is called synchronously.
   */
  subscribe(listener: (event: RpcEvent) => void): () => void
  /**
   * The messages `subscribe` gave (or would have given) for committed block `height`, in the same
   * order and form; `undefined` when no block is committed at that height. Streams resume from these.
   */
  eventsAt(height: number): Promise<RpcEvent[] | undefined>
  metrics(): Promise<MetricsText>
  /** Committed txs by signer, service, method or event type, paged (GET /v1/txs/search; bounds in the store). */
  searchTxs(params: TxSearchParams): Promise<TxSearchAnswer>
  /** False while starting or catching up: tx submission then answers 503 NOT_READY. */
  ready(): boolean
}
