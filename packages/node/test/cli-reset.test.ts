// `cityledger reset --home` (issue #13's CLI): deletes the data folder and keeps the key, config and
// genesis; a validator's home needs --unsafe-forget-votes (its journal keeps it from voting twice);
// refused while the node runs and, without --yes, when nobody can be asked.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { cli as runCli, oneValidatorHome, startCli } from './cliHarness.ts'

const cli = async (args: string[]) => {
  const r = await runCli(args)
  return { code: r.code, out: r.out + r.err }
}

test('reset deletes the data folder only with --yes and, for a validator, --unsafe-forget-votes; never while it runs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cityledger-reset-'))
  try {
    const home = oneValidatorHome(dir, 'reset-test')
    const data = join(home, 'data')
    // Run it once so that it has a data folder, and reset it while it runs.
    const node = await startCli(home)
    const running = await cli(['reset', '--home', home, '--yes', '--unsafe-forget-votes'])
    assert.is(running.code, 1, running.out)
    assert.match(running.out, /in use by another process/)
    assert.ok(existsSync(data))
    node.proc.kill('SIGTERM')
    assert.is(await node.exited, 0)

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
