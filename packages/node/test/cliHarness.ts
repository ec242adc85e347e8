// Shared by the CLI tests: run `cityledger` as a child process (one-shot commands, or `start` on a
// one-validator testnet home until its ready line), a free loopback port, a temp folder.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createTestnet } from '../src/cli/testnet.ts'

/** The CLI entry point the tests spawn (`node main.ts ...`, as `cityledger` does). */
export const MAIN = resolve(import.meta.dirname, '../src/cli/main.ts')

/** Runs the CLI to its exit (with `env` added to this process's); the exit code and both outputs. */
export function cli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [MAIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    })
    let out = ''
    let err = ''
    p.stdout.on('data', (b: Buffer) => (out += b))
    p.stderr.on('data', (b: Buffer) => (err += b))
    p.on('exit', (code) => done({ code, out, err }))
  })
}

/** A TCP port free on 127.0.0.1 at the moment of the call. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = createServer()
    s.on('error', fail)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => done(port))
    })
  })
}

/** A test body run in a fresh temp folder, removed afterwards whatever happens. */
export function withDir(prefix: string, fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), prefix))
    try {
      await fn(dir)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** The home of the one validator of a fresh testnet written into `dir` (fast blocks, ports 0). */
export function oneValidatorHome(dir: string, chainId: string): string {
  return createTestnet({
    validators: 1,
    out: dir,
    chainId,
    ports: [{ p2p: 0, rpc: 0 }],
    consensus: { blockIntervalMs: 20, viewChangeTimeoutMs: 1000 },
  }).homes[0]!
}

export interface StartedNode {
  proc: ChildProcess
  exited: Promise<number | null>
  /** Everything it wrote so far, stdout and stderr. */
  output(): string
}

/** `cityledger start --home <home> <args>`, resolved once it printed its ready line. */
export async function startCli(
  home: string,
  args: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<StartedNode> {
  const proc = spawn(process.execPath, [MAIN, 'start', '--home', home, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  })
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)))
  let out = ''
  proc.stderr!.on('data', (b: Buffer) => (out += b))
  await new Promise<void>((ready, fail) => {
    proc.stdout!.on('data', (b: Buffer) => {
      out += b
      if (/^\{"msg":"ready".*\n/m.test(out)) ready()
    })
    proc.once('exit', (code) => fail(new Error(`node exited with ${code} before ready:\n${out}`)))
  })
  return { proc, exited, output: () => out }
}
