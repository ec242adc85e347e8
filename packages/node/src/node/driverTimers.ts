// The consensus driver's timers and commit metrics, kept out of driver.ts.
import type { Block, TxResult } from '@cityledger/core'
import type { Metrics } from '../metrics/index.ts'
import type { DriverClock } from './driverOptions.ts'

/** The replicas' timers, one per (epoch, timer id): a retired and a current replica never clobber each other's. */
export class EpochTimers {
  private readonly clock: DriverClock
  private readonly timers = new Map<string, unknown>()

  constructor(clock: DriverClock) {
    this.clock = clock
  }

  /** (Re)arms `timer` of `epoch`: `fire` runs once after `ms` unless cancelled or re-armed. */
  set(epoch: number, timer: string, ms: number, fire: () => void): void {
    const key = `${epoch}/${timer}`
    this.cancel(epoch, timer)
    this.timers.set(
      key,
      this.clock.setTimeout(() => {
        this.timers.delete(key)
        fire()
      }, ms),
    )
  }

  cancel(epoch: number, timer: string): void {
    const key = `${epoch}/${timer}`
    const t = this.timers.get(key)
    if (t !== undefined) this.clock.clearTimeout(t)
    this.timers.delete(key)
  }

  clear(): void {
    for (const t of this.timers.values()) this.clock.clearTimeout(t)
    this.timers.clear()
  }
}

/** A committed block in the metrics: height, size, txs by outcome, and the commit latency if measured (ms). */
export function observeCommit(
  m: Metrics,
  block: Block,
  results: readonly TxResult[],
  latencyMs: number | undefined,
): void {
  m.height.set(block.header.height)
  m.blockTxs.observe(block.txs.length)
  m.blockBytes.observe(block.bytes.length)
  let failed = 0
  for (const r of results) if (r.code !== null) failed++
  m.txsCommitted.inc({ outcome: 'ok' }, results.length - failed)
  if (failed) m.txsCommitted.inc({ outcome: 'failed' }, failed)
  if (latencyMs !== undefined) m.commitLatency.observe(latencyMs / 1000)
}
