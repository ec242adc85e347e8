// `cityledger reset --home` (issue #13's CLI): deletes the data folder and keeps the key, config and
// genesis; a validator's home needs --unsafe-forget-votes (its journal keeps it from voting twice);
// refused while the node runs and, without --yes, when nobody can be asked.
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createTestnet } from '../src/cli/testnet.ts'

const MAIN = resolve(import.meta.dirname, '../src/cli/main.ts')

function cli(args: string[]) {
  return new Promise<{ code: number | null; out: string }>((done) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (b) => (out += b))
    child.stderr.on('data', (b) => (out += b))
    child.on('exit', (code) => done({ code, out }))
  })
}

test('reset deletes the data folder only with --yes and, for a validator, --unsafe-forget-votes; never while it runs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cityledger-reset-'))
  try {
    const layout = createTestnet({
      validators: 1,
      out: dir,
      chainId: 'reset-test',
      ports: [{ p2p: 0, rpc: 0 }],
      consensus: { blockIntervalMs: 20, viewChangeTimeoutMs: 1000 },
    })
    const home = layout.homes[0]!
    const data = join(home, 'data')
    // Run it once so that it has a data folder, and reset it while it runs.
    const node = spawn(process.execPath, [MAIN, 'start', '--home', home], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const exited = new Promise<number | null>((r) => node.once('exit', (code) => r(code)))
    let out = ''
    await new Promise<void>((ready, fail) => {
      node.stdout!.on('data', (b: Buffer) => {
        out += b
        if (out.includes('"msg":"ready"')) ready()
      })
      node.once('exit', (code) => fail(new Error(`node exited with ${code}:\n${out}`)))
    })
    const running = await cli(['reset', '--home', home, '--yes', '--unsafe-forget-votes'])
    assert.is(running.code, 1, running.out)
    assert.match(running.out, /in use by another process/)
    assert.ok(existsSync(data))
    node.kill('SIGTERM')
    assert.is(await exited, 0)

    const key = readFileSync(join(home, 'key.json'), 'utf8')
    const validator = await cli(['reset', '--home', home, '--yes'])
    assert.is(validator.code, 2, validator.out)
    assert.match(validator.out, /validator's home.*--unsafe-forget-votes/s)
    const unasked = await cli(['reset', '--home', home, '--unsafe-forget-votes'])
    assert.is(unasked.code, 2, unasked.out)
    assert.match(unasked.out, /pass --yes/)
    assert.ok(existsSync(data), 'nothing deleted while refused')

    const done = await cli(['reset', '--home', home, '--yes', '--unsafe-forget-votes'])
    assert.is(done.code, 0, done.out)
    assert.not.ok(existsSync(data))
    for (const f of ['key.json', 'config.json', 'genesis.json']) assert.ok(existsSync(join(home, f)), f)
    assert.is(readFileSync(join(home, 'key.json'), 'utf8'), key)
    const again = await cli(['reset', '--home', home, '--yes', '--unsafe-forget-votes'])
    assert.is(again.code, 0)
    assert.match(again.out, /nothing to reset/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
