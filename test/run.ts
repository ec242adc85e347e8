// Runs every test file in its own process and prints one summary line: "N passed, N failed".
//   node test/run.ts                 all tests (package unit tests, then the root end-to-end tests)
//   node test/run.ts --unit          package tests only (no root test, wherever it runs)
//   node test/run.ts --dir packages/core   tests under one folder
//   node test/run.ts --grep mempool  files whose path contains the word
// Env: TEST_JOBS (parallel package test files, default 2), TEST_SYSTEM_JOBS (parallel multi-process
// test files, default 3), TEST_FILE_TIMEOUT (seconds per file, default 600).
import { spawn } from 'node:child_process'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '..')
const args = process.argv.slice(2)
const opt = (name: string): string | undefined => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}
const dir = opt('--dir') ? resolve(process.cwd(), opt('--dir')!) : root
const grep = opt('--grep')
const unitOnly = args.includes('--unit')
const jobs = Number(process.env.TEST_JOBS ?? 2)
const timeoutMs = Number(process.env.TEST_FILE_TIMEOUT ?? 600) * 1000

function find(d: string, out: string[] = []): string[] {
  for (const name of readdirSync(d)) {
    if (name === 'node_modules' || name.startsWith('.')) continue
    const p = join(d, name)
    if (statSync(p).isDirectory()) find(p, out)
    else if (name.endsWith('.test.ts')) out.push(p)
  }
  return out
}

const all = find(dir)
  .map((p) => relative(root, p))
  .filter((p) => !grep || p.includes(grep))
  .sort()
// Root tests start real processes: run them one at a time, after the package tests, since their
// timing bounds hold on a machine they do not share. A root test that has no such bound and says so
// with the line `// test lane: beside the package tests` runs in the package tests' pool instead (the
// pack test: most of it is a build and an install).
const BESIDE = '// test lane: beside the package tests'
// The other root tests run three at a time (their processes mostly wait on timers and each other: two
// clusters of four validators use about one core between them), except those that say
// `// test lane: alone` (they load the machine, or their bound is tight): those run last, one at a time.
const ALONE = '// test lane: alone'
const isSystem = (p: string) => p.startsWith('test/')
const hasLine = (p: string, line: string) => readFileSync(join(root, p), 'utf8').split('\n').includes(line)
const beside = (p: string) => hasLine(p, BESIDE)
// Those first: the longest files start early instead of ending the pool last.
const unit = [
  ...(unitOnly ? [] : all.filter((p) => isSystem(p) && beside(p))),
  ...all.filter((p) => !isSystem(p)),
]
const system = unitOnly ? [] : all.filter((p) => isSystem(p) && !beside(p))
const alone = system.filter((p) => hasLine(p, ALONE))
// Files that say `// test lane: long` (the longest ones) start first, so that the pair of lanes ends
// together instead of one long file running on its own at the end.
const LONG = '// test lane: long'
const paired = system
  .filter((p) => !hasLine(p, ALONE))
  .sort((a, b) => Number(hasLine(b, LONG)) - Number(hasLine(a, LONG)))
const systemJobs = Number(process.env.TEST_SYSTEM_JOBS ?? 3)
// Node's compile cache (the type-stripped and compiled code of every module, by content), shared by
// every process the tests start: a validator process then starts with ~0.7 s less CPU (1.6 s -> 0.9 s
// to import @cityledger/node here), and the suite starts several hundred of them.
const compileCache = process.env.NODE_COMPILE_CACHE ?? join(root, 'node_modules', '.cache', 'node-compile')

let passed = 0
let failed = 0
const failures: string[] = []
/** The first lines of each failed test's message, per failed file: repeated at the end of the run. */
const digests = new Map<string, string[]>()

function runFile(file: string): Promise<void> {
  return new Promise((done) => {
    const started = Date.now()
    const child = spawn(process.execPath, [file], {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', NODE_COMPILE_CACHE: compileCache },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    let out = ''
    child.stdout.on('data', (b) => (out += b))
    child.stderr.on('data', (b) => (out += b))
    const timer = setTimeout(() => {
      out += `\n[run] ${file}: timed out after ${timeoutMs / 1000}s, killed\n`
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {}
    }, timeoutMs)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      // Kill anything the file left behind in its process group.
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {}
      const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? 0)
      const ok = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? 0)
      const secs = ((Date.now() - started) / 1000).toFixed(1)
      const good = code === 0 && total > 0 && ok === total
      if (good) {
        passed += ok
        console.log(`ok   ${file} (${ok} tests, ${secs}s)`)
      } else {
        passed += ok
        failed += Math.max(1, total - ok)
        failures.push(file)
        digests.set(file, digest(out))
        console.log(`FAIL ${file} (exit ${code ?? signal}, ${ok}/${total} passed, ${secs}s)\n${indent(out)}`)
      }
      done()
    })
  })
}

/**
 * Each failing test's name and the first 8 lines of its message (cut at 240 characters): what a
 * reader of a truncated CI log needs most, printed again after the whole run.
 */
function digest(out: string): string[] {
  const lines = out.split('\n')
  const picked: string[] = []
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*FAIL {2}"/.test(lines[i]!) && !lines[i]!.includes('[run] ')) continue
    for (const l of lines.slice(i, i + 9)) picked.push(l.trim().slice(0, 240))
  }
  return picked.length ? picked : lines.slice(-8).map((l) => l.trim().slice(0, 240))
}

const indent = (s: string) =>
  s
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n')

async function pool(files: string[], n: number): Promise<void> {
  const queue = [...files]
  await Promise.all(
    Array.from({ length: Math.max(1, n) }, async () => {
      for (let f = queue.shift(); f; f = queue.shift()) await runFile(f)
    }),
  )
}

const t0 = Date.now()
await pool(unit, jobs)
await pool(paired, systemJobs)
await pool(alone, 1)
if (failures.length)
  console.log(
    `\nfailed files:\n${failures.map((f) => `  ${f}\n${(digests.get(f) ?? []).map((l) => `      ${l}`).join('\n')}`).join('\n')}`,
  )
console.log(`\n${unit.length + system.length} files in ${((Date.now() - t0) / 1000).toFixed(0)}s`)
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed > 0 || unit.length + system.length === 0 ? 1 : 0)
