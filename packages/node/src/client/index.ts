/** Typed client of a node's RPC v1 (the server is in ../rpc). */
export { createClient } from './client.ts'
export type {
  BatchOutcome,
  CityledgerClient,
  ClientOptions,
  EventsOptions,
  HashLike,
  ProofVerifier,
  QueryOptions,
  SubmitOptions,
  VerifiedAnswer,
  VerifiedQueryOptions,
  WaitOptions,
} from './client.ts'
export { proofOf, verifyAnchor, verifyStateProofs } from './verify.ts'
export type { Anchor, AnchorTrust, ProvenEntry, QueryProof } from './verify.ts'
export type { ClientErrorCode } from './http.ts'
export { parseSse } from './sse.ts'
export type { SseMessage } from './sse.ts'
export type {
  BlockHeaderView,
  BlockRange,
  BlockView,
  CertificateView,
  GenesisView,
  HealthReport,
  NodeStatus,
  QueryResult,
  RpcEvent,
  TxBodyView,
  TxEventView,
  TxStatus,
  ValidatorView,
} from '../rpc/backend.ts'
export { createSigner } from './signer.ts'
export type { Call, TxSigner } from './signer.ts'
