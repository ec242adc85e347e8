// A devnet killed hard (SIGKILL: no handler runs) takes its validators with it: they are started with
// CITYLEDGER_EXIT_WITH_PARENT=1 and leave once their parent is gone. Linux only (reads /proc).
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'

const MAIN = resolve(import.meta.dirname, '../src/cli/main.ts')

function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = createServer()
    s.on('error', () => done(false))
    s.listen(port, '127.0.0.1', () => s.close(() => done(true)))
  })
}

/** A port p with p + 1 free too (devnet gives validator 0 p2p = base, RPC = base + 1). */
async function freePair(): Promise<number> {
  for (;;) {
    const p = await new Promise<number>((done) => {
      const s = createServer()
      s.listen(0, '127.0.0.1', () => {
        const port = (s.address() as { port: number }).port
        s.close(() => done(port))
      })
    })
    if (p < 65_000 && (await portFree(p + 1))) return p
  }
}

/** Live (not zombie) processes whose parent is `ppid`. */
function childrenOf(ppid: number): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const st = stat(Number(name))
    if (st && st.ppid === ppid && st.state !== 'Z') out.push(Number(name))
  }
  return out
}

function stat(pid: number): { state: string; ppid: number } | undefined {
  try {
    // pid (comm) state ppid ...; comm may hold spaces, so split after the last ')'.
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const [state, ppid] = s.slice(s.lastIndexOf(')') + 2).split(' ')
    return { state: state!, ppid: Number(ppid) }
  } catch {
    return undefined
  }
}

const alive = (pid: number) => {
  const st = stat(pid)
  return st !== undefined && st.state !== 'Z'
}

async function until(what: string, ms: number, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

test('validators exit soon after their devnet is SIGKILLed', async () => {
  if (!existsSync('/proc/self/stat')) {
    console.log('skipped: needs /proc')
    return
  }
  const home = mkdtempSync(join(tmpdir(), 'cityledger-cli-devnet-'))
  const devnet = spawn(
    process.execPath,
    [MAIN, 'devnet', '--validators', '1', '--home', home, '--base-port', String(await freePair())],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let validators: number[] = []
  try {
    let out = ''
    await new Promise<void>((ready, fail) => {
      devnet.stdout.on('data', (b: Buffer) => {
        out += b
        if (out.includes('devnet: ready')) ready()
      })
      devnet.stderr.on('data', (b: Buffer) => (out += b))
      devnet.on('exit', (code) => fail(new Error(`devnet exited (${code}) before ready: ${out}`)))
    })
    validators = childrenOf(devnet.pid!)
    assert.is(validators.length, 1, 'one validator process')
    const exited = new Promise((done) => devnet.on('exit', done))
    devnet.kill('SIGKILL')
    await exited
    // run.ts checks its parent every 500 ms, then shuts down (at most 5 s); the bound leaves room for
    // a loaded machine.
    await until('the validator exits', 20_000, () => !validators.some(alive))
  } finally {
    if (devnet.exitCode === null && devnet.signalCode === null) devnet.kill('SIGKILL')
    for (const pid of validators.filter(alive)) process.kill(pid, 'SIGKILL')
    rmSync(home, { recursive: true, force: true })
  }
})

test.run()
