// The city demo (`cityledger demo`) against a 4-validator network on loopback: it must pass, and pass
// again on the same chain (its agencies are set up once, its ids are per run).
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { startNetwork } from '../helpers/network.ts'

const MAIN = resolve(import.meta.dirname, '../../packages/node/src/cli/main.ts')

/** Runs `cityledger demo --devnet <dir>` as a user would; resolves with its exit code and output. */
function demo(dir: string): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [MAIN, 'demo', '--devnet', dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (b) => (output += b))
    child.stderr.on('data', (b) => (output += b))
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      done({ code, output })
    })
  })
}

test('the demo passes on a 4-validator network, and passes again on the same chain', async () => {
  // The testnet folder has the devnet layout: city-key.json and node<i>/config.json.
  const net = await startNetwork({ validators: 4 })
  try {
    const first = await demo(net.dir)
    assert.is(first.code, 0, `first run failed:\n${first.output}\n${net.log(0)}`)
    assert.match(first.output, /All \d+ checks hold/)
    assert.match(first.output, /certified by [34] of 4 validators/)
    assert.match(first.output, /city grants \(voting, organizer\) to Democracy Seoul/)

    const second = await demo(net.dir)
    assert.is(second.code, 0, `second run failed:\n${second.output}`)
    assert.match(second.output, /registered before/)
    assert.match(second.output, /All \d+ checks hold/)
  } finally {
    await net.close()
  }
})

test.run()
