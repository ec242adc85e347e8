// The node's RPC server: config.json's `rpc` section handed to the server of ../rpc.
import type { NodeConfig } from '../config/index.ts'
import { type Logger, levelledLogger } from '../log/index.ts'
import type { Metrics } from '../metrics/index.ts'
import { type RpcServer, createRpcServer } from '../rpc/index.ts'
import type { NodeRpcBackend } from './backend.ts'

/** The RPC server on `backend`, its limits from `config.rpc`; requests are counted into the metrics. */
export function createNodeRpcServer(o: {
  backend: NodeRpcBackend
  config: NodeConfig
  /** The parent logger: rpc takes a child `{ module }` itself. */
  logger: Logger
  metrics: Metrics | undefined
}): RpcServer {
  const { config, metrics } = o
  return createRpcServer({
    backend: o.backend,
    logger: levelledLogger(o.logger, 'rpc', config.log.modules),
    limits: {
      maxBodyBytes: config.rpc.maxBodyBytes,
      maxWaitMs: config.rpc.maxWaitMs,
      rateLimitPerSecond: config.rpc.rateLimitPerSecond,
      rateLimitBurst: config.rpc.rateLimitBurst,
      exemptClients: config.rpc.exemptClients,
      maxConnections: config.rpc.maxConnections,
      maxConnectionsPerClient: config.rpc.maxConnectionsPerClient,
      requestTimeoutMs: config.rpc.requestTimeoutMs,
      headersTimeoutMs: config.rpc.headersTimeoutMs,
      keepAliveTimeoutMs: config.rpc.keepAliveTimeoutMs,
      maxEventSubscribers: config.rpc.maxEventSubscribers,
      maxEventBacklogBytes: config.rpc.maxEventBacklogBytes,
      maxEventReplayBlocks: config.rpc.maxEventReplayBlocks,
      maxBatchTxs: config.rpc.maxBatchTxs,
      maxBatchBytes: config.rpc.maxBatchBytes,
      maxRangeBlocks: config.rpc.maxRangeBlocks,
      maxRangeBytes: config.rpc.maxRangeBytes,
      shutdownGraceMs: config.rpc.shutdownGraceMs,
    },
    host: config.rpc.host,
    port: config.rpc.port,
    cors: config.rpc.cors,
    tls: config.rpc.tls,
    ...(metrics ? { onRequestDone: (r) => metrics.rpcRequestDone(r) } : {}),
  })
}
