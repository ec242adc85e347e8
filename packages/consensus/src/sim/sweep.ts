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
  /** Violations, with their seeds and scenarios (the first 200 kept; `violationsByKind` counts all). */
  violations: Violation[]
  violationsByKind: Record<string, number>
  /** Runs with at least one violation. */
  runsWithViolations: number
  incomplete: number
  maxLivenessMs: number
  livenessBoundMs: number
  steps: number
  maxJournal: number
  /** Largest message an honest replica sent, bytes. */
  maxMessageBytes: number
}

export function emptySummary(n: number, faults: readonly FaultKind[] | 'all'): SweepSummary {
  return {
    runs: 0,
    n,
    faults,
    faultsInjected: {},
    runsWithFault: {},
    heightsCommitted: 0,
    viewChanges: 0,
    maxView: 0,
    violations: [],
    violationsByKind: {},
    runsWithViolations: 0,
    incomplete: 0,
    maxLivenessMs: 0,
    livenessBoundMs: 0,
    steps: 0,
    maxJournal: 0,
    maxMessageBytes: 0,
  }
}

/** Adds one run to a summary. */
export function addRun(s: SweepSummary, r: SimResult): void {
  s.runs++
  for (const [k, v] of Object.entries(r.faultsInjected)) {
    s.faultsInjected[k] = (s.faultsInjected[k] ?? 0) + (v ?? 0)
    if (v) s.runsWithFault[k] = (s.runsWithFault[k] ?? 0) + 1
  }
  for (const k of new Set(r.byzantine.flatMap((b) => b.behaviors)))
    s.runsWithFault[`byzantine:${k}`] = (s.runsWithFault[`byzantine:${k}`] ?? 0) + 1
  if (r.downForever.length) s.runsWithFault.downForever = (s.runsWithFault.downForever ?? 0) + 1
  s.heightsCommitted += r.committedHeights.max
  s.viewChanges += r.viewChanges
  s.maxView = Math.max(s.maxView, r.maxView)
  if (r.violations.length) s.runsWithViolations++
  for (const v of r.violations) {
    if (s.violations.length < 200) s.violations.push(v)
    s.violationsByKind[v.kind] = (s.violationsByKind[v.kind] ?? 0) + 1
  }
  if (r.incomplete) s.incomplete++
  s.maxLivenessMs = Math.max(s.maxLivenessMs, r.livenessMs ?? 0)
  s.livenessBoundMs = Math.max(s.livenessBoundMs, r.livenessBoundMs)
  s.steps += r.steps
  s.maxJournal = Math.max(s.maxJournal, r.maxJournal)
  s.maxMessageBytes = Math.max(s.maxMessageBytes, r.maxMessageBytes)
}

/** Adds up two summaries of the same n (parallel sweeps over disjoint seed ranges). */
export function mergeSummaries(a: SweepSummary, b: SweepSummary): SweepSummary {
  const add = (x: Record<string, number>, y: Record<string, number>) => {
    const out = { ...x }
    for (const [k, v] of Object.entries(y)) out[k] = (out[k] ?? 0) + v
    return out
  }
  return {
    runs: a.runs + b.runs,
    n: a.n,
    faults: a.faults,
    faultsInjected: add(a.faultsInjected, b.faultsInjected),
    runsWithFault: add(a.runsWithFault, b.runsWithFault),
    heightsCommitted: a.heightsCommitted + b.heightsCommitted,
    viewChanges: a.viewChanges + b.viewChanges,
    maxView: Math.max(a.maxView, b.maxView),
    violations: [...a.violations, ...b.violations].slice(0, 200),
    violationsByKind: add(a.violationsByKind, b.violationsByKind),
    runsWithViolations: a.runsWithViolations + b.runsWithViolations,
    incomplete: a.incomplete + b.incomplete,
    maxLivenessMs: Math.max(a.maxLivenessMs, b.maxLivenessMs),
    livenessBoundMs: Math.max(a.livenessBoundMs, b.livenessBoundMs),
    steps: a.steps + b.steps,
    maxJournal: Math.max(a.maxJournal, b.maxJournal),
    maxMessageBytes: Math.max(a.maxMessageBytes, b.maxMessageBytes),
  }
}

/** Runs `seeds` scenarios and adds up what happened. Violations keep their seeds for replay. */
export function sweep(o: SweepOptions): SweepSummary {
  const first = o.firstSeed ?? 1
  const s = emptySummary(o.n, o.faults ?? 'all')
  for (let i = 0; i < o.seeds; i++) {
    const r = runSimulation({ ...o, seed: first + i })
    addRun(s, r)
    o.onRun?.(r, i)
  }
  return s
}
