/**
 * Time as the p2p layer sees it. Everything that depends on time (reconnect backoff, rate-limit refill,
 * penalty decay, request timeouts) reads it through this interface, so tests drive it with a manual clock
 * instead of sleeping.
 */
export interface Clock {
  /** Milliseconds on a monotonic-enough scale; only differences are used. */
  now(): number
  /** Runs `fn` once after `ms` milliseconds; the returned handle goes to `clearTimeout`. */
  setTimeout(fn: () => void, ms: number): TimerHandle
  clearTimeout(handle: TimerHandle): void
}

/** Opaque timer handle: whatever the clock's `setTimeout` returned. */
export type TimerHandle = unknown

/** The real clock: `performance.now()` for readings (immune to wall-clock jumps), Node timers. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
}

/** A clock that moves only when `advance` is called; timers fire in due order, ties in creation order. */
export interface ManualClock extends Clock {
  /** Moves time forward by `ms`, firing every timer that falls due on the way (at its due time). */
  advance(ms: number): void
  /** Number of timers not yet fired or cleared. */
  pending(): number
}

interface Timer {
  at: number
  fn: () => void
}

/** A manual clock starting at `start` ms. For tests and simulations. */
export function createManualClock(start = 0): ManualClock {
  let now = start
  let seq = 0
  const timers = new Map<number, Timer>()
  return {
    now: () => now,
    setTimeout(fn, ms) {
      const id = ++seq
      timers.set(id, { at: now + Math.max(0, ms), fn })
      return id
    },
    clearTimeout(handle) {
      timers.delete(handle as number)
    },
    advance(ms) {
      const target = now + Math.max(0, ms)
      for (;;) {
        // Fire the earliest timer due by `target`, at its own time, so timers set by timers run too.
        let next: [number, Timer] | undefined
        for (const entry of timers)
          if (entry[1].at <= target && (!next || entry[1].at < next[1].at)) next = entry
        if (!next) break
        now = Math.max(now, next[1].at)
        timers.delete(next[0])
        next[1].fn()
      }
      now = target
    },
    pending: () => timers.size,
  }
}
