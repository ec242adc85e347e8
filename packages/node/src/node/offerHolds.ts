// Heights this node recently offered to state sync. A joiner fetches the offered height's pages and the
// rollback records above it for minutes (a 1,000,000-key state: about a minute); a node with a short
// `store.retainBlocks` would otherwise prune that height meanwhile, and every page the joiner asks after
// that would be missing. Retention keeps the lowest height held and everything above it.

/** How long an offered height stays held (longer than a large state sync takes). */
export const OFFER_HOLD_MS = 15 * 60_000
/** Heights remembered at most (one offer per new head at most counts: ~1 a second). */
const MAX_HELD = 4096

/**
 * @example
 * const holds = new OfferHolds()
 * holds.offered(h)        // serving an offer
 * holds.lowest()          // retention: keep from here
 */
export class OfferHolds {
  readonly #held = new Map<number, number>()
  readonly #now: () => number
  readonly #holdMs: number

  constructor(o: { now?: () => number; holdMs?: number } = {}) {
    this.#now = o.now ?? Date.now
    this.#holdMs = o.holdMs ?? OFFER_HOLD_MS
  }

  offered(height: number): void {
    this.#held.delete(height)
    this.#held.set(height, this.#now())
    if (this.#held.size > MAX_HELD) this.#held.delete(this.#held.keys().next().value!)
  }

  /** The lowest height offered within the hold time, if any (expired ones are forgotten). */
  lowest(): number | undefined {
    const since = this.#now() - this.#holdMs
    let low: number | undefined
    for (const [h, at] of this.#held) {
      if (at < since) this.#held.delete(h)
      else if (low === undefined || h < low) low = h
    }
    return low
  }
}
