// Shared by the CI files and the soak: one line per scenario, and the assertion that nothing was lost.
import * as assert from 'uvu/assert'
import type { ScenarioReport } from './scenario.ts'

export function summary(r: ScenarioReport): string {
  const rec = r.recoveries.map((x) => `${x.kind}:${x.ms}`).join(' ')
  const ups = r.catchUps
    .map((c) => `${c.node}:${c.caughtUp ? c.ms : c.interrupted ? `killed@${c.ms}` : 'never'}`)
    .join(' ')
  const refused = Object.entries(r.load.refused)
    .map(([k, v]) => `${k}:${v}`)
    .join(',')
  const reasons = Object.entries(r.penaltyReasons)
    .map(([k, v]) => `${k}:${v}`)
    .join(',')
  return `${r.name} seed=${r.seed} faults=${JSON.stringify(r.faults)} acked=${r.acked} found=${r.found} load=${r.loadAcked} ballots=${r.ballots ?? 0} head=${r.lowestHead} bigBlocks=${r.bigBlocks} recoveries(ms)=[${rec}] catchUps(ms)=[${ups}] final=${r.finalRecoveryMs}ms penalties=${r.penalties}${reasons ? ` (${reasons})` : ''} unresolved=${r.load.unresolved} shed=${r.load.shed} refused=[${refused}] ${(r.durationMs / 1000).toFixed(0)}s`
}

export function assertClean(r: ScenarioReport): void {
  console.log(summary(r))
  assert.equal(r.violations, [], `${r.name} (SEED=${r.seed}) violations:\n${r.violations.join('\n')}`)
  assert.ok(r.loadAcked > 0, 'some load txs (not only the setup) were acknowledged')
  assert.is(r.found, r.acked, 'every acknowledged tx found exactly once on every honest node')
}
