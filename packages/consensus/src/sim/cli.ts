// Sweeps simulator seeds and prints a summary table per n (violations by kind, liveness included).
//   pnpm --filter @cityledger/consensus sim --n 4,7 --first 1 --seeds 20000 [--jobs 2]
//   pnpm --filter @cityledger/consensus sim --seed 1234 --n 7      replay one run and print its result
// Options: --faults loss,crash (restrict the kinds; default all), --profile sim|node, --fault-ms <ms>
// (faulty period, default 1500), --max-steps <n> (default 300000), --jobs <j> (parallel processes per n,
// each a contiguous part of the seed range), --json <file> (write the summaries), --progress <s> (a
// progress line every s seconds, default 30), --partial <file> (with one job: the summary so far, written
// at every progress line), --print <file> (print the tables of a --partial file), --digests <file> (with one
// job: one JSON line per seed with a hash of its whole result, commit logs and event trace, to show that
// two builds of the simulator give the same outcomes: `diff` the files).
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ProfileName } from './profile.ts'
import { FAULT_KINDS, type FaultKind, runSimulation } from './simulator.ts'
import { type SweepSummary, addRun, emptySummary, mergeSummaries } from './sweep.ts'

const args = process.argv.slice(2)
const opt = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : undefined
}
const fail = (msg: string): never => {
  console.error(msg)
  process.exit(2)
}
const num = (name: string, fallback: number): number => {
  const v = opt(name)
  if (v === undefined) return fallback
  const x = Number(v)
  if (!Number.isSafeInteger(x) || x < 0) fail(`--${name}: expected a non-negative integer, got ${v}`)
  return x
}
const ns = (opt('n') ?? '4').split(',').map(Number)
if (ns.some((x) => !Number.isSafeInteger(x) || x < 1)) fail('--n: expected validator counts, e.g. 4,7')
const faultsArg = opt('faults')
const faults = faultsArg ? (faultsArg.split(',') as FaultKind[]) : undefined
for (const f of faults ?? [])
  if (!(FAULT_KINDS as readonly string[]).includes(f))
    fail(`unknown fault kind ${f}; known: ${FAULT_KINDS.join(', ')}`)
const profile = (opt('profile') ?? 'sim') as ProfileName
if (profile !== 'sim' && profile !== 'node') fail('--profile: sim or node')
const maxSteps = num('max-steps', 300_000)
const faultPhaseMs = num('fault-ms', 1500)
const digestsOut = opt('digests')
const common = {
  maxSteps,
  faultPhaseMs,
  profile,
  ...(faults ? { faults } : {}),
  ...(digestsOut ? { traceEvents: true } : {}),
}
/** What a summary was run with (written into --partial files, printed with the tables). */
const meta = {
  profile,
  faultPhaseMs,
  maxSteps,
  faults: faults ? faults.join(', ') : `all ${FAULT_KINDS.length}`,
}
const replayArgs = (seed: number, n: number) =>
  `--seed ${seed} --n ${n}${profile !== 'sim' ? ` --profile ${profile}` : ''}${faultPhaseMs !== 1500 ? ` --fault-ms ${faultPhaseMs}` : ''}${faultsArg ? ` --faults ${faultsArg}` : ''}`

if (opt('seed') !== undefined) {
  const r = runSimulation({ seed: num('seed', 1), n: ns[0]!, ...common })
  const { finalStatus, ...rest } = r
  console.log(JSON.stringify(rest, null, 2))
  console.table(finalStatus)
  process.exit(r.violations.length ? 1 : 0)
}

const seeds = num('seeds', 1000)
const first = num('first', 1)
const jobs = Math.max(1, num('jobs', 1))
if (digestsOut && (jobs > 1 || ns.length > 1)) fail('--digests: one n and one job only')
const progressMs = num('progress', 30) * 1000
const started = Date.now()

/**
 * One process: sweeps its range, prints violations and progress lines; with `--partial <file>` it also
 * writes the summary so far at every progress line (`--print <file>` renders it).
 */
function runRange(n: number, from: number, count: number): SweepSummary {
  const t0 = Date.now()
  let lastPrint = t0
  const s = emptySummary(n, faults ?? 'all')
  const partial = opt('partial')
  const digests: string[] = []
  for (let i = 0; i < count; i++) {
    const r = runSimulation({ seed: from + i, n, ...common })
    addRun(s, r)
    if (digestsOut) digests.push(seedDigest(r))
    for (const v of r.violations)
      console.log(`VIOLATION ${v.kind} (replay: ${replayArgs(r.seed, n)}): ${v.message}`)
    const now = Date.now()
    if (now - lastPrint >= progressMs || i === count - 1) {
      lastPrint = now
      const rate = ((i + 1) / ((now - t0) / 1000)).toFixed(2)
      process.stderr.write(
        `n=${n} seeds ${from}..${from + count - 1}: ${i + 1}/${count} runs (last seed ${from + i}), ${rate} runs/s, ${s.runsWithViolations} with violations, ${((now - t0) / 1000).toFixed(0)} s\n`,
      )
      if (partial)
        writeFileSync(
          partial,
          JSON.stringify({
            ...meta,
            n,
            first: from,
            lastSeed: from + i,
            wallSeconds: (now - t0) / 1000,
            summary: s,
          }),
        )
    }
  }
  if (digestsOut) writeFileSync(digestsOut, `${digests.join('\n')}\n`)
  return s
}

