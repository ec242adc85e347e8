import type { PrivateKey } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { type BackoffPolicy, checkBackoff, DEFAULT_BACKOFF } from './backoff.ts'
import { p2pError } from './errors.ts'
import { libp2pPrivateKey, normalizeValidatorKey, peerIdFromValidatorKey } from './identity.ts'
import { checkLimits, DEFAULT_PARTIAL_FRAMES } from './limits.ts'
import type { P2POptions, PartialFramePolicy, PenaltyWeights, ProtocolLimits } from './types.ts'

export const DEFAULT_LIMITS: ProtocolLimits = { maxMessageBytes: 1 << 20, ratePerSecond: 100, burst: 200 }
export const DEFAULT_PENALTY_WEIGHTS: PenaltyWeights = {
  default: 10,
  rateLimited: 1,
  badFrame: 25,
  partialFrame: 25,
  notPermitted: 25,
}
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000

/** `P2POptions` checked (each error names its field) and with defaults filled in. */
export interface CheckedOptions {
  privateKey: PrivateKey
  publicKey: string
  peerId: string
  listen: string[]
  allowed: Set<string>
  observers: Set<string>
  bootstrap: Map<string, string[]>
  limits: Map<string, ProtocolLimits>
  defaultLimits: ProtocolLimits
  observerLimits: Map<string, ProtocolLimits>
  partialPolicy: Required<PartialFramePolicy>
  weights: PenaltyWeights
  backoff: BackoffPolicy
  requestTimeoutMs: number
  maxQueuedFrames: number
  maxPendingSends: number
  inboundConnectionThreshold: number
}

export function checkOptions(options: P2POptions): CheckedOptions {
  if (options === null || typeof options !== 'object')
    throw p2pError('P2P_BAD_OPTIONS', 'options must be an object')
  if ((options.keyPair === undefined) === (options.identity === undefined))
    throw p2pError('P2P_BAD_OPTIONS', 'give exactly one of keyPair and identity')
  if (options.identity !== undefined && options.identity.type !== 'Ed25519')
    throw p2pError('P2P_BAD_OPTIONS', 'identity must be an Ed25519 key (the validator key)')
  const privateKey = options.identity ?? libp2pPrivateKey(options.keyPair!)
  const ownKey = options.identity ? options.identity.publicKey.raw : options.keyPair!.publicKey
  const publicKey = normalizeValidatorKey(Buffer.from(ownKey).toString('hex'), 'keyPair.publicKey')
  const peerId = peerIdFromValidatorKey(ownKey).toString()
  if (!Array.isArray(options.listen) || options.listen.some((a) => typeof a !== 'string')) {
    throw p2pError('P2P_BAD_OPTIONS', 'listen must be an array of multiaddr strings')
  }
  for (const a of options.listen) parseAddr(a, 'listen')
  const listen = [...options.listen]
  if (!Array.isArray(options.allowed))
    throw p2pError('P2P_BAD_OPTIONS', 'allowed must be an array of hex public keys')
  const allowed = new Set(options.allowed.map((k, i) => normalizeValidatorKey(k, `allowed[${i}]`)))
  if (options.observers !== undefined && !Array.isArray(options.observers))
    throw p2pError('P2P_BAD_OPTIONS', 'observers must be an array of hex public keys')
  const observers = new Set(
    (options.observers ?? []).map((k, i) => normalizeValidatorKey(k, `observers[${i}]`)),
  )
  const bootstrap = new Map<string, string[]>()
  for (const [i, b] of (options.bootstrap ?? []).entries()) {
    const key = normalizeValidatorKey(b?.publicKey, `bootstrap[${i}].publicKey`)
    if (!Array.isArray(b.addrs) || b.addrs.length === 0)
      throw p2pError('P2P_BAD_OPTIONS', `bootstrap[${i}].addrs must be a non-empty array`)
    for (const a of b.addrs) parseAddr(a, `bootstrap[${i}].addrs`)
    if (key !== publicKey) bootstrap.set(key, [...b.addrs])
  }
  const limits = new Map(
    Object.entries(options.limits ?? {}).map(([p, l]) => [p, checkLimits(l, `limits['${p}']`)]),
  )
  const defaultLimits = checkLimits(options.defaultLimits ?? DEFAULT_LIMITS, 'defaultLimits')
  const observerLimits = new Map(
    Object.entries(options.observerLimits ?? {}).map(([p, l]) => [
      p,
      checkLimits(l, `observerLimits['${p}']`),
    ]),
  )
  const partialPolicy = { ...DEFAULT_PARTIAL_FRAMES, ...options.partialFrames }
  const { maxBytesPerPeer, maxAgeMs } = partialPolicy
  if (!Number.isSafeInteger(maxBytesPerPeer) || maxBytesPerPeer < 0)
    throw p2pError(
      'P2P_BAD_OPTIONS',
      `partialFrames.maxBytesPerPeer must be an integer >= 0, got ${maxBytesPerPeer}`,
    )
  positive(maxAgeMs, 'partialFrames.maxAgeMs')
  const weights = { ...DEFAULT_PENALTY_WEIGHTS, ...options.penaltyWeights }
  for (const [k, w] of Object.entries(weights)) {
    if (!(w > 0) || !Number.isFinite(w))
      throw p2pError('P2P_BAD_OPTIONS', `penaltyWeights.${k} must be a finite number > 0`)
  }
  const backoff = checkBackoff({ ...DEFAULT_BACKOFF, ...options.reconnect })
  const requestTimeoutMs = positive(
    options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    'requestTimeoutMs',
  )
  const maxQueuedFrames = positive(options.maxQueuedFrames ?? 64, 'maxQueuedFrames')
  const inboundConnectionThreshold = positive(
    options.inboundConnectionThreshold ?? 10,
    'inboundConnectionThreshold',
  )
  const maxPendingSends = positive(options.maxPendingSends ?? 1024, 'maxPendingSends')
  return {
    privateKey,
    publicKey,
    peerId,
    listen,
    allowed,
    observers,
    bootstrap,
    limits,
    defaultLimits,
    observerLimits,
    partialPolicy,
    weights,
    backoff,
    requestTimeoutMs,
    maxQueuedFrames,
    maxPendingSends,
    inboundConnectionThreshold,
  }
}

export function parseAddr(addr: string, field: string) {
  try {
    return multiaddr(addr)
  } catch (err) {
    throw p2pError('P2P_BAD_OPTIONS', `${field}: bad multiaddr '${addr}': ${(err as Error).message}`)
  }
}

export function positive(n: number, field: string): number {
  if (typeof n !== 'number' || !(n > 0) || !Number.isFinite(n))
    throw p2pError('P2P_BAD_OPTIONS', `${field} must be a finite number > 0, got ${n}`)
  return n
}
