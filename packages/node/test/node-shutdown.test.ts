// A validator process exits, on SIGTERM and on a fatal error (a full disk), while clients trickle
// request bodies to its RPC: no client can keep a stopping node alive. Multi-process: the node runs
// `runNode` (what `cityledger start` runs) in a child; every process and folder is removed after.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { type Socket, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createTestnet } from '../src/cli/testnet.ts'

const FIXTURE = resolve(import.meta.dirname, 'fixtures', 'fullDiskNode.ts')

interface Child {
  proc: ChildProcess
  rpc: string
  exited: Promise<number | null>
  output: () => string
}

/** Starts the one validator of a fresh testnet in `dir` and waits for its ready line. */
function startChild(dir: string, flag: string): Promise<Child> {
  const layout = createTestnet({
    validators: 1,
    out: dir,
    chainId: 'shutdown-test',
    ports: [{ p2p: 0, rpc: 0 }],
    consensus: { blockIntervalMs: 20, viewChangeTimeoutMs: 1000 },
  })
  const home = layout.homes[0]!
  const proc = spawn(process.execPath, [FIXTURE, '--home', home, '--flag', flag], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)))
  return new Promise((ready, fail) => {
    proc.stderr!.on('data', (b: Buffer) => (out += b))
    proc.stdout!.on('data', (b: Buffer) => {
      out += b
      const m = /\{"msg":"ready","rpc":"([^"]+)"/.exec(out)
      if (m) ready({ proc, rpc: m[1]!, exited, output: () => out })
    })
    proc.once('exit', (code) => fail(new Error(`node exited with ${code} before ready:\n${out}`)))
  })
}

/** A client that sends a POST's headers, then one body byte every `everyMs`, until closed. */
function trickle(url: string, everyMs: number) {
  const u = new URL(url)
  const socket: Socket = connect({ host: u.hostname, port: Number(u.port) })
  let sent = 0
  let timer: NodeJS.Timeout | undefined
  const started = new Promise<void>((r) =>
    socket.on('connect', () => {
      socket.write(
        'POST /v1/txs HTTP/1.1\r\nHost: x\r\ncontent-type: application/octet-stream\r\ncontent-length: 60000\r\n\r\n',
      )
      timer = setInterval(() => {
        if (!socket.destroyed && sent < 60_000) {
          socket.write('x')
          sent++
        }
      }, everyMs)
      r()
    }),
  )
  socket.on('error', () => {})
  const closed = new Promise<void>((r) =>
    socket.on('close', () => {
      clearInterval(timer)
      r()
    }),
  )
  return { started, closed, sent: () => sent, destroy: () => socket.destroy() }
}

/** Resolves with the exit code, or fails the test if the process is still running after `ms`. */
async function exitWithin(child: Child, ms: number, what: string): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<'late'>((r) => {
    timer = setTimeout(() => r('late'), ms)
  })
  const code = await Promise.race([child.exited, late])
  clearTimeout(timer)
  if (code === 'late')
    throw new Error(`${what}: the node was still running ${ms / 1000} s later:\n${child.output()}`)
  return code
}

async function scenario(kind: 'SIGTERM' | 'full disk'): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cityledger-shutdown-'))
  const flag = join(dir, 'disk-full')
  let child: Child | undefined
  const clients: ReturnType<typeof trickle>[] = []
  try {
    child = await startChild(dir, flag)
    for (let i = 0; i < 5; i++) clients.push(trickle(child.rpc, 50))
    await Promise.all(clients.map((c) => c.started))
    // The node answers a request after accepting the tricklers: they are its connections now.
    assert.is((await fetch(`${child.rpc}/v1/status`)).status, 200)
    if (kind === 'SIGTERM') child.proc.kill('SIGTERM')
    else writeFileSync(flag, '')
    // Generous: the target is a few seconds; this only keeps a regression from hanging the suite.
    const code = await exitWithin(child, 60_000, kind)
    assert.is(code, kind === 'SIGTERM' ? 0 : 5, child.output())
    await Promise.all(clients.map((c) => c.closed))
    for (const c of clients) assert.ok(c.sent() < 60_000, 'the client was still trickling')
    if (kind === 'full disk') assert.match(child.output(), /ENOSPC/)
  } finally {
    for (const c of clients) c.destroy()
    if (child && child.proc.exitCode === null && child.proc.signalCode === null) {
      child.proc.kill('SIGKILL')
      await child.exited
    }
    rmSync(dir, { recursive: true, force: true })
  }
}

test('SIGTERM: the node exits cleanly while 5 clients trickle request bodies', () => scenario('SIGTERM'))

test('full disk (ENOSPC): the node stops and exits 2 while 5 clients trickle request bodies', () =>
  scenario('full disk'))

test.run()
