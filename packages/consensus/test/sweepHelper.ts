import * as assert from 'uvu/assert'
import {
  FAULT_KINDS,
  type FaultKind,
  type SweepOptions,
  type SweepSummary,
  sweep,
} from '@cityledger/consensus'

/** Every fault kind but `bigBlocks`: the CI sweeps run big blocks in their own, smaller sweeps (they cost ~10x). */
export const SMALL_BLOCK_KINDS: readonly FaultKind[] = FAULT_KINDS.filter((k) => k !== 'bigBlocks')

/**
 * Kinds run together with big blocks (each run has all of them): crashes for good, silent and lying
 * replicas and partitions make VIEW-CHANGEs and NEW-VIEWs happen while blocks are up to 8 MiB.
 */
export const BIG_BLOCK_KINDS: readonly FaultKind[] = [
  'bigBlocks',
  'loss',
  'partition',
  'crash',
  'crashForever',
  'silent',
  'lyingViewChange',
  'lyingNewView',
]

/**
 * Runs `seeds` scenarios from `first` (each run draws a subset of `faults`, default all, and their
 * intensities from its seed; `allFaults` injects all of them in every run) and asserts zero violations,
 * liveness after the heal included; a failure names the seed and the scenario to replay with
 * `pnpm --filter @cityledger/consensus sim --seed <seed> --n <n> [--faults ...]`.
 */
export function sweepAndCheck(
  n: number,
  first: number,
  seeds: number,
  faults?: readonly FaultKind[],
  extra: Partial<SweepOptions> = {},
): SweepSummary {
  const s = sweep({ n, firstSeed: first, seeds, ...(faults ? { faults } : {}), ...extra })
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

/** Every given fault kind was injected in at least one of the runs. */
export function assertCoverage(s: SweepSummary, kinds: readonly FaultKind[] = FAULT_KINDS): void {
  for (const k of kinds) assert.ok((s.faultsInjected[k] ?? 0) > 0, `fault ${k} never injected`)
  assert.ok(s.viewChanges > 0, 'no view change happened')
}
