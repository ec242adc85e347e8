import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/**
 * The node's Prometheus metrics, one registry per node (several nodes may share a process in tests).
 * Names follow `cityledger_<subsystem>_<what>_<unit>`.
 */
export function createMetrics(opts: { defaults?: boolean } = {}) {
  const registry = new Registry()
  if (opts.defaults !== false) collectDefaultMetrics({ register: registry, prefix: 'cityledger_process_' })
  const m = {
    registry,
    height: new Gauge({
      name: 'cityledger_chain_height',
      help: 'Last committed height',
      registers: [registry],
    }),
    view: new Gauge({ name: 'cityledger_consensus_view', help: 'Current PBFT view', registers: [registry] }),
    viewChanges: new Counter({
      name: 'cityledger_consensus_view_changes_total',
      help: 'View changes this node has entered',
      registers: [registry],
    }),
    commitLatency: new Histogram({
      name: 'cityledger_consensus_commit_latency_seconds',
      help: 'From proposal seen to block committed',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
      registers: [registry],
    }),
    blockTxs: new Histogram({
      name: 'cityledger_chain_block_txs',
      help: 'Transactions per committed block',
      buckets: [0, 1, 10, 100, 500, 1000, 2000, 5000, 10000],
      registers: [registry],
    }),
    blockBytes: new Histogram({
      name: 'cityledger_chain_block_bytes',
      help: 'Encoded size of committed blocks',
      buckets: [1e3, 1e4, 1e5, 5e5, 1e6, 4e6, 16e6],
      registers: [registry],
    }),
    txsCommitted: new Counter({
      name: 'cityledger_chain_txs_total',
      help: 'Committed transactions by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    mempoolSize: new Gauge({
      name: 'cityledger_mempool_txs',
      help: 'Pending transactions',
      registers: [registry],
    }),
    mempoolBytes: new Gauge({
      name: 'cityledger_mempool_bytes',
      help: 'Pending transaction bytes',
      registers: [registry],
    }),
    mempoolRejected: new Counter({
      name: 'cityledger_mempool_rejected_total',
      help: 'Refused transactions by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    peers: new Gauge({ name: 'cityledger_p2p_peers', help: 'Connected peers', registers: [registry] }),
    penalties: new Counter({
      name: 'cityledger_p2p_penalties_total',
      help: 'Penalties given to peers by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    sigVerified: new Counter({
      name: 'cityledger_crypto_signatures_verified_total',
      help: 'Signatures verified (rate() gives per second)',
      labelNames: ['path'],
      registers: [registry],
    }),
    syncedBlocks: new Counter({
      name: 'cityledger_sync_blocks_total',
      help: 'Blocks fetched and applied by sync',
      registers: [registry],
    }),
  }
  return m
}

export type Metrics = ReturnType<typeof createMetrics>
