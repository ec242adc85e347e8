/**
 * The mempool: admission of signed transactions (limits, strict decoding, nonces, micro-batched signature
 * checks, the service's check), a fair batch per block, and clean-up after each commit. The verified
 * cache it fills is shared with block validation so a node verifies each transaction once.
 */
export { createMempool, GAP_WAIT_BLOCKS, RECENT_CAPACITY } from './mempool.ts'
export { MempoolError, type MempoolErrorCode } from './errors.ts'
export { VerifiedCache, VERIFIED_CACHE_CAPACITY } from './verifiedCache.ts'
export { BoundedHashSet, type HashLike } from './hashSet.ts'
export { SignatureBatcher, SIGNATURE_BATCH_SIZE } from './signatureBatcher.ts'
export type {
  AddResult,
  Mempool,
  MempoolLimits,
  MempoolOptions,
  MempoolStats,
  MempoolUpdate,
  ReapLimits,
  RemovalReason,
  UpdateResult,
} from './types.ts'
