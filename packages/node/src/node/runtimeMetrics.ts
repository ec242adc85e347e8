import type { Runtime } from '@cityledger/core'
import { Gauge, type Registry } from 'prom-client'

/**
 * Exposes the runtime's end-of-block hook counters as `cityledger_service_endblock_failures{service,
 * kind}`: kind `hook` (a hook run that failed), `item` (a queue item that failed inside ctx.attempt),
 * `halted` (a hook halted after consecutive failures). Counts since this process started; operators
 * alert on any increase (a halted hook stays halted until an upgrade: see core's runtime/hooks.ts).
 */
export function registerRuntimeMetrics(registry: Registry, runtime: Runtime): void {
  const { counters } = runtime
  new Gauge({
    name: 'cityledger_service_endblock_failures',
    help: 'End-of-block hook failures since start, by service and kind (hook, item, halted)',
    labelNames: ['service', 'kind'],
    registers: [registry],
    collect() {
      for (const [kind, m] of [
        ['hook', counters.hookFailures],
        ['item', counters.itemFailures],
        ['halted', counters.halted],
      ] as const) {
        for (const [service, n] of m) this.set({ service, kind }, n)
      }
    },
  })
}
