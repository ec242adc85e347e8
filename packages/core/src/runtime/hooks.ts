import type { Value } from '../codec/msgpack.ts'
import type { ServiceEvent } from './executor.ts'
import { synchronous } from './guards.ts'
import { type Layer, Meter, ResourceLimitError, type WorkLimits } from './layer.ts'
import type { BlockContext, ServiceDefinition } from './service.ts'

/**
 * End-of-block hooks that cannot stall a chain silently.
 *
 * - A hook runs in a savepoint with 16x a tx's work limits. If it throws, its writes and events are
 *   dropped, an `endBlockFailed` event ({ error, failures, halted }) is recorded in the block's events,
 *   the runtime's `counters.hookFailures` goes up, and the hook's record `_sys/hook/<service>` in chain
 *   state counts the consecutive failures. A success resets the record.
 * - After `maxFailures` consecutive failures (default 3) the hook is halted: it no longer runs, the
 *   record says `halted: true` (operators read it from `runtime.hookStatus` or the state), and an
 *   `endBlockHalted` event is recorded. A new version of the service activating (an upgrade, whose
 *   migration can repair the queue) clears the record and the hook runs again.
 * - Inside a hook, `ctx.attempt(item, fn)` runs one queue item in a savepoint of its own: a failing
 *   item is dropped with an `endBlockItemFailed` event and `counters.itemFailures`, and the hook moves
 *   on (its cursor past the poison item), so one bad item never blocks the rest.
 * Everything here is decided by chain state and the block alone: every node does the same.
 */

/** Per-service failure counts since the runtime started (this process; for metrics, not consensus). */
export interface HookCounters {
  /** Failed end-of-block hook runs, by service. */
  hookFailures: Map<string, number>
  /** Queue items that failed inside `ctx.attempt`, by service. */
  itemFailures: Map<string, number>
  /** Hooks halted after too many consecutive failures, by service. */
  halted: Map<string, number>
}

export function newHookCounters(): HookCounters {
  return { hookFailures: new Map(), itemFailures: new Map(), halted: new Map() }
}

/** A hook's failure record in chain state. */
export interface HookRecord {
  failures: number
  halted: boolean
  /** Height of the last failure. */
  height: number
  /** What the last failure said. */
  message: string
}

export const hookKey = (service: string) => `_sys/hook/${service}`

const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1)

export function runEndBlock(o: {
  block: Layer
  height: number
  time: number
  order: string[]
  services: ReadonlyMap<string, ServiceDefinition>
  limits: WorkLimits
  counters: HookCounters
  maxFailures: number
  context: (layer: Layer, service: string, events: ServiceEvent[]) => BlockContext & { end(): void }
  onBug: ((info: { service: string; method: string; error: unknown }) => void) | undefined
  failureText: (err: unknown) => string
}): ServiceEvent[] {
  const events: ServiceEvent[] = []
  for (const name of o.order) {
    const svc = o.services.get(name)!
    if (!svc.endBlock) continue
    const record = o.block.get(hookKey(name)) as unknown as HookRecord | undefined
    if (record?.halted) continue
    const layer = o.block.child(
      new Meter({
        ...o.limits,
        maxReads: o.limits.maxReads * 16,
        maxWrites: o.limits.maxWrites * 16,
        maxEvents: o.limits.maxEvents * 16,
      }),
    )
    const mine: ServiceEvent[] = []
    const ctx = o.context(layer, name, mine)
    try {
      synchronous(svc.endBlock(ctx) as unknown, `${name}.endBlock`)
      layer.commit()
      events.push(...mine)
      if (record) o.block.delete(hookKey(name))
    } catch (err) {
      o.onBug?.({ service: name, method: 'endBlock', error: err })
      bump(o.counters.hookFailures, name)
      const failures = (record?.failures ?? 0) + 1
      const halted = failures >= o.maxFailures
      const message =
        err instanceof ResourceLimitError ? `RESOURCE_LIMIT: ${err.message}` : o.failureText(err)
      const next: HookRecord = { failures, halted, height: o.height, message }
      o.block.set(hookKey(name), next as unknown as Value)
      events.push({ service: name, name: 'endBlockFailed', data: { error: message, failures, halted } })
      if (halted) {
        bump(o.counters.halted, name)
        events.push({ service: name, name: 'endBlockHalted', data: { failures, height: o.height } })
      }
    } finally {
      ctx.end()
    }
  }
  return events
}

/** The failure record of every service that has one. */
export function hookStatus(layer: Layer, order: string[]): Record<string, HookRecord> {
  const out: Record<string, HookRecord> = {}
  for (const name of order) {
    const r = layer.get(hookKey(name)) as unknown as HookRecord | undefined
    if (r) out[name] = r
  }
  return out
}
