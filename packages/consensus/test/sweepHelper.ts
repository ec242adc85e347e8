import * as assert from 'uvu/assert'
import { FAULT_KINDS, type FaultKind, type SweepSummary, sweep } from '@cityledger/consensus'

/**
 * Runs `seeds` scenarios from `first` with every fault kind enabled (each run draws a subset and
 * intensities from its seed) and asserts zero violations, liveness after the heal included; a failure
 * names the seed to replay with `pnpm --filter @cityledger/consensus sim --seed <seed> --n <n>`.
 */
export function sweepAndCheck(
  n: number,
  first: number,
  seeds: number,
  faults?: readonly FaultKind[],
): SweepSummary {
  const s = sweep({ n, firstSeed: first, seeds, ...(faults ? { faults } : {}) })
  const lines = s.violations.slice(0, 5).map((v) => `${v.kind}: ${v.message}`)
  assert.is(
    s.violations.length,
    0,
    `n=${n} seeds ${first}..${first + seeds - 1}${faults ? ` faults ${faults.join(',')}` : ''}: ${JSON.stringify(s.violationsByKind)}\n${lines.join('\n')}`,
  )
  assert.is(s.incomplete, 0, 'runs out of step budget')
  assert.ok(s.heightsCommitted >= seeds * 11, 'heights were committed')
  return s
}

/** Every fault kind of the simulator was injected in at least one of the runs. */
export function assertCoverage(s: SweepSummary, kinds: readonly FaultKind[] = FAULT_KINDS): void {
  for (const k of kinds) assert.ok((s.faultsInjected[k] ?? 0) > 0, `fault ${k} never injected`)
  assert.ok(s.viewChanges > 0, 'no view change happened')
}
