/** Size limits that every node enforces before decoding. Changing them is a network upgrade. */
export const LIMITS = {
  /** One transaction envelope (body + signature), bytes. */
  maxTxBytes: 64 * 1024,
  /** One encoded block (header + txs), bytes. */
  maxBlockBytes: 16 * 1024 * 1024,
  /** Transactions in one block. */
  maxBlockTxs: 20_000,
  /** Nesting depth of transaction arguments. */
  maxArgsDepth: 8,
  /** One consensus message, bytes (a NEW-VIEW carries many certificates). */
  maxConsensusBytes: 4 * 1024 * 1024,
} as const

/**
 * The largest consensus message, bytes, for a chain whose blocks are at most `maxBlockBytes`: one
 * block (a pre-prepare, a certificate or a fetched block carries at most one) plus
 * `LIMITS.maxConsensusBytes` for votes, certificates and framing. VIEW-CHANGE and NEW-VIEW carry
 * digests and certificates, never blocks, so they fit whatever the block size. The replica's
 * `maxMessageBytes` and the p2p consensus frame limit are both this number: a message one side
 * accepts is never one the other refuses.
 */
export function consensusMessageLimit(maxBlockBytes: number = LIMITS.maxBlockBytes): number {
  if (!Number.isSafeInteger(maxBlockBytes) || maxBlockBytes < 1)
    throw new TypeError('maxBlockBytes: expected a positive integer')
  return maxBlockBytes + LIMITS.maxConsensusBytes
}

/** Chain ids: lowercase letters, digits and dashes, 1..64 characters. */
export const CHAIN_ID_RE = /^[a-z0-9][a-z0-9-]{0,63}$/
/** Service names: lowercase, start with a letter, up to 32 characters. */
export const SERVICE_RE = /^[a-z][a-z0-9_-]{0,31}$/
/** Method and query names: letters, digits and underscores, start with a letter, up to 64 characters. */
export const METHOD_RE = /^[a-zA-Z][a-zA-Z0-9_]{0,63}$/
