import { type BackoffPolicy, backoffDelay } from './backoff.ts'
import type { Clock, TimerHandle } from './clock.ts'
import type { Logger } from './logger.ts'

/** What the reconnector needs from the node. */
export interface ReconnectorDeps {
  clock: Clock
  policy: BackoffPolicy
  log: Logger
  /** Dials the peer; resolves once connected. */
  dial(peer: string): Promise<void>
  isConnected(peer: string): boolean
  /** End of the peer's ban (clock ms), if banned: no dial before then. */
  bannedUntil(peer: string): number | undefined
  onDialFailed(peer: string, error: string, attempt: number, retryInMs: number): void
}

interface State {
  attempt: number
  timer?: TimerHandle
  dialing: boolean
}

/**
 * Keeps bootstrap peers connected: dials them at start and after every drop, retrying failures with
 * capped exponential backoff (timers from the injected clock). A ban postpones the next attempt to its end.
 */
export class Reconnector {
  private readonly deps: ReconnectorDeps
  private readonly peers = new Map<string, State>()
  private running = false

  constructor(peers: Iterable<string>, deps: ReconnectorDeps) {
    this.deps = deps
    for (const p of peers) this.peers.set(p, { attempt: 0, dialing: false })
  }

  has(peer: string): boolean {
    return this.peers.has(peer)
  }

  start(): void {
    this.running = true
    for (const peer of this.peers.keys()) void this.tryDial(peer)
  }

  stop(): void {
    this.running = false
    for (const s of this.peers.values()) {
      if (s.timer !== undefined) this.deps.clock.clearTimeout(s.timer)
      s.timer = undefined
      s.attempt = 0
    }
  }

  /** A bootstrap peer connected: forget its failures. */
  connected(peer: string): void {
    const s = this.peers.get(peer)
    if (!s) return
    s.attempt = 0
    if (s.timer !== undefined) this.deps.clock.clearTimeout(s.timer)
    s.timer = undefined
  }

  /** A bootstrap peer dropped: schedule a redial after the initial backoff. */
  disconnected(peer: string): void {
    const s = this.peers.get(peer)
    if (!s || !this.running || s.dialing || s.timer !== undefined) return
    this.schedule(peer, s, backoffDelay(s.attempt, this.deps.policy))
  }

  private schedule(peer: string, s: State, delay: number): void {
    if (!this.running) return
    if (s.timer !== undefined) this.deps.clock.clearTimeout(s.timer)
    s.timer = this.deps.clock.setTimeout(() => {
      s.timer = undefined
      void this.tryDial(peer)
    }, delay)
  }

  private async tryDial(peer: string): Promise<void> {
    const s = this.peers.get(peer)
    if (!s || !this.running || s.dialing || this.deps.isConnected(peer)) return
    const until = this.deps.bannedUntil(peer)
    if (until !== undefined) return this.schedule(peer, s, Math.max(until - this.deps.clock.now(), 1))
    s.dialing = true
    try {
      await this.deps.dial(peer)
      s.attempt = 0
    } catch (err) {
      if (!this.running) return
      const delay = backoffDelay(s.attempt, this.deps.policy)
      const attempt = s.attempt
      s.attempt++
      this.deps.log.debug({ peer, attempt, retryInMs: delay, err: String(err) }, 'dial failed')
      this.deps.onDialFailed(peer, (err as Error)?.message ?? String(err), attempt, delay)
      this.schedule(peer, s, delay)
    } finally {
      s.dialing = false
    }
    // Connected and already lost again while the dial resolved: try again.
    if (this.running && !this.deps.isConnected(peer) && s.timer === undefined)
      this.schedule(peer, s, backoffDelay(s.attempt++, this.deps.policy))
  }
}
