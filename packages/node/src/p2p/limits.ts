import { p2pError } from './errors.ts'
import { MAX_FRAME_PAYLOAD } from './frame.ts'
import type { PartialFramePolicy, ProtocolLimits } from './types.ts'

/** Streams per protocol and direction a peer may hold when its limits do not say. */
export const DEFAULT_MAX_STREAMS = 4

export const DEFAULT_PARTIAL_FRAMES: Required<PartialFramePolicy> = {
  maxBytesPerPeer: 0, // 0: derived from the peer's protocol limits (see partialBudgetFor)
  maxAgeMs: 30_000,
}

/** Checks limits from configuration or callers; names the protocol in errors. */
export function checkLimits(limits: ProtocolLimits, where: string): ProtocolLimits {
  const { maxMessageBytes, ratePerSecond, burst } = limits ?? ({} as ProtocolLimits)
  if (!Number.isSafeInteger(maxMessageBytes) || maxMessageBytes < 1 || maxMessageBytes > MAX_FRAME_PAYLOAD) {
    throw p2pError(
      'P2P_BAD_OPTIONS',
      `${where}.maxMessageBytes must be an integer in [1, 2^32), got ${maxMessageBytes}`,
    )
  }
  if (typeof ratePerSecond !== 'number' || !(ratePerSecond >= 0) || !Number.isFinite(ratePerSecond)) {
    throw p2pError(
      'P2P_BAD_OPTIONS',
      `${where}.ratePerSecond must be a finite number >= 0, got ${ratePerSecond}`,
    )
  }
  if (typeof burst !== 'number' || !(burst >= 1) || !Number.isFinite(burst)) {
    throw p2pError('P2P_BAD_OPTIONS', `${where}.burst must be a finite number >= 1, got ${burst}`)
  }
  const out: ProtocolLimits = { maxMessageBytes, ratePerSecond, burst }
  const { maxResponseBytes, bytesPerSecond, burstBytes, maxStreams } = limits
  if (maxResponseBytes !== undefined) {
    if (
      !Number.isSafeInteger(maxResponseBytes) ||
      maxResponseBytes < 1 ||
      maxResponseBytes > MAX_FRAME_PAYLOAD
    )
      throw p2pError(
        'P2P_BAD_OPTIONS',
        `${where}.maxResponseBytes must be an integer in [1, 2^32), got ${maxResponseBytes}`,
      )
    out.maxResponseBytes = maxResponseBytes
  }
  if (bytesPerSecond !== undefined) {
    if (!(bytesPerSecond >= 0) || !Number.isFinite(bytesPerSecond))
      throw p2pError(
        'P2P_BAD_OPTIONS',
        `${where}.bytesPerSecond must be a finite number >= 0, got ${bytesPerSecond}`,
      )
    out.bytesPerSecond = bytesPerSecond
    out.burstBytes = burstBytes ?? Math.max(maxMessageBytes, bytesPerSecond)
  } else if (burstBytes !== undefined) {
    throw p2pError('P2P_BAD_OPTIONS', `${where}.burstBytes needs bytesPerSecond`)
  }
  if (out.burstBytes !== undefined && !(out.burstBytes >= maxMessageBytes && Number.isFinite(out.burstBytes)))
    throw p2pError(
      'P2P_BAD_OPTIONS',
      `${where}.burstBytes must be at least maxMessageBytes (${maxMessageBytes}), got ${out.burstBytes}`,
    )
  if (maxStreams !== undefined) {
    if (!Number.isSafeInteger(maxStreams) || maxStreams < 1)
      throw p2pError('P2P_BAD_OPTIONS', `${where}.maxStreams must be an integer >= 1, got ${maxStreams}`)
    out.maxStreams = maxStreams
  }
  return out
}

/**
 * The derived per-peer partial budget: one unfinished frame of each protocol open to the peer, which is
 * what an honest peer (one stream per protocol) can have in flight at once.
 */
export function partialBudgetFor(limits: Iterable<ProtocolLimits>): number {
  let sum = 0
  for (const l of limits) sum += l.maxMessageBytes
  return sum
}

/** Checks an outgoing message before it is framed; returns the protocol's limits (`limits`). */
export function checkOutgoing(protocol: string, data: Uint8Array, limits: ProtocolLimits): ProtocolLimits {
  if (typeof protocol !== 'string' || !protocol.startsWith('/'))
    throw p2pError('P2P_BAD_OPTIONS', `protocol must be a string starting with '/', got ${protocol}`)
  if (!(data instanceof Uint8Array)) throw p2pError('P2P_BAD_OPTIONS', 'data must be a Uint8Array')
  if (data.length > limits.maxMessageBytes)
    throw p2pError(
      'P2P_MESSAGE_TOO_LARGE',
      `message of ${data.length} bytes exceeds ${protocol}'s limit of ${limits.maxMessageBytes}`,
      { size: data.length, limit: limits.maxMessageBytes },
    )
  return limits
}
