import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export {
  type SubmitTracker,
  createSubmitTracker,
  instrumentLedgerStore,
  instrumentVerifier,
  observeBlock,
  timedKv,
} from './instrument.ts'
import { NODE_VERSION } from '../version.ts'

/** Seconds. Blocks commit every ~0.1-3 s (blockIntervalMs, view changes at the top end). */
const BLOCK_SECONDS = [0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30]
/** Seconds. A tx waits for the next block and its commit: ~0.2-10 s, longer under load or view change. */
const SUBMIT_SECONDS = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 30, 60]
/** Seconds. One store batch write: sub-millisecond in memory, milliseconds on disk, more when it stalls. */
const WRITE_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]
/** Seconds. An RPC request: reads in milliseconds, `wait=commit` up to rpc.maxWaitMs. */
const RPC_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

// prom-client's default set has gauges named `*_total`, which Prometheus reserves for counters
// (promtool rejects them); `nodejs_active_handles`, `_requests` and `_resources` say the same.
const NOT_COUNTERS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
]

/** What the RPC server reports once a request is answered (see `Metrics.rpcRequestDone`). */
export interface RpcRequestDone {
  /** The route pattern (`/v1/txs/:hash`), never the raw URL: label values must stay few. */
  route: string
  method: string
  status: number
  seconds: number
}

/**
 * The node's Prometheus metrics, one registry per node (several nodes may share a process in tests).
 * Names follow `cityledger_<subsystem>_<what>_<unit>`; the process and Node.js runtime metrics keep
 * their standard unprefixed names (`process_cpu_seconds_total`, `nodejs_eventloop_lag_seconds`), which
 * ready-made dashboards and alerts expect.
 */
