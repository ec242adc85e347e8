import { BoundedHashSet } from './hashSet.ts'

/** Default capacity: a few blocks' worth of transactions at full load, about 30 MB. */
export const VERIFIED_CACHE_CAPACITY = 200_000

/**
 * "Verified once per node": hashes (SHA-256 of the exact envelope bytes, signature included) whose
 * signature passed. Admission adds to it; block validation asks `has(tx.hash)` and skips the check.
 * Keyed by the exact bytes, so a hit can only ever mean "these very bytes verified": it never needs
 * invalidating. Bounded and insertion-ordered: the oldest entries are forgotten first, which only costs
 * a second verification.
 *
 * One instance per node, shared by the mempool and block validation.
 *
 * @example
 * const verifiedCache = new VerifiedCache()
 * const mempool = createMempool({ ..., verifiedCache })
 * // in block validation:
 * const toVerify = txs.filter((tx) => !verifiedCache.has(tx.hash))
 */
export class VerifiedCache extends BoundedHashSet {
  constructor(capacity: number = VERIFIED_CACHE_CAPACITY) {
    super(capacity)
  }
}
