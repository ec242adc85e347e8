/** RPC v1 over HTTP: the fastify server and the backend contract the node implements. */
export { RPC_LIMIT_DEFAULTS, createRpcServer } from './server.ts'
export type { RpcAddress, RpcLimits, RpcServer, RpcServerOptions } from './server.ts'
export type {
  BlockHeaderView,
  BlockRange,
  BlockView,
  CertificateView,
  GenesisView,
  HealthReport,
  MetricsText,
  NodeStatus,
  QueryResult,
  RpcBackend,
  RpcEvent,
  TxBodyView,
  TxEventView,
  TxStatus,
  PeerView,
  ValidatorView,
} from './backend.ts'
export { RPC_ERROR_STATUS, errorBody, mapError } from './errors.ts'
export type { ErrorContext, MappedError, RpcErrorBody, RpcErrorCode } from './errors.ts'
export { BATCH_LIMIT_DEFAULTS } from './batch.ts'
export { registerSearchRoutes } from './searchRoutes.ts'
export type { SearchTxs, TxSearchAnswer, TxSearchParams } from './searchRoutes.ts'
export type { BatchResult } from './batch.ts'
