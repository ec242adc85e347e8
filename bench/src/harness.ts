import { mkdirSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os'
import { join } from 'node:path'

/** Median and spread of one variant's rounds (a rate: operations per second). */
export interface Figures {
  /** Median of the rounds, ops/s. */
  median: number
  min: number
  max: number
  /** (max - min) / median, so 0.05 means the rounds were within 5 % of each other. */
  spread: number
  rounds: number[]
  /** Work items per round (signatures, transactions...). */
  items: number
  unit: string
}

/** The machine a result was measured on. */
export interface Machine {
  cores: number
  cpu: string
  memoryGiB: number
  node: string
  platform: string
  /** 1-minute load average when the result was written: above `cores`, other work shared the CPUs. */
  loadAverage: number
}

/** What every benchmark prints with `--json` and writes to `bench/results/<id>.json`. */
export interface BenchResult {
  id: string
  /** The command that produced it (for the README). */
  command: string
  date: string
  machine: Machine
  params: Record<string, unknown>
  variants: Record<string, Record<string, unknown>>
  ratios: Record<string, number>
  /** Targets of the issue: reported, never asserted. */
  targets?: Record<string, { target: string; met: boolean }>
  notes?: string[]
}

/** Rounds and warm-up of a measurement. */
export interface RoundOptions {
  warmup: number
  rounds: number
}

export function machine(): Machine {
  return {
    cores: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    loadAverage: Math.round(loadavg()[0]! * 100) / 100,
  }
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** The q-quantile (0..1) of `xs` by nearest rank. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!
}

export function figures(rates: number[], items: number, unit: string): Figures {
  const med = median(rates)
  const min = Math.min(...rates)
  const max = Math.max(...rates)
  return { median: med, min, max, spread: med > 0 ? (max - min) / med : 0, rounds: rates, items, unit }
}

/** Progress on stderr (never on stdout, which carries the table or the JSON). */
export function progress(msg: string): void {
  if (process.env.BENCH_QUIET) return
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`)
}

/**
 * Runs `round` `warmup` times unmeasured, then `rounds` times, and turns each round's duration into a
 * rate of `items` per second. `round` returns the items it did (or `items` when void).
 */
export async function measure(
  label: string,
  opts: RoundOptions,
  items: number,
  unit: string,
  round: (i: number) => Promise<number | void> | number | void,
): Promise<Figures> {
  for (let i = 0; i < opts.warmup; i++) {
    progress(`${label}: warm-up ${i + 1}/${opts.warmup}`)
    await round(-1 - i)
  }
  const rates: number[] = []
  for (let i = 0; i < opts.rounds; i++) {
    const t0 = performance.now()
    const done = (await round(i)) ?? items
    const s = (performance.now() - t0) / 1000
    rates.push(done / s)
    progress(`${label}: round ${i + 1}/${opts.rounds} ${fmt(done / s)} ${unit}`)
  }
  return figures(rates, items, unit)
}

export function fmt(x: number, digits = 0): string {
  if (!Number.isFinite(x)) return String(x)
  // By hand, not toLocaleString: a process under SES lockdown (`block --sandbox`) tames locales away.
  const [int, frac] = x.toFixed(digits).split('.')
  const grouped = int!.replace(/\B(?=(\d{3})+(?!\d))/g, ',')
  return frac === undefined ? grouped : `${grouped}.${frac}`
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000
}

/** A plain-text table: first row is the header, numbers right-aligned. */
export function table(rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c, Math.abs(c) < 10 ? 2 : 0) : c)))
  const widths = cells[0]!.map((_, j) => Math.max(...cells.map((r) => (r[j] ?? '').length)))
  const line = (r: string[]) =>
    r
      .map((c, j) =>
        typeof rows[0]![j] === 'string' && j === 0 ? c.padEnd(widths[j]!) : c.padStart(widths[j]!),
      )
      .join('  ')
  const out = [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)]
  return out.join('\n')
}

/** Writes `<dir>/<id>.json` (default: bench/results) and returns the path. */
export function writeResult(result: BenchResult, dir = join(import.meta.dirname, '..', 'results')): string {
  mkdirSync(dir, { recursive: true })
  const path = join(dir, `${result.id}.json`)
  writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`)
  return path
}

export function targetCheck(value: number, op: '>=' | '<', bound: number, label: string) {
  return { target: `${label} ${op} ${bound}`, met: op === '>=' ? value >= bound : value < bound }
}
