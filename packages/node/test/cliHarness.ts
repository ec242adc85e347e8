// Shared by the CLI tests: run `cityledger` as a child process, a free loopback port, a temp folder.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

/** The CLI entry point the tests spawn (`node main.ts ...`, as `cityledger` does). */
export const MAIN = resolve(import.meta.dirname, '../src/cli/main.ts')

/** Runs the CLI to its exit; resolves with the exit code and both outputs. */
export function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
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
