// A real `cityledger start --signer-module` with the fixture signer (test/fixtures/signerModule.mjs,
// a stand-in for an HSM binding): it runs the chain; a wrong key or bad signatures stop the start
// before the node joins; a signer that fails mid-run stops the node with one clear line (exit 5); and
// the double-sign guard refuses, after a restart whose data folder was lost, to sign height 1 again.
import { type ChildProcess, spawn } from 'node:child_process'
import { copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { generateKeyPair, toHex } from '@cityledger/core'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { EXIT } from '../src/cli/exitCodes.ts'
import { MAIN, oneValidatorHome, startCli, withDir } from './cliHarness.ts'

const FIXTURE = resolve(import.meta.dirname, 'fixtures/signerModule.mjs')

/** The signer's options file; its key is a copy of the home's (the "HSM" holds the validator key). */
function hsm(dir: string, home: string, extra: Record<string, unknown> = {}, keyFile?: string): string[] {
  const key = keyFile ?? join(dir, 'hsm-key.json')
  if (!keyFile) copyFileSync(join(home, 'key.json'), key)
  const options = join(dir, 'signer-options.json')
  writeFileSync(options, JSON.stringify({ keyFile: key, ...extra }))
  return ['--signer-module', FIXTURE, '--signer-options', options]
}

/** Runs `start` to its exit (for starts that must fail, or stop by themselves). */
function runToExit(home: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((done) => {
    const p: ChildProcess = spawn(process.execPath, [MAIN, 'start', '--home', home, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    p.stdout!.on('data', (b: Buffer) => (out += b))
    p.stderr!.on('data', (b: Buffer) => (out += b))
    // A start that never ends fails the test instead of hanging it.
    const deadline = setTimeout(() => p.kill('SIGKILL'), 60_000)
    p.on('exit', (code) => {
      clearTimeout(deadline)
      done({ code, out })
    })
  })
}

const rpcOf = (out: string): string =>
  JSON.parse(out.split('\n').find((l) => l.startsWith('{"msg":"ready"'))!).rpc

/** Polls /v1/status until the chain reaches `height` (bounded: fails after 20 s). */
async function untilHeight(rpc: string, height: number): Promise<void> {
  const deadline = Date.now() + 20_000
  for (;;) {
    const s = (await (await fetch(`${rpc}/v1/status`)).json()) as { height: number }
    if (s.height >= height) return
    if (Date.now() > deadline) throw new Error(`height ${s.height} after 20 s, wanted ${height}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

test(
  'a node signs with the module; restarted with its data it goes on; with its data lost the guard refuses height 1',
  withDir('cityledger-signer-node-', async (dir) => {
    const home = oneValidatorHome(dir, 'signer-node')
    const args = hsm(dir, home)
    const a = await startCli(home, args)
    await untilHeight(rpcOf(a.output()), 3)
    a.proc.kill('SIGTERM')
    assert.is(await a.exited, 0)
    const state = JSON.parse(readFileSync(join(home, 'signer-state.json'), 'utf8'))
    assert.ok(state.votes['prepare/1/0'] && state.votes['commit/1/0'], 'height 1 votes recorded')
    // The journal and the guard agree: a plain restart signs on.
    const b = await startCli(home, args)
    const before = (await (await fetch(`${rpcOf(b.output())}/v1/status`)).json()) as { height: number }
    await untilHeight(rpcOf(b.output()), before.height + 2)
    b.proc.kill('SIGTERM')
    assert.is(await b.exited, 0)
    // A lost data folder takes the journal with it: the chain restarts at height 1 with another block
    // (another time), and the guard, outside data/, refuses to sign it.
    rmSync(join(home, 'data'), { recursive: true, force: true })
    // Whether the first proposal comes before the start has finished (exit 1, "cannot start") or after
    // (a fatal stop, exit 5) is timing; either way the node stops and says why, and never exits 0.
    const c = await runToExit(home, args)
    assert.ok(c.code === 1 || c.code === EXIT.FATAL, c.out)
    assert.match(c.out, '"code":"DOUBLE_SIGN"')
    assert.match(c.out, 'validator signer failed: stopping the node')
    assert.match(c.out, /refused to sign a prepare vote at height 1, view 0/)
    assert.match(c.out, 'node stopped')
  }),
)

test(
  'a signer with another key is refused before the node joins, naming the module',
  withDir('cityledger-signer-node-', async (dir) => {
    const home = oneValidatorHome(dir, 'signer-node')
    const other = generateKeyPair()
    const otherFile = join(dir, 'other-key.json')
    writeFileSync(
      otherFile,
      JSON.stringify({ publicKey: toHex(other.publicKey), secretKey: toHex(other.secretKey) }),
    )
    const r = await runToExit(home, hsm(dir, home, {}, otherFile))
    assert.is(r.code, 1, r.out)
    assert.match(r.out, `cannot start: signer ${FIXTURE} has public key ${toHex(other.publicKey)}`)
    assert.match(r.out, "(key.json's, this node's p2p identity)")
    assert.not.match(r.out, '"msg":"ready"')
    assert.not.match(r.out, 'node started')
    assert.not.ok(existsSync(join(home, 'data')), 'no store was opened')
  }),
)

test(
  'a signer whose signatures do not verify is refused at start, naming the module',
  withDir('cityledger-signer-node-', async (dir) => {
    const home = oneValidatorHome(dir, 'signer-node')
    const r = await runToExit(home, hsm(dir, home, { mode: 'zeros' }))
    assert.is(r.code, 1, r.out)
    assert.match(r.out, `cannot start: signer ${FIXTURE}: its signature of a test message does not verify`)
    assert.not.match(r.out, '"msg":"ready"')
  }),
)

test(
  'a signer that throws mid-run stops the node cleanly with one clear line',
  withDir('cityledger-signer-node-', async (dir) => {
    const home = oneValidatorHome(dir, 'signer-node')
    const unplugged = join(dir, 'hsm-unplugged')
    const n = await startCli(home, hsm(dir, home, { mode: 'throwOnceFile', file: unplugged }))
    await untilHeight(rpcOf(n.output()), 2)
    // The "HSM" goes away while the chain runs: the next signature throws.
    writeFileSync(unplugged, '')
    assert.is(await n.exited, EXIT.FATAL, n.output())
    const out = n.output()
    const fatal = out.split('\n').filter((l) => l.includes('"level":60'))
    assert.is(fatal.length, 1, out)
    assert.match(fatal[0]!, 'validator signer failed: stopping the node')
    assert.match(fatal[0]!, '"code":"SIGNER_FAILED"')
    assert.match(fatal[0]!, `signer ${FIXTURE}: sign failed: CKR_DEVICE_REMOVED`)
    assert.match(out, 'node stopped')
    assert.not.match(out, 'consensus step failed')
  }),
)

test(
  "config.json's signer (module relative to the home, options inline) is the node's signer",
  withDir('cityledger-signer-node-', async (dir) => {
    const home = oneValidatorHome(dir, 'signer-node')
    copyFileSync(FIXTURE, join(home, 'hsm.mjs'))
    const keyFile = join(dir, 'hsm-key.json')
    copyFileSync(join(home, 'key.json'), keyFile)
    const config = JSON.parse(readFileSync(join(home, 'config.json'), 'utf8'))
    config.signer = { module: 'hsm.mjs', options: { keyFile, mode: 'zeros' } }
    writeFileSync(join(home, 'config.json'), JSON.stringify(config))
    // The module's checks run on it: its bad signatures refuse the start, naming it by its full path.
    const r = await runToExit(home, [])
    assert.is(r.code, 1, r.out)
    assert.match(
      r.out,
      `cannot start: signer ${join(home, 'hsm.mjs')}: its signature of a test message does not verify`,
    )
    assert.not.match(r.out, '"msg":"ready"')
  }),
)

test(
  'the secret only in the "HSM": key.json names the public key alone; the node runs with the module and refuses to start without it',
  withDir('cityledger-signer-node-', async (dir) => {
    const home = oneValidatorHome(dir, 'signer-node')
    const args = hsm(dir, home)
    const { publicKey } = JSON.parse(readFileSync(join(home, 'key.json'), 'utf8'))
    writeFileSync(join(home, 'key.json'), JSON.stringify({ publicKey }), { mode: 0o600 })
    const a = await startCli(home, args)
    await untilHeight(rpcOf(a.output()), 3)
    a.proc.kill('SIGTERM')
    assert.is(await a.exited, 0)
    const r = await runToExit(home, [])
    assert.is(r.code, 1, r.out)
    assert.match(r.out, 'secretKey must be 64 hex characters')
  }),
)

test('--signer-options without --signer-module is a usage error', async () => {
  const r = await runToExit('/nonexistent', ['--signer-options', '/nonexistent/o.json'])
  assert.is(r.code, EXIT.USAGE)
  assert.match(r.out, '--signer-options needs --signer-module')
})

test.run()
