import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import * as assert from 'uvu/assert'
import type { BenchResult } from '../src/harness.ts'

const CLI = resolve(import.meta.dirname, '../src/cli.ts')

/**
 * Runs `node bench/src/cli.ts <args> --json --out <tmp>` as a user would, and returns the JSON it
 * printed after checking that the results file holds the same object.
 */
export async function runCli(args: string[]): Promise<BenchResult> {
  const out = mkdtempSync(join(tmpdir(), 'cityledger-bench-test-'))
  try {
    const child = spawn(process.execPath, [CLI, ...args, '--json', '--out', out], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BENCH_QUIET: '1' },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const code = await new Promise<number | null>((r) => child.once('exit', r))
    assert.is(code, 0, `bench ${args.join(' ')} exited with ${code}:\n${stderr}`)
    const lines = stdout.trim().split('\n')
    assert.is(lines.length, 1, 'one JSON object on stdout')
    const result = JSON.parse(lines[0]!) as BenchResult
    const file = JSON.parse(readFileSync(join(out, `${result.id}.json`), 'utf8')) as BenchResult
    assert.equal(file, result, 'the results file holds what was printed')
    return result
  } finally {
    rmSync(out, { recursive: true, force: true })
  }
}

/** The fields every result carries. */
export function checkCommon(r: BenchResult, id: string): void {
  assert.is(r.id, id)
  assert.type(r.command, 'string')
  assert.ok(r.machine.cores >= 1, 'machine.cores')
  assert.match(r.machine.node, /^v\d+/)
  assert.type(r.variants, 'object')
  for (const [k, v] of Object.entries(r.ratios))
    assert.ok(Number.isFinite(v), `ratio ${k} is a number (${v})`)
}

/** A rate figure: median within [min, max], one rate per round. */
export function checkFigures(f: unknown, rounds: number, what: string): void {
  const x = f as { median: number; min: number; max: number; spread: number; rounds: number[] }
  assert.ok(x.median > 0, `${what}.median > 0`)
  assert.ok(x.min <= x.median && x.median <= x.max, `${what}: min <= median <= max`)
  assert.ok(x.spread >= 0, `${what}.spread`)
  assert.is(x.rounds.length, rounds, `${what}.rounds`)
}
