import type { EventEmitter } from 'node:events'
import type { KeyPair } from '@cityledger/core'
import type { PrivateKey } from '@libp2p/interface'
import type { BackoffPolicy } from './backoff.ts'
import type { Clock } from './clock.ts'
import type { Logger } from './logger.ts'
import type { PenaltyPolicy } from './penalties.ts'

/** Limits of one protocol, applied per peer on what it sends us (and checked on what we send). */
export interface ProtocolLimits {
  /** Largest frame payload accepted, in bytes. Longer frames are refused from their header. */
  maxMessageBytes: number
  /** Sustained messages per second per peer (token refill rate). */
  ratePerSecond: number
  /** Messages a peer may send at once (bucket size). */
  burst: number
  /** Largest response accepted to our own requests on this protocol, bytes (default `maxMessageBytes`). */
  maxResponseBytes?: number
  /** Sustained payload bytes per second per peer (default: no byte budget). */
  bytesPerSecond?: number
  /** Payload bytes a peer may send at once; at least `maxMessageBytes` (default: the larger of the two). */
  burstBytes?: number
  /** Streams of this protocol one peer may hold open at once, per direction (default 4). */
  maxStreams?: number
}

/** How long and how much a peer may keep in frames it has started and not finished. */
export interface PartialFramePolicy {
  /**
   * Bytes of unfinished frames held for one peer, over all its streams. Default: the sum of
   * `maxMessageBytes` over the protocols open to the peer (one unfinished frame per protocol).
   */
  maxBytesPerPeer?: number
  /** A frame not complete this long after its first byte is cut off, in ms (default 30 s). */
  maxAgeMs?: number
}

/** A peer to keep connected: redialled with backoff whenever the connection drops. */
export interface BootstrapPeer {
  /** Validator public key, 32-byte hex. */
  publicKey: string
  /** Multiaddrs such as `/ip4/10.0.0.2/tcp/26656` (a `/p2p/...` suffix is optional). */
  addrs: string[]
}

/** Penalty weights for faults the p2p layer itself detects. */
export interface PenaltyWeights {
  /** Default weight of `penalize(peer, reason)` without an explicit weight. */
  default: number
  /** A message dropped by the rate limiter. */
  rateLimited: number
  /** A frame longer than the protocol allows, or a malformed frame header. */
  badFrame: number
  /** Unfinished frames over the peer's byte budget, or one held longer than `partialFrames.maxAgeMs`. */
  partialFrame: number
  /** A stream on a protocol the peer's role may not use (an observer on consensus). */
  notPermitted: number
}

/**
 * Options of `createP2P`.
 *
 * @example
 * const p2p = createP2P({
 *   keyPair,
 *   listen: ['/ip4/0.0.0.0/tcp/26656'],
 *   bootstrap: [{ publicKey: '5a1f...', addrs: ['/ip4/10.0.0.2/tcp/26656'] }],
 *   allowed: validatorKeysHex,
 *   limits: { '/cityledger/consensus/1': { maxMessageBytes: 4 << 20, ratePerSecond: 500, burst: 1000 } },
 *   logger,
 * })
 */
export interface P2POptions {
  /** The validator's Ed25519 key pair; it is also the libp2p identity. Give this or `identity`. */
  keyPair?: KeyPair
  /**
   * The libp2p identity as a libp2p private key, for a validator key held by a signer (an HSM:
   * `libp2pKeyOfSigner`). Its public key is the validator key. Give this or `keyPair`.
   */
  identity?: PrivateKey
  /** Multiaddrs to listen on, e.g. `/ip4/127.0.0.1/tcp/0`. */
  listen: string[]
  /** Peers to dial at start and to redial after a drop. They must be in `allowed` too. */
  bootstrap?: BootstrapPeer[]
  /** Hex public keys allowed to connect with every protocol (validators). Our own key may be listed. */
  allowed: string[]
  /** Hex public keys allowed to connect as observers: only the protocols in `observerLimits`. */
  observers?: string[]
  /** Limits per protocol id. Protocols without an entry use `defaultLimits`. */
  limits?: Record<string, ProtocolLimits>
  /**
   * Limits for observers, per protocol id; a protocol without an entry is closed to observers (their
   * streams on it are refused and penalised, and we neither send nor broadcast it to them).
   */
  observerLimits?: Record<string, ProtocolLimits>
  /** Byte and time budget of unfinished frames per peer. */
  partialFrames?: PartialFramePolicy
  /** Limits for protocols not listed in `limits`. Default 1 MiB, 100/s, burst 200. */
  defaultLimits?: ProtocolLimits
  /** Scoring policy: threshold, decay half-life, ban duration. */
  penalties?: Partial<PenaltyPolicy>
  /** Weights of the penalties the p2p layer applies itself. */
  penaltyWeights?: Partial<PenaltyWeights>
  /** Reconnect backoff to bootstrap peers. */
  reconnect?: Partial<BackoffPolicy>
  /** Default timeout of `request`, in ms (default 10 s). */
  requestTimeoutMs?: number
  /** Most frames queued per inbound stream while its handler is busy before the stream is paused (default 64). */
  maxQueuedFrames?: number
  /** Most messages queued to one peer and protocol while its stream drains (default 1024). */
  maxPendingSends?: number
  /** New inbound connections per second accepted from one host before libp2p refuses (default 10). */
  inboundConnectionThreshold?: number
  logger?: Logger
  clock?: Clock
}

