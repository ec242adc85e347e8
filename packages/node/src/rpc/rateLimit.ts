/**
 * Token bucket per client address: `ratePerSecond` tokens refill continuously up to `burst`. Time
 * comes from the injected `now` (milliseconds) so tests can move it by hand. Memory is bounded: past
 * `maxClients` addresses the least recently seen bucket is forgotten (a forgotten client starts
 * again with a full bucket, which errs on the side of serving).
 */
export interface RateLimiter {
  /**
   * 0 when the request may proceed (`cost` tokens, default 1, were taken), else the ms until that
   * many are there (nothing is taken). A cost above the burst can never pass: Infinity.
   */
  take(client: string, cost?: number): number
  /** The most tokens a client can hold. */
  readonly burst: number
}

export function createRateLimiter(opts: {
  ratePerSecond: number
  /** Default: the rate (one second's worth). */
  burst?: number
  now: () => number
  maxClients?: number
}): RateLimiter {
  const rate = opts.ratePerSecond
  if (!(rate > 0) || !Number.isFinite(rate))
    throw new RangeError('rateLimitPerSecond must be a positive number')
  const burst = Math.max(1, opts.burst ?? rate)
  if (!Number.isFinite(burst)) throw new RangeError('rateLimitBurst must be a finite number')
  const maxClients = opts.maxClients ?? 10_000
  // Insertion order doubles as the eviction order: a touched bucket is moved to the end.
  const buckets = new Map<string, { tokens: number; at: number }>()
  return {
    burst,
    take(client, cost = 1) {
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
      if (cost > burst) return Number.POSITIVE_INFINITY
      if (b.tokens < cost) return Math.max(1, Math.ceil(((cost - b.tokens) * 1000) / rate))
      b.tokens -= cost
      return 0
    },
  }
}
