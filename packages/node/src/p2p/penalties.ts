import type { Clock } from './clock.ts'
import { p2pError } from './errors.ts'

/** How misbehaviour adds up. Scores decay exponentially, so old faults are forgiven. */
export interface PenaltyPolicy {
  /** Score at which a peer is disconnected and banned. */
  threshold: number
  /** Time for a score to halve, in ms. */
  halfLifeMs: number
  /** How long a banned peer is refused, in ms. */
  banMs: number
}

export const DEFAULT_PENALTY_POLICY: PenaltyPolicy = { threshold: 100, halfLifeMs: 60_000, banMs: 600_000 }

/** Outcome of one penalty. */
export interface PenaltyResult {
  /** Score after adding the penalty (after decay). */
  score: number
  /** True when this penalty crossed the threshold and started a ban. */
  banned: boolean
  /** When the ban ends (clock ms), if the peer is banned. */
  bannedUntil?: number
}

interface Entry {
  score: number
  at: number
}

/** Per-peer penalty scores with decay, and the bans they lead to. Keys are opaque peer ids. */
export class PeerScores {
  readonly policy: PenaltyPolicy
  private readonly clock: Clock
  private readonly scores = new Map<string, Entry>()
  private readonly bans = new Map<string, number>()

  constructor(policy: Partial<PenaltyPolicy>, clock: Clock) {
    const p = { ...DEFAULT_PENALTY_POLICY, ...policy }
    if (!(p.threshold > 0))
      throw p2pError('P2P_BAD_OPTIONS', `penalties.threshold must be > 0, got ${p.threshold}`)
    if (!(p.halfLifeMs > 0))
      throw p2pError('P2P_BAD_OPTIONS', `penalties.halfLifeMs must be > 0, got ${p.halfLifeMs}`)
    if (!(p.banMs >= 0)) throw p2pError('P2P_BAD_OPTIONS', `penalties.banMs must be >= 0, got ${p.banMs}`)
    this.policy = p
    this.clock = clock
  }

  /** Current (decayed) score of a peer; 0 when unknown. */
  score(peer: string): number {
    const e = this.scores.get(peer)
    if (!e) return 0
    const now = this.clock.now()
    const decayed = e.score * 2 ** (-Math.max(0, now - e.at) / this.policy.halfLifeMs)
    // Forget scores that have decayed to nothing so the map does not keep every peer ever seen.
    if (decayed < 1e-3) {
      this.scores.delete(peer)
      return 0
    }
    e.score = decayed
    e.at = Math.max(e.at, now)
    return decayed
  }

  /** Adds a penalty of `weight` (> 0). Crossing the threshold bans the peer and clears its score. */
  add(peer: string, weight: number): PenaltyResult {
    if (!(weight > 0) || !Number.isFinite(weight))
      throw p2pError('P2P_BAD_OPTIONS', `penalty weight must be a finite number > 0, got ${weight}`)
    const until = this.bannedUntil(peer)
    if (until !== undefined) return { score: this.score(peer), banned: false, bannedUntil: until }
    const score = this.score(peer) + weight
    if (score >= this.policy.threshold) {
      this.scores.delete(peer)
      const bannedUntil = this.clock.now() + this.policy.banMs
      this.bans.set(peer, bannedUntil)
      return { score, banned: true, bannedUntil }
    }
    this.scores.set(peer, { score, at: this.clock.now() })
    return { score, banned: false }
  }

  /** End of the peer's ban (clock ms), or undefined when it is not banned. Expired bans are dropped. */
  bannedUntil(peer: string): number | undefined {
    const until = this.bans.get(peer)
    if (until === undefined) return undefined
    if (this.clock.now() >= until) {
      this.bans.delete(peer)
      return undefined
    }
    return until
  }

  isBanned(peer: string): boolean {
    return this.bannedUntil(peer) !== undefined
  }
}
