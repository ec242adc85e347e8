import type { Clock } from './clock.ts'
import { p2pError } from './errors.ts'

/**
 * Token bucket: holds at most `burst` tokens, refills continuously at `ratePerSecond`. One message costs
 * one token. Starts full, so a peer may send a burst right after connecting.
 */
export class TokenBucket {
  readonly ratePerSecond: number
  readonly burst: number
  private readonly clock: Clock
  private tokens: number
  private last: number

  constructor(ratePerSecond: number, burst: number, clock: Clock) {
    if (!(ratePerSecond >= 0) || !Number.isFinite(ratePerSecond))
      throw p2pError('P2P_BAD_OPTIONS', `ratePerSecond must be a finite number >= 0, got ${ratePerSecond}`)
    if (!(burst >= 1) || !Number.isFinite(burst))
      throw p2pError('P2P_BAD_OPTIONS', `burst must be a finite number >= 1, got ${burst}`)
    this.ratePerSecond = ratePerSecond
    this.burst = burst
    this.clock = clock
    this.tokens = burst
    this.last = clock.now()
  }

  /** Tokens available now (fractional while refilling). */
  available(): number {
    this.refill()
    return this.tokens
  }

  /** Takes `n` tokens if they are all there; false (and nothing taken) otherwise. */
  tryTake(n = 1): boolean {
    this.refill()
    if (this.tokens < n) return false
    this.tokens -= n
    return true
  }

  private refill(): void {
    const now = this.clock.now()
    // A clock that steps backwards must not mint or burn tokens.
    if (now > this.last)
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.ratePerSecond) / 1000)
    this.last = Math.max(this.last, now)
  }
}
