/** libp2p protocol ids of a validator; each has its own size and rate limits. */
export const PROTOCOL = {
  consensus: '/cityledger/consensus/1',
  txs: '/cityledger/txs/1',
  sync: '/cityledger/sync/1',
} as const
