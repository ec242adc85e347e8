// Exit codes a script can switch on (packages/node/README.md, CLI): 0 ok, 1 other failure, 2 usage
// error, 3 node unreachable, 4 tx rejected; --version prints the package version; bench's unknown
// flags get its usage, not a stack trace.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createTestnet } from '../src/cli/testnet.ts'
import { cli, freePort, MAIN } from './cliHarness.ts'

const VERSION = JSON.parse(readFileSync(resolve(import.meta.dirname, '../package.json'), 'utf8')).version

const noStack = (s: string) => assert.not.ok(/\n\s+at /.test(s), `stack trace printed:\n${s}`)

test('--version prints the package version', async () => {
  const r = await cli(['--version'])
  assert.is(r.code, 0, r.err)
  assert.is(r.out.trim(), VERSION)
})

test('usage errors exit 2', async () => {
  for (const args of [
    ['nosuch'],
    ['status', '--nosuch'],
    ['testnet', '--out', join(tmpdir(), 'never-written'), '--validators', 'many'],
    ['tx', 'identity', 'registerSubject', '{not json', '--key', 'k.json'],
    ['init'],
  ]) {
    const r = await cli(args)
    assert.is(r.code, 2, `${args.join(' ')}: ${r.err}`)
    noStack(r.err)
  }
})

test('an unreachable node exits 3', async () => {
  const port = await freePort()
  for (const args of [
    ['status', '--rpc', `http://127.0.0.1:${port}`],
    ['query', 'identity', 'subject', 'subject=00', '--rpc', `http://127.0.0.1:${port}`],
  ]) {
    const r = await cli(args)
    assert.is(r.code, 3, `${args.join(' ')}: ${r.err}`)
    assert.match(r.err, 'UNAVAILABLE')
    noStack(r.err)
  }
})

test('bench: an unknown flag prints the usage and exits 2, no stack trace', async () => {
  for (const args of [
    ['bench', '--nosuch'],
    ['bench', 'verify', '--nosuch'],
  ]) {
    const r = await cli(args)
    assert.is(r.code, 2, `${args.join(' ')}: ${r.err}`)
    assert.match(r.err, '--nosuch')
    assert.match(r.err, 'usage: cityledger bench')
    noStack(r.err)
  }
})

test('a tx the node refuses or that fails exits 4; other failures 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cityledger-cli-exit-'))
  let node: ChildProcess | undefined
  try {
    const ports = [{ p2p: await freePort(), rpc: await freePort() }]
    const t = createTestnet({ validators: 1, out: dir, ports, store: 'memory' })
    node = spawn(process.execPath, [MAIN, 'start', '--home', t.homes[0]!], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let log = ''
    await new Promise<void>((ready, fail) => {
      node!.stdout!.on('data', (b: Buffer) => {
        log += b
        if (log.includes('"msg":"ready"')) ready()
      })
      node!.stderr!.on('data', (b: Buffer) => (log += b))
      node!.on('exit', (code) => fail(new Error(`node exited (${code}) before ready: ${log}`)))
    })
    const key = join(dir, 'city-key.json')
    const rpc = ['--rpc', t.rpc[0]!]
    const unknown = await cli(['tx', 'nosuch', 'method', '{}', '--key', key, ...rpc])
    assert.is(unknown.code, 4, `refused at admission: ${unknown.err}`)
    assert.match(unknown.err, 'UNKNOWN_SERVICE')
    const args = `{"subject":"0x${'5e'.repeat(32)}"}`
    const first = await cli(['tx', 'identity', 'registerSubject', args, '--key', key, ...rpc])
    assert.is(first.code, 0, first.err)
    const again = await cli(['tx', 'identity', 'registerSubject', args, '--key', key, ...rpc])
    assert.is(again.code, 4, `committed as failed: ${again.out}${again.err}`)
    assert.match(again.out, 'SUBJECT_EXISTS')
    const noKey = await cli([
      'tx',
      'identity',
      'registerSubject',
      args,
      '--key',
      join(dir, 'none.json'),
      ...rpc,
    ])
    assert.is(noKey.code, 1, noKey.err)
    assert.match(noKey.err, 'BAD_KEY')

    // query --verify: proven against the validators of the genesis the operator trusts (exit 0), and
    // refused against a genesis whose validators did not sign (exit 6).
    const q = ['query', 'identity', 'subject', `subject=${'5e'.repeat(32)}`, ...rpc]
    const proven = await cli([...q, '--verify', '--home', t.homes[0]!, '--timeout-ms', '60000'])
    assert.is(proven.code, 0, proven.err)
    assert.is(JSON.parse(proven.out).verified, true)
    const other = createTestnet({ validators: 1, out: join(dir, 'other'), ports, store: 'memory' })
    const forged = await cli([
      ...q,
      '--verify',
      '--genesis',
      join(other.homes[0]!, 'genesis.json'),
      '--timeout-ms',
      '60000',
    ])
    assert.is(forged.code, 6, `${forged.out}${forged.err}`)
    assert.match(forged.err, 'BAD_PROOF')
    noStack(forged.err)
  } finally {
    if (node && node.exitCode === null) {
      const exited = new Promise((done) => node!.on('exit', done))
      node.kill('SIGTERM')
      await exited
    }
    rmSync(dir, { recursive: true, force: true })
  }
})

test('config validate: ok for a testnet home, every problem named and exit 1 for a typo and a wrong type', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cityledger-cli-config-'))
  try {
    const t = createTestnet({ validators: 1, out: dir, ports: [{ p2p: 0, rpc: 0 }], store: 'memory' })
    const home = t.homes[0]!
    const good = await cli(['config', 'validate', '--home', home])
    assert.is(good.code, 0, good.out + good.err)
    assert.match(good.out, 'config.json: ok')
    assert.match(good.out, 'genesis.json: ok')
    const path = join(home, 'config.json')
    const cfg = JSON.parse(readFileSync(path, 'utf8'))
    cfg.rcp = {}
    cfg.mempool = { ...cfg.mempool, maxTxs: 'lots' }
    writeFileSync(path, JSON.stringify(cfg))
    const bad = await cli(['config', 'validate', '--home', home])
    assert.is(bad.code, 1, bad.out + bad.err)
    assert.match(bad.out, /rcp: unknown field/)
    assert.match(bad.out, /mempool\.maxTxs: expected an integer/)
    noStack(bad.out + bad.err)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