export function createMetrics(opts: { defaults?: boolean } = {}) {
  const registry = new Registry()
  if (opts.defaults !== false) {
    collectDefaultMetrics({ register: registry })
    for (const name of NOT_COUNTERS) registry.removeSingleMetric(name)
  }
  const registers = [registry]
  // Read at scrape time from the components that know (set by createNode through watchPool / watchSync).
  let poolStats: (() => { outstanding: number; waiting: number }) | undefined
  let catchingUp: (() => boolean) | undefined
  const rpcRequests = new Counter({
    name: 'cityledger_rpc_requests_total',
    help: 'RPC requests answered, by route pattern, method and HTTP status',
    labelNames: ['route', 'method', 'status'],
    registers,
  })
  const rpcDuration = new Histogram({
    name: 'cityledger_rpc_request_duration_seconds',
    help: 'RPC request duration by route pattern',
    labelNames: ['route'],
    buckets: RPC_SECONDS,
    registers,
  })
  const m = {
    registry,
    buildInfo: new Gauge({
      name: 'cityledger_build_info',
      help: 'Always 1; the labels say which cityledger and Node.js this node runs',
      labelNames: ['version', 'nodejs'],
      registers,
    }),
    height: new Gauge({ name: 'cityledger_chain_height', help: 'Last committed height', registers }),
    lastBlockTime: new Gauge({
      name: 'cityledger_chain_last_block_timestamp_seconds',
      help: 'Header time of the last committed block, Unix seconds (time() minus it: how stale the chain is)',
      registers,
    }),
    blockInterval: new Histogram({
      name: 'cityledger_chain_block_interval_seconds',
      help: 'Header time between consecutive committed blocks',
      buckets: BLOCK_SECONDS,
      registers,
    }),
    view: new Gauge({ name: 'cityledger_consensus_view', help: 'Current PBFT view', registers }),
    viewChanges: new Counter({
      name: 'cityledger_consensus_view_changes_total',
      help: 'View changes this node has entered',
      registers,
    }),
    commitLatency: new Histogram({
      name: 'cityledger_consensus_commit_latency_seconds',
      help: 'From proposal seen to block committed',
      buckets: BLOCK_SECONDS,
      registers,
    }),
    missingSigners: new Gauge({
      name: 'cityledger_consensus_certificate_missing_signers',
      help: 'Validators without a signature in the last commit certificate',
      registers,
    }),
    missingSignatures: new Counter({
      name: 'cityledger_consensus_missing_signatures_total',
      help: 'Commit certificates a validator did not sign, by validator public key (hex)',
      labelNames: ['validator'],
      registers,
    }),
    blockTxs: new Histogram({
      name: 'cityledger_chain_block_txs',
      help: 'Transactions per committed block',
      buckets: [0, 1, 10, 100, 500, 1000, 2000, 5000, 10000],
      registers,
    }),
    blockTxsCap: new Gauge({
      name: 'cityledger_consensus_block_txs_cap',
      help: 'Txs the next block this node proposes may hold (the genesis limit, lower while rounds are slow)',
      registers,
    }),
    blockBytes: new Histogram({
      name: 'cityledger_chain_block_bytes',
      help: 'Encoded size of committed blocks',
      buckets: [1e3, 1e4, 1e5, 5e5, 1e6, 4e6, 16e6],
      registers,
    }),
    txsCommitted: new Counter({
      name: 'cityledger_chain_txs_total',
      help: 'Committed transactions by outcome',
      labelNames: ['outcome'],
      registers,
    }),
    submitToCommit: new Histogram({
      name: 'cityledger_tx_submit_to_commit_seconds',
      help: 'From a tx accepted by this node over RPC to its block committed here',
      buckets: SUBMIT_SECONDS,
      registers,
    }),
    mempoolSize: new Gauge({ name: 'cityledger_mempool_txs', help: 'Pending transactions', registers }),
    mempoolBytes: new Gauge({
      name: 'cityledger_mempool_bytes',
      help: 'Pending transaction bytes',
      registers,
    }),
    mempoolRejected: new Counter({
      name: 'cityledger_mempool_rejected_total',
      help: 'Refused transactions by reason',
      labelNames: ['reason'],
      registers,
    }),
    peers: new Gauge({ name: 'cityledger_p2p_peers', help: 'Connected peers', registers }),
    penalties: new Counter({
      name: 'cityledger_p2p_penalties_total',
      help: 'Penalties given to peers by reason',
      labelNames: ['reason'],
      registers,
    }),
    sigVerified: new Counter({
      name: 'cityledger_crypto_signatures_verified_total',
      help: 'Signatures checked (valid or not), by path: batch (txs, possibly on workers) or inline (consensus, sync)',
      labelNames: ['path'],
      registers,
    }),
    sigPending: new Gauge({
      name: 'cityledger_crypto_verifier_pending_signatures',
      help: 'Signatures handed to the batch verifier and not yet answered',
      registers,
    }),
    poolChunks: new Gauge({
      name: 'cityledger_crypto_verifier_pool_chunks',
      help: 'Worker pool chunks by state: outstanding (in a worker) or waiting (back-pressure); pool verifier only',
      labelNames: ['state'],
      registers,
      collect() {
        const s = poolStats?.()
        if (!s) return
        this.set({ state: 'outstanding' }, s.outstanding)
        this.set({ state: 'waiting' }, s.waiting)
      },
    }),
    catchingUp: new Gauge({
      name: 'cityledger_sync_catching_up',
      help: '1 while block sync is catching up with peers (RPC reads are refused), else 0',
      registers,
      collect() {
        this.set(catchingUp?.() ? 1 : 0)
      },
    }),
    syncTarget: new Gauge({
      name: 'cityledger_sync_target_height',
      help: 'Height the last block sync run aimed at',
      registers,
    }),
    syncedBlocks: new Counter({
      name: 'cityledger_sync_blocks_total',
      help: 'Blocks fetched and applied by sync',
      registers,
    }),
    storeWrite: new Histogram({
      name: 'cityledger_store_write_seconds',
      help: 'Duration of one atomic store write, by store: chain (blocks, state) or journal (consensus)',
      labelNames: ['store'],
      buckets: WRITE_SECONDS,
      registers,
    }),
    rpcRequests,
    rpcDuration,
    /** The worker pool's queue, read at each scrape. */
    watchPool(stats: () => { outstanding: number; waiting: number }): void {
      poolStats = stats
    },
    /** Whether block sync is catching up, read at each scrape. */
    watchSync(isCatchingUp: () => boolean): void {
      catchingUp = isCatchingUp
    },
    /**
     * For the RPC server to call once per answered request (e.g. from a fastify `onResponse` hook:
     * `route: request.routeOptions.url ?? 'unmatched'`, `seconds: reply.elapsedTime / 1000`).
     */
    rpcRequestDone(r: RpcRequestDone): void {
      rpcRequests.inc({ route: r.route, method: r.method, status: String(r.status) })
      rpcDuration.observe({ route: r.route }, r.seconds)
    },
  }
  m.buildInfo.set({ version: NODE_VERSION, nodejs: process.versions.node }, 1)
  return m
}

export type Metrics = ReturnType<typeof createMetrics>
