import {
  type FaultKind,
  type SimOptions,
  type SimResult,
  type Violation,
  runSimulation,
} from './simulator.ts'

export interface SweepOptions extends Omit<SimOptions, 'seed'> {
  /** First seed; runs use firstSeed, firstSeed+1, ... */
  firstSeed?: number
  seeds: number
  /** Called after every run (progress display). */
  onRun?: (r: SimResult, index: number) => void
}

export interface SweepSummary {
  runs: number
  n: number
  faults: readonly FaultKind[] | 'all'
  faultsInjected: Record<string, number>
  /** Runs in which each fault kind was injected at least once. */
  runsWithFault: Record<string, number>
  heightsCommitted: number
  viewChanges: number
  maxView: number
  violations: Violation[]
  violationsByKind: Record<string, number>
  incomplete: number
  maxLivenessMs: number
  livenessBoundMs: number
  steps: number
  maxJournal: number
}

/** Runs `seeds` scenarios and adds up what happened. Violations keep their seeds for replay. */
export function sweep(o: SweepOptions): SweepSummary {
  const first = o.firstSeed ?? 1
  const s: SweepSummary = {
    runs: 0,
    n: o.n,
    faults: o.faults ?? 'all',
    faultsInjected: {},
    runsWithFault: {},
    heightsCommitted: 0,
    viewChanges: 0,
    maxView: 0,
    violations: [],
    violationsByKind: {},
    incomplete: 0,
    maxLivenessMs: 0,
    livenessBoundMs: 0,
    steps: 0,
    maxJournal: 0,
  }
  for (let i = 0; i < o.seeds; i++) {
    const r = runSimulation({ ...o, seed: first + i })
    s.runs++
    for (const [k, v] of Object.entries(r.faultsInjected)) {
      s.faultsInjected[k] = (s.faultsInjected[k] ?? 0) + (v ?? 0)
      if (v) s.runsWithFault[k] = (s.runsWithFault[k] ?? 0) + 1
    }
    for (const k of new Set(r.byzantine.flatMap((b) => b.behaviors)))
      s.runsWithFault[`byzantine:${k}`] = (s.runsWithFault[`byzantine:${k}`] ?? 0) + 1
    s.heightsCommitted += r.committedHeights.max
    s.viewChanges += r.viewChanges
    s.maxView = Math.max(s.maxView, r.maxView)
    for (const v of r.violations) {
      s.violations.push(v)
      s.violationsByKind[v.kind] = (s.violationsByKind[v.kind] ?? 0) + 1
    }
    if (r.incomplete) s.incomplete++
    s.maxLivenessMs = Math.max(s.maxLivenessMs, r.livenessMs ?? 0)
    s.livenessBoundMs = r.livenessBoundMs
    s.steps += r.steps
    s.maxJournal = Math.max(s.maxJournal, r.maxJournal)
    o.onRun?.(r, i)
  }
  return s
}
