import type { ProtocolLimits } from '../p2p/index.ts'

/** libp2p protocol ids of a validator; each has its own size and rate limits. */
export const PROTOCOL = {
  consensus: '/cityledger/consensus/1',
  txs: '/cityledger/txs/1',
  sync: '/cityledger/sync/1',
} as const

/** What the protocol limits are sized from. */
export interface ProtocolSizes {
  /** Largest consensus message, bytes: the maximum block plus the consensus framing around it. */
  consensusFrameBytes: number
}

/** The limits a validator applies to what its peers send it, per protocol. */
export function protocolLimits(sizes: ProtocolSizes): Record<string, ProtocolLimits> {
  return {
    [PROTOCOL.consensus]: { maxMessageBytes: sizes.consensusFrameBytes, ratePerSecond: 2000, burst: 4000 },
    [PROTOCOL.txs]: { maxMessageBytes: 8 * 1024 * 1024, ratePerSecond: 500, burst: 1000 },
    [PROTOCOL.sync]: { maxMessageBytes: 64 * 1024 * 1024, ratePerSecond: 50, burst: 100 },
  }
}
