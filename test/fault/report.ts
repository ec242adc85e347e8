// Shared by the CI files and the soak: one line per scenario, and the assertion that nothing was lost.
import * as assert from 'uvu/assert'
import type { ScenarioReport } from './scenario.ts'

export function summary(r: ScenarioReport): string {
  const rec = r.recoveries.map((x) => `${x.kind}:${x.ms}`).join(' ')
  return `${r.name} seed=${r.seed} faults=${JSON.stringify(r.faults)} acked=${r.acked} found=${r.found} ballots=${r.ballots ?? 0} head=${r.lowestHead} recoveries(ms)=[${rec}] final=${r.finalRecoveryMs}ms penalties=${r.penalties} unresolved=${r.load.unresolved} shed=${r.load.shed} ${(r.durationMs / 1000).toFixed(0)}s`
}

export function assertClean(r: ScenarioReport): void {
  console.log(summary(r))
  assert.equal(r.violations, [], `${r.name} (SEED=${r.seed}) violations:\n${r.violations.join('\n')}`)
  assert.ok(r.acked > 0, 'some txs were acknowledged')
  assert.is(r.found, r.acked, 'every acknowledged tx found exactly once on every honest node')
}
