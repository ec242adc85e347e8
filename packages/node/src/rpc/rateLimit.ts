/**
 * Token bucket per client address: `ratePerSecond` tokens refill continuously up to a burst of the
 * same size. Time comes from the injected `now` (milliseconds) so tests can move it by hand.
 * Memory is bounded: past `maxClients` addresses the oldest bucket is forgotten (a forgotten client
 * starts again with a full bucket, which errs on the side of serving).
 */
export interface RateLimiter {
  /** True when the request may proceed (a token was taken). */
  take(client: string): boolean
}

export function createRateLimiter(opts: {
  ratePerSecond: number
  now: () => number
  maxClients?: number
}): RateLimiter {
  const rate = opts.ratePerSecond
  if (!(rate > 0) || !Number.isFinite(rate))
    throw new RangeError('rateLimitPerSecond must be a positive number')
  const burst = Math.max(1, rate)
  const maxClients = opts.maxClients ?? 10_000
  // Insertion order doubles as the eviction order: a touched bucket is moved to the end.
  const buckets = new Map<string, { tokens: number; at: number }>()
  return {
    take(client) {
      const now = opts.now()
      let b = buckets.get(client)
      if (b) {
        buckets.delete(client)
        b.tokens = Math.min(burst, b.tokens + (Math.max(0, now - b.at) * rate) / 1000)
        b.at = now
      } else {
        b = { tokens: burst, at: now }
        if (buckets.size >= maxClients) buckets.delete(buckets.keys().next().value!)
      }
      buckets.set(client, b)
      if (b.tokens < 1) return false
      b.tokens -= 1
      return true
    },
  }
}
