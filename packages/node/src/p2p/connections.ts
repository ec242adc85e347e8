import type { Connection } from '@libp2p/interface'
import type { Logger } from './logger.ts'

/**
 * Which of several open connections with one peer key to keep. Both ends keep the one dialled by the
 * lower key (so a simultaneous dial settles the same way at both ends); of those dialled by the same
 * side, the newest (a restarted peer's old connection may be dead).
 */
export function connectionToKeep(open: readonly Connection[], ourKey: string, remoteKey: string): Connection {
  const preferredDialer = [remoteKey, ourKey].sort()[0]
  const rank = (c: Connection): [number, number] => [
    (c.direction === 'outbound' ? ourKey : remoteKey) === preferredDialer ? 1 : 0,
    c.timeline.open ?? 0,
  ]
  let keep = open[0]!
  for (const c of open.slice(1)) {
    const [a, b] = rank(c)
    const [x, y] = rank(keep)
    if (a > x || (a === x && b >= y)) keep = c
  }
  return keep
}

/** Request concurrency per `peer protocol`: at most `max` at once, the rest wait in order. */
export class RequestSlots {
  private readonly slots = new Map<string, { active: number; waiting: (() => void)[] }>()

  /** Resolves with a release function once a slot is free. */
  acquire(id: string, max: number): Promise<() => void> {
    let s = this.slots.get(id)
    if (!s) {
      s = { active: 0, waiting: [] }
      this.slots.set(id, s)
    }
    const slot = s
    const release = (): void => {
      const next = slot.waiting.shift()
      if (next) next()
      else if (--slot.active === 0) this.slots.delete(id)
    }
    if (slot.active < max) {
      slot.active++
      return Promise.resolve(once(release))
    }
    return new Promise((resolve) => slot.waiting.push(() => resolve(once(release))))
  }
}

function once(fn: () => void): () => void {
  let done = false
  return () => {
    if (done) return
    done = true
    fn()
  }
}

/**
 * Of the open connections to one peer key (a simultaneous dial leaves two), aborts all but the one
 * both sides keep (`connectionToKeep`); false when `conn` itself was aborted.
 */
export function keepOneConnection(
  all: readonly Connection[],
  conn: Connection,
  ourKey: string,
  remoteKey: string,
  log: Logger,
): boolean {
  const open = all.filter((c) => c.status === 'open')
  if (open.length <= 1) return true
  const keep = connectionToKeep(open, ourKey, remoteKey)
  for (const c of open) {
    if (c === keep) continue
    log.debug({ peer: remoteKey, direction: c.direction }, 'second connection with the same key, closing one')
    c.abort(new Error('another connection with the same key is kept'))
  }
  return keep === conn
}
