import { CityError } from '@cityledger/core'

/** Stable error codes of the p2p layer. */
export type P2PErrorCode =
  /** An option passed to `createP2P` (or a limit) is malformed; the message names the field. */
  | 'P2P_BAD_OPTIONS'
  /** A peer key given by the caller is not a 32-byte hex Ed25519 public key. */
  | 'P2P_BAD_PEER'
  /** The operation needs a started node. */
  | 'P2P_NOT_STARTED'
  /** No open connection to the peer (sends never dial implicitly). */
  | 'P2P_NOT_CONNECTED'
  /** The peer is not in the allowed set, or is serving a ban. */
  | 'P2P_NOT_ALLOWED'
  /** A message is larger than the protocol's `maxMessageBytes` (locally refused before sending). */
  | 'P2P_MESSAGE_TOO_LARGE'
  /** A peer announced a frame longer than the protocol's `maxMessageBytes`; nothing was buffered. */
  | 'P2P_FRAME_TOO_LARGE'
  /** A frame header is not a minimal varint of at most 5 bytes. */
  | 'P2P_BAD_FRAME'
  /** A request got no answer within its timeout. */
  | 'P2P_TIMEOUT'
  /** The caller's AbortSignal fired. */
  | 'P2P_ABORTED'
  /** The remote closed a request stream without answering (no handler result). */
  | 'P2P_NO_RESPONSE'
  /** Opening, writing or reading a stream failed (protocol not supported, reset, connection lost). */
  | 'P2P_STREAM_ERROR'
  /** The outbound queue to a peer is full (slow peer); the message was not queued. */
  | 'P2P_BACKPRESSURE'

/** Errors of the p2p layer. `penalize` is true when the remote caused it and should be penalised. */
export type P2PError = CityError<P2PErrorCode>

export function p2pError(
  code: P2PErrorCode,
  message: string,
  details: Record<string, unknown> = {},
  penalize = false,
): P2PError {
  return new CityError(code, message, details, penalize)
}
