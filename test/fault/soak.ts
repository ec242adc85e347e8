// `pnpm soak --minutes 30 [--seed N]`: back-to-back random scenarios mixing every fault kind (crashes,
// pauses, partitions, delays, skewed clocks, full disks, corrupt journals and stores, one Byzantine
// validator) until the time is up. Prints the seed first (replay with --seed), one line per scenario,
// and the totals; exits 1 on any lost acknowledged tx, fork or invariant violation.
import { Rng } from '@cityledger/core/testing'
import { BYZANTINE_KINDS } from './byzantine.ts'
import { summary } from './report.ts'
import { type Fault, type Scenario, type ScenarioReport, runScenario } from './scenario.ts'

const args = process.argv.slice(2)
const opt = (name: string) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}
const minutes = Number(opt('--minutes') ?? 30)
const seed = Number(opt('--seed') ?? Date.now() % 2 ** 31)
if (!(minutes > 0) || !Number.isSafeInteger(seed)) {
  console.error('usage: pnpm soak --minutes N [--seed N]')
  process.exit(2)
}
console.log(`soak: ${minutes} min, seed ${seed} (replay: pnpm soak --minutes ${minutes} --seed ${seed})`)

/** A random scenario of 4 validators: 3..7 faults over ~40 s of load, sometimes a Byzantine node. */
export function randomScenario(rng: Rng, index: number, seedOf: number): Scenario {
  const n = 4
  const node = () => rng.int(n)
  const faults: (() => Fault)[] = [
    () => ({ kind: 'kill', node: rng.chance(0.5) ? 'primary' : node(), downMs: rng.range(200, 4000) }),
    () => ({ kind: 'pause', node: rng.chance(0.5) ? 'primary' : node(), ms: rng.range(1000, 5000) }),
    () => {
      const order = rng.shuffle([0, 1, 2, 3])
      const cut = rng.range(1, 2)
      return { kind: 'partition', groups: [order.slice(0, cut), order.slice(cut)], ms: rng.range(1000, 5000) }
    },
    () => ({ kind: 'delay', delayMs: rng.range(20, 300), ms: rng.range(1000, 5000) }),
    () => ({ kind: 'diskFull', node: node(), ms: rng.range(200, 3000) }),
    () => ({ kind: 'corruptJournal', node: node() }),
    () => ({ kind: 'corruptStore', node: node() }),
  ]
  const byzNode = rng.chance(0.4) ? node() : undefined
  const schedule: Scenario['schedule'] = []
  let at = 1000
  for (let k = rng.range(3, 7); k > 0; k--) {
    let f = rng.pick(faults)()
    // The Byzantine node keeps misbehaving; other faults go to honest nodes.
    if (byzNode !== undefined && 'node' in f && f.node === byzNode)
      f = { ...f, node: (byzNode + 1) % n } as Fault
    schedule.push({ at, fault: f })
    at += rng.range(2000, 8000)
  }
  const skew = rng.chance(0.3) ? { [node()]: rng.range(-60_000, 60_000) } : undefined
  return {
    name: `soak-${index}`,
    seed: seedOf,
    validators: n,
    rate: rng.range(10, 40),
    loadMs: at + 3000,
    schedule,
    ...(skew ? { clockSkew: skew } : {}),
    ...(byzNode !== undefined ? { byzantine: { [byzNode]: rng.pick(BYZANTINE_KINDS) } } : {}),
  }
}

const rng = new Rng(seed)
const deadline = Date.now() + minutes * 60_000
const reports: ScenarioReport[] = []
for (let i = 0; Date.now() < deadline; i++) {
  const sc = randomScenario(rng, i, rng.u32())
  const r = await runScenario(sc, process.env.SOAK_VERBOSE ? console.log : () => {})
  reports.push(r)
  console.log(summary(r))
  for (const v of r.violations) console.log(`  VIOLATION ${v}`)
}

const faults: Record<string, number> = {}
for (const r of reports) for (const [k, v] of Object.entries(r.faults)) faults[k] = (faults[k] ?? 0) + v
const rec: Record<string, number[]> = {}
for (const r of reports) for (const x of r.recoveries) (rec[x.kind] ??= []).push(x.ms)
const stat = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return { n: s.length, p50: s[Math.floor(s.length / 2)] ?? 0, max: s.at(-1) ?? 0 }
}
const totals = {
  seed,
  minutes,
  scenarios: reports.length,
  faults,
  acked: reports.reduce((a, r) => a + r.acked, 0),
  found: reports.reduce((a, r) => a + r.found, 0),
  violations: reports.reduce((a, r) => a + r.violations.length, 0),
  recoveryMs: Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, stat(v)])),
  finalRecoveryMs: stat(reports.map((r) => r.finalRecoveryMs)),
  /** A restarted node's catch-up: from its `ready` to the height the others had then. */
  catchUpMs: stat(reports.flatMap((r) => r.catchUps.filter((c) => c.caughtUp).map((c) => c.ms))),
  catchUpsMissed: reports.reduce((a, r) => a + r.catchUps.filter((c) => !c.caughtUp).length, 0),
}
console.log(JSON.stringify(totals, null, 2))
process.exit(totals.violations > 0 || totals.found !== totals.acked ? 1 : 0)