/** One line per seed: everything the run reports, hashed, plus the parts worth reading in a diff. */
function seedDigest(r: ReturnType<typeof runSimulation>): string {
  const all = createHash('sha256').update(JSON.stringify(r)).digest('hex')
  return JSON.stringify({
    seed: r.seed,
    result: all,
    events: r.eventDigest,
    steps: r.steps,
    heights: r.committedHeights,
    violations: r.violations.map((v) => v.kind),
    commitLogs: r.commitLogs.map((c) => c.slice(0, 16)),
  })
}

if (opt('child-out')) {
  const s = runRange(ns[0]!, first, seeds)
  writeFileSync(opt('child-out')!, JSON.stringify(s))
  process.exit(0)
}

/** `argv` without the given `--name value` pairs. */
function withoutOptions(argv: string[], names: string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    if (names.includes(argv[i]!.replace(/^--/, '')) && argv[i]!.startsWith('--')) i++
    else out.push(argv[i]!)
  }
  return out
}

async function runParallel(n: number): Promise<SweepSummary> {
  if (jobs === 1) return runRange(n, first, seeds)
  const dir = mkdtempSync(join(tmpdir(), 'cityledger-sweep-'))
  try {
    const parts: Promise<SweepSummary>[] = []
    const per = Math.ceil(seeds / jobs)
    for (let j = 0; j < jobs; j++) {
      const from = first + j * per
      const count = Math.min(per, first + seeds - from)
      if (count <= 0) break
      const out = join(dir, `part-${j}.json`)
      const childArgs = [process.argv[1]!, ...withoutOptions(args, ['n', 'first', 'seeds', 'jobs', 'json'])]
      childArgs.push('--n', String(n), '--first', String(from), '--seeds', String(count), '--child-out', out)
      parts.push(
        new Promise((resolve, reject) => {
          const child = spawn(process.execPath, childArgs, { stdio: ['ignore', 'inherit', 'inherit'] })
          child.on('error', reject)
          child.on('exit', (code) =>
            code === 0
              ? resolve(JSON.parse(readFileSync(out, 'utf8')) as SweepSummary)
              : reject(new Error(`sweep part ${from}..${from + count - 1} exited with ${code}`)),
          )
        }),
      )
    }
    const all = await Promise.all(parts)
    return all.reduce((a, b) => mergeSummaries(a, b))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const VIOLATION_KINDS = [
  'agreement',
  'integrity',
  'certificate',
  'equivocation',
  'penalizedHonest',
  'liveness',
  'sync',
  'amplification',
  'memory',
  'exception',
]

/** The summary tables (markdown) of one n. */
function printSummary(s: SweepSummary, seedRange: string, wallSeconds: number, m = meta): void {
  const rows: [string, string | number][] = [
    ['validators (n)', s.n],
    ['profile', m.profile],
    ['faulty period per run (sim ms)', m.faultPhaseMs],
    ['step budget per run (events)', m.maxSteps],
    ['fault kinds', m.faults],
    ['seeds', seedRange],
    ['runs', s.runs],
    ['runs with a violation', s.runsWithViolations],
    ...VIOLATION_KINDS.map((k): [string, number] => [`violations: ${k}`, s.violationsByKind[k] ?? 0]),
    ['runs out of step budget', s.incomplete],
    ['heights committed (sum of max per run)', s.heightsCommitted],
    ['view changes (honest replicas)', s.viewChanges],
    ['highest view reached', s.maxView],
    ['slowest recovery after heal (sim ms)', s.maxLivenessMs],
    ['liveness bound (sim ms)', s.livenessBoundMs],
    ['largest honest message (bytes)', s.maxMessageBytes],
    ['longest journal (entries)', s.maxJournal],
    ['simulated events', s.steps],
    ['wall time (s)', wallSeconds.toFixed(1)],
  ]
  console.log('\n| metric | value |\n|---|---|')
  for (const [k, v] of rows) console.log(`| ${k} | ${v} |`)
  console.log('\n| fault | injected | runs with it |\n|---|---|---|')
  const keys = [...new Set([...Object.keys(s.faultsInjected), ...Object.keys(s.runsWithFault)])].sort()
  for (const k of keys) console.log(`| ${k} | ${s.faultsInjected[k] ?? '-'} | ${s.runsWithFault[k] ?? 0} |`)
}

if (opt('print')) {
  const p = JSON.parse(readFileSync(opt('print')!, 'utf8')) as typeof meta & {
    first: number
    lastSeed: number
    wallSeconds: number
    summary: SweepSummary
  }
  printSummary(p.summary, `${p.first}..${p.lastSeed}`, p.wallSeconds, p)
  process.exit(0)
}

const summaries: SweepSummary[] = []
for (const n of ns) {
  const t0 = Date.now()
  const s = await runParallel(n)
  summaries.push(s)
  printSummary(s, `${first}..${first + seeds - 1}`, (Date.now() - t0) / 1000)
}
const jsonOut = opt('json')
if (jsonOut)
  writeFileSync(
    jsonOut,
    JSON.stringify(
      {
        summaries,
        profile,
        faultPhaseMs,
        maxSteps,
        first,
        seeds,
        wallSeconds: (Date.now() - started) / 1000,
      },
      null,
      2,
    ),
  )
process.exit(summaries.some((s) => s.runsWithViolations > 0) ? 1 : 0)
