import type { P2P, P2PEventMap, InboundMessage, MessageHandler } from './types.ts'

/**
 * Helpers for tests that run real p2p nodes: wait on events instead of sleeping. The timeout is only a
 * failure guard (a hung test fails with a message saying what it waited for), never synchronisation.
 */

/** Resolves with the first `event` whose payload satisfies `pred`. */
export function waitForEvent<K extends keyof P2PEventMap>(
  p2p: P2P,
  event: K,
  pred: (payload: P2PEventMap[K][0]) => boolean,
  label: string,
  guardMs = 30_000,
): Promise<P2PEventMap[K][0]> {
  const waiting = new Promise<P2PEventMap[K][0]>((resolve, reject) => {
    const events = p2p.events as unknown as {
      on(e: string, l: (p: P2PEventMap[K][0]) => void): void
      off(e: string, l: (p: P2PEventMap[K][0]) => void): void
    }
    const guard = setTimeout(() => {
      events.off(event, listener)
      reject(new Error(`timed out (${guardMs} ms guard) waiting for ${label}`))
    }, guardMs)
    const listener = (payload: P2PEventMap[K][0]): void => {
      if (!pred(payload)) return
      clearTimeout(guard)
      events.off(event, listener)
      resolve(payload)
    }
    events.on(event, listener)
  })
  // A test that fails earlier may never await this; its guard must not then crash the run with an
  // unhandled rejection that hides the first failure.
  waiting.catch(() => {})
  return waiting
}

/** Resolves once `p2p` lists `peer` among its connected peers (at once if it already does). */
export async function waitConnected(
  p2p: P2P,
  peer: string,
  label = `${p2p.publicKey.slice(0, 8)} -> ${peer.slice(0, 8)}`,
): Promise<void> {
  // Events are emitted asynchronously, so checking and then subscribing in the same tick misses nothing.
  if (p2p.peers().some((p) => p.publicKey === peer)) return
  await waitForEvent(p2p, 'peer:connect', (e) => e.peer === peer, `peer:connect ${label}`)
}

/** Collects the messages a handler receives and lets a test wait for a count. */
export class Inbox {
  readonly messages: InboundMessage[] = []
  private waiters: { n: number; resolve: () => void }[] = []

  /** The handler to register; returns nothing (fire-and-forget). */
  readonly handler: MessageHandler = (msg) => {
    this.messages.push(msg)
    this.waiters = this.waiters.filter((w) => {
      if (this.messages.length < w.n) return true
      w.resolve()
      return false
    })
  }

  /** Resolves once at least `n` messages have arrived. */
  waitCount(n: number, label: string, guardMs = 30_000): Promise<void> {
    if (this.messages.length >= n) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const guard = setTimeout(
        () =>
          reject(new Error(`timed out waiting for ${n} messages (${label}); got ${this.messages.length}`)),
        guardMs,
      )
      this.waiters.push({
        n,
        resolve: () => {
          clearTimeout(guard)
          resolve()
        },
      })
    })
  }
}

/** A promise with its resolver outside, for handlers a test wants to hold and release. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void
  const promise = new Promise<T>((r) => {
    resolve = r
  })
  return { promise, resolve }
}