/** What an allowed key may do. */
export type PeerRole = 'validator' | 'observer'

/** A connected, allowed peer. */
export interface PeerInfo {
  /** Validator public key, lowercase hex. */
  publicKey: string
  /** Remote addresses of the open connections (one: a second connection with the same key replaces the first). */
  addrs: string[]
  /** Validator (every protocol) or observer (the protocols in `observerLimits`). */
  role: PeerRole
  /** True when the peer is one of our bootstrap peers (kept connected). */
  bootstrap: boolean
}

/** One message from a peer, as a handler sees it. `data` is a fresh copy the handler may keep. */
export interface InboundMessage {
  /** Sender's validator public key, lowercase hex. */
  peer: string
  protocol: string
  data: Uint8Array
}

/**
 * Handles the messages of one protocol. For fire-and-forget protocols return nothing. For
 * request/response protocols return the response bytes (a request whose handler returns nothing fails
 * with P2P_NO_RESPONSE at the requester). Messages of one stream are handled one at a time, in order.
 * Report bad data with `p2p.penalize(msg.peer, reason)`, or throw a CityError with `penalize: true`.
 */
export type MessageHandler = (
  msg: InboundMessage,
) => Uint8Array | undefined | void | Promise<Uint8Array | undefined | void>

export interface RequestOptions {
  /** Overall time for the request (stream open, write, response), in ms. Default `requestTimeoutMs`. */
  timeoutMs?: number
  signal?: AbortSignal
}

/** Why a connection was refused by the gater. */
export type DenyReason = 'not-allowed' | 'banned'

/** Events of the p2p layer. Peers are validator public keys in lowercase hex. */
export interface P2PEventMap {
  /** First connection to an allowed peer opened. */
  'peer:connect': [{ peer: string }]
  /** Last connection to a peer closed. */
  'peer:disconnect': [{ peer: string }]
  /** A penalty was applied (by the layer itself or by a handler). */
  'peer:penalized': [{ peer: string; reason: string; weight: number; score: number }]
  /** A peer crossed the penalty threshold: disconnected and refused until `until` (clock ms). */
  'peer:banned': [{ peer: string; reason: string; until: number }]
  /** The connection gater refused a peer (`peer` is undefined for a non-Ed25519 peer id). */
  'connection:denied': [{ peer: string | undefined; reason: DenyReason; direction: 'inbound' | 'outbound' }]
  /** A dial to a bootstrap peer failed; `retryInMs` is when the next attempt is due. */
  'dial:failed': [{ peer: string; error: string; attempt: number; retryInMs: number }]
}

/**
 * The validator's network endpoint. Lifecycle: `start()` then `stop()` (js-libp2p Startable); a stopped
 * node may be started again.
 */
export interface P2P {
  /** Our validator public key, lowercase hex. */
  readonly publicKey: string
  /** Our libp2p peer id as a string (derived from `publicKey`). */
  readonly peerId: string
  readonly events: EventEmitter<P2PEventMap>
  start(): Promise<void>
  stop(): Promise<void>
  /** Listening addresses with the `/p2p/<peerId>` suffix (empty while stopped). */
  multiaddrs(): string[]
  /** Registers the handler of a protocol (before or after start). `limits` overrides the configured ones. */
  handle(protocol: string, handler: MessageHandler, limits?: ProtocolLimits): Promise<void>
  /** Fire-and-forget: queues one framed message on the long-lived stream to `peer` for `protocol`. */
  send(peer: string, protocol: string, data: Uint8Array): Promise<void>
  /** Sends to every connected peer; resolves with the peers it was queued for (failures are logged). */
  broadcast(protocol: string, data: Uint8Array): Promise<string[]>
  /** One request frame, one response frame, on a fresh stream. Rejects with P2P_TIMEOUT, P2P_NO_RESPONSE... */
  request(peer: string, protocol: string, data: Uint8Array, options?: RequestOptions): Promise<Uint8Array>
  /** Adds a penalty; at the threshold the peer is disconnected and refused for `penalties.banMs`. */
  penalize(peer: string, reason: string, weight?: number): void
  /** Current decayed penalty score of a peer. */
  score(peer: string): number
  /** Connected allowed peers, sorted by key. */
  peers(): PeerInfo[]
  /** Bytes held now in unfinished frames from `peer` (over all its streams). */
  bufferedBytes(peer: string): number
  /** The most `bufferedBytes(peer)` may reach before the stream that exceeds it is cut off. */
  partialBudget(peer: string): number
  /** The limits applied to what `peer` sends on `protocol`; undefined when the protocol is closed to it. */
  limitsOf(peer: string, protocol: string): ProtocolLimits | undefined
  /** Replaces the allowed set (validator-set change); peers no longer allowed are disconnected. */
  setAllowed(keys: string[]): Promise<void>
}
