// Sweeps simulator seeds and prints a summary table.
//   pnpm --filter @cityledger/consensus sim --seeds 20000 --n 7 [--first 1] [--faults loss,crash] [--max-steps 200000]
//   pnpm --filter @cityledger/consensus sim --seed 1234 --n 7      replay one run and print its result
// Options: --fault-ms <ms> (length of the faulty period, default 1500), --json <file> (write the summary).
import { FAULT_KINDS, type FaultKind, runSimulation } from './simulator.ts'
import { sweep } from './sweep.ts'

const args = process.argv.slice(2)
const opt = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : undefined
}
const num = (name: string, fallback: number): number => {
  const v = opt(name)
  if (v === undefined) return fallback
  const x = Number(v)
  if (!Number.isSafeInteger(x) || x < 0) {
    console.error(`--${name}: expected a non-negative integer, got ${v}`)
    process.exit(2)
  }
  return x
}
const n = num('n', 4)
const faultsArg = opt('faults')
const faults = faultsArg ? (faultsArg.split(',') as FaultKind[]) : undefined
for (const f of faults ?? []) {
  if (!(FAULT_KINDS as readonly string[]).includes(f)) {
    console.error(`unknown fault kind ${f}; known: ${FAULT_KINDS.join(', ')}`)
    process.exit(2)
  }
}
const maxSteps = num('max-steps', 300_000)
const faultPhaseMs = num('fault-ms', 1500)

if (opt('seed') !== undefined) {
  const r = runSimulation({ seed: num('seed', 1), n, ...(faults ? { faults } : {}), maxSteps, faultPhaseMs })
  const { finalStatus, ...rest } = r
  console.log(JSON.stringify(rest, null, 2))
  console.table(finalStatus)
  process.exit(r.violations.length ? 1 : 0)
}

const seeds = num('seeds', 1000)
const first = num('first', 1)
const started = Date.now()
let lastPrint = 0
const summary = sweep({
  n,
  seeds,
  firstSeed: first,
  maxSteps,
  faultPhaseMs,
  ...(faults ? { faults } : {}),
  onRun: (r, i) => {
    for (const v of r.violations)
      console.log(`VIOLATION ${v.kind} (replay: --seed ${r.seed} --n ${n}): ${v.message}`)
    const now = Date.now()
    if (now - lastPrint > 2000 || i === seeds - 1) {
      lastPrint = now
      const rate = ((i + 1) / ((now - started) / 1000)).toFixed(1)
      process.stderr.write(`\r${i + 1}/${seeds} runs, ${rate} runs/s   `)
    }
  },
})
process.stderr.write('\n')
const rows: [string, string | number][] = [
  ['validators (n)', n],
  ['faulty period per run (sim ms)', faultPhaseMs],
  ['seeds', `${first}..${first + seeds - 1}`],
  ['runs', summary.runs],
  ['heights committed (sum of max per run)', summary.heightsCommitted],
  ['view changes (honest replicas)', summary.viewChanges],
  ['highest view reached', summary.maxView],
  ['violations', summary.violations.length],
  ['runs out of step budget', summary.incomplete],
  ['slowest recovery after heal (sim ms)', summary.maxLivenessMs],
  ['liveness bound (sim ms)', summary.livenessBoundMs],
  ['longest journal (entries)', summary.maxJournal],
  ['simulated events', summary.steps],
  ['wall time (s)', ((Date.now() - started) / 1000).toFixed(1)],
]
console.log('\n| metric | value |\n|---|---|')
for (const [k, v] of rows) console.log(`| ${k} | ${v} |`)
console.log('\n| fault | injected | runs with it |\n|---|---|---|')
const keys = [
  ...new Set([...Object.keys(summary.faultsInjected), ...Object.keys(summary.runsWithFault)]),
].sort()
for (const k of keys)
  console.log(`| ${k} | ${summary.faultsInjected[k] ?? '-'} | ${summary.runsWithFault[k] ?? 0} |`)
const jsonOut = opt('json')
if (jsonOut)
  (await import('node:fs')).writeFileSync(
    jsonOut,
    JSON.stringify(
      { ...summary, faultPhaseMs, maxSteps, first, wallSeconds: (Date.now() - started) / 1000 },
      null,
      2,
    ),
  )
if (summary.violations.length) {
  console.log('\nviolations by kind:', summary.violationsByKind)
  process.exit(1)
}
