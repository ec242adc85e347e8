/** p2p: the validator's libp2p endpoint (TCP, Noise, Yamux) on its own Ed25519 key, for allowed peers only. */
export { checkLimits, createP2P, DEFAULT_LIMITS, DEFAULT_PENALTY_WEIGHTS, READY_PROTOCOL } from './p2p.ts'
export type {
  BootstrapPeer,
  DenyReason,
  InboundMessage,
  MessageHandler,
  P2P,
  P2PEventMap,
  P2POptions,
  PartialFramePolicy,
  PeerInfo,
  PeerRole,
  PenaltyWeights,
  ProtocolLimits,
  RequestOptions,
} from './types.ts'
export { peerIdFromValidatorKey, validatorKeyOfPeerId } from './identity.ts'
export { type Clock, type ManualClock, type TimerHandle, createManualClock, systemClock } from './clock.ts'
export { type Logger, noopLogger } from './logger.ts'
export { type P2PError, type P2PErrorCode, p2pError } from './errors.ts'
export { encodeFrame, FrameDecoder } from './frame.ts'
export { TokenBucket } from './tokenBucket.ts'
export { DEFAULT_PENALTY_POLICY, type PenaltyPolicy, type PenaltyResult, PeerScores } from './penalties.ts'
export { type BackoffPolicy, backoffDelay, DEFAULT_BACKOFF } from './backoff.ts'
