import type { ProtocolLimits } from '../p2p/index.ts'

/** libp2p protocol ids of a validator; each has its own size and rate limits. */
export const PROTOCOL = {
  consensus: '/cityledger/consensus/1',
  txs: '/cityledger/txs/1',
  sync: '/cityledger/sync/1',
  stateSync: '/cityledger/statesync/1',
} as const

const KiB = 1024
const MiB = 1024 * KiB

/** Most txs in one gossip batch. */
export const TX_BATCH_MAX_TXS = 512
/** Most envelope bytes in one gossip batch (a batch always holds at least one tx, at most 64 KiB). */
export const TX_BATCH_MAX_BYTES = 1 * MiB
/** A gossip frame: the batch plus its msgpack framing (at most 5 bytes per entry and 5 for the array). */
export const TX_FRAME_BYTES = TX_BATCH_MAX_BYTES + 16 * KiB
/** A sync request (`['status']` or `['blocks', from, count]`) is a few dozen bytes; serveSync decodes 64. */
export const SYNC_REQUEST_MAX_BYTES = 64
/** Envelope bytes of a sync response before the responder stops adding blocks (see SYNC_LIMITS). */
const SYNC_RESPONSE_BYTES = 32 * MiB

/**
 * Most page hashes in one state-sync request: 1,024 (~340 KiB of pages for an answer; a joiner's page
 * rate is requests/s per peer times this, and the protocol's rate limit counts requests).
 */
export const STATE_SYNC_MAX_HASHES = 1024
/** A state-sync request: 1,024 hashes (34 bytes each), or a keys cursor (at most 8 KiB), framing. */
export const STATE_SYNC_REQUEST_MAX_BYTES = 48 * KiB
/** Bytes of pages or keys a state-sync answer holds before the responder stops adding (one always goes). */
export const STATE_SYNC_ANSWER_BYTES = 4 * MiB
/** Largest state-sync response a node reads: the answer bytes, one page or key over it, and framing. */
const STATE_SYNC_RESPONSE_BYTES = 2 * STATE_SYNC_ANSWER_BYTES + 64 * KiB

/** What the protocol limits are sized from. */
export interface ProtocolSizes {
  /** Largest consensus message, bytes: the maximum block plus the consensus framing around it. */
  consensusFrameBytes: number
}

/**
 * The limits a validator applies to what other validators send it, per protocol. Requests on sync are
 * tiny, so its inbound limit is tiny; its responses (which only our own requests read) may hold up to
 * 32 MiB of blocks, or one maximum block. Consensus frames are sized from the maximum block; the byte
 * budget lets a peer send 3 maximum frames at once and 6 per second.
 */
export function protocolLimits(sizes: ProtocolSizes): Record<string, ProtocolLimits> {
  const frame = sizes.consensusFrameBytes
  return {
    [PROTOCOL.consensus]: {
      maxMessageBytes: frame,
      ratePerSecond: 2000,
      burst: 4000,
      bytesPerSecond: 6 * frame,
      burstBytes: 3 * frame,
      maxStreams: 2,
    },
    [PROTOCOL.txs]: {
      maxMessageBytes: TX_FRAME_BYTES,
      ratePerSecond: 500,
      burst: 1000,
      bytesPerSecond: 8 * MiB,
      burstBytes: 16 * MiB,
      maxStreams: 2,
    },
    [PROTOCOL.sync]: {
      maxMessageBytes: SYNC_REQUEST_MAX_BYTES,
      maxResponseBytes: SYNC_RESPONSE_BYTES + frame,
      ratePerSecond: 50,
      burst: 100,
      maxStreams: 4,
    },
    [PROTOCOL.stateSync]: stateSyncLimits(50, 4),
  }
}

/** State sync: small requests, answers of up to ~4 MiB read from the store per request. */
function stateSyncLimits(ratePerSecond: number, maxStreams: number): ProtocolLimits {
  return {
    maxMessageBytes: STATE_SYNC_REQUEST_MAX_BYTES,
    maxResponseBytes: STATE_SYNC_RESPONSE_BYTES,
    ratePerSecond,
    burst: 2 * ratePerSecond,
    maxStreams,
  }
}

/**
 * What observers (non-validator keys in `p2p.observers`) may send: txs and sync, at lower rates and
 * fewer streams than validators, and no consensus (their streams on it are refused and penalised).
 */
export function observerProtocolLimits(sizes: ProtocolSizes): Record<string, ProtocolLimits> {
  return {
    [PROTOCOL.txs]: {
      maxMessageBytes: TX_FRAME_BYTES,
      ratePerSecond: 50,
      burst: 100,
      bytesPerSecond: 1 * MiB,
      burstBytes: 4 * MiB,
      maxStreams: 1,
    },
    [PROTOCOL.sync]: {
      maxMessageBytes: SYNC_REQUEST_MAX_BYTES,
      maxResponseBytes: SYNC_RESPONSE_BYTES + sizes.consensusFrameBytes,
      ratePerSecond: 10,
      burst: 20,
      maxStreams: 2,
    },
    // A node joining by state sync is usually an observer until it is added as a validator.
    [PROTOCOL.stateSync]: stateSyncLimits(25, 2),
  }
}
