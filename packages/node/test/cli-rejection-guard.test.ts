// A promise some code drops rejected (e.g. a service handler that calls Promise.reject and returns)
// must not end the validator process: Node's default for an unhandled rejection is to crash, and
// every validator runs the same services, so all would crash at once. The guard `start` installs logs
// it at error level and the process keeps running.
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { test } from 'uvu'
import * as assert from 'uvu/assert'

const GUARD = pathToFileURL(resolve(import.meta.dirname, '../src/cli/rejectionGuard.ts')).href

// A plain Node process (no SES lockdown, whose own default would report instead of crash): drops a
// rejected promise, then on the next turn says it is still running and ends by itself.
const script = (guard: boolean) => `
import { installRejectionGuard } from ${JSON.stringify(GUARD)}
${guard ? 'installRejectionGuard()' : ''}
void Promise.reject(new Error('dropped by a service'))
setTimeout(() => process.stdout.write('still running\\n'), 0)
`

function run(src: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', src], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    p.stdout.on('data', (b: Buffer) => (out += b))
    p.stderr.on('data', (b: Buffer) => (err += b))
    p.on('exit', (code) => done({ code, out, err }))
  })
}

test('without the guard a dropped rejection crashes the process', async () => {
  const r = await run(script(false))
  assert.is.not(r.code, 0)
  assert.not.match(r.out, 'still running')
})

test('with the guard it is logged at error level with a stable message, and the process runs on', async () => {
  const r = await run(script(true))
  assert.is(r.code, 0, r.err)
  assert.match(r.out, 'still running')
  const line = r.out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l.msg === 'unhandled promise rejection')
  assert.ok(line, `no log line in:\n${r.out}`)
  assert.is(line.level, 50, 'error level')
  assert.is(line.module, 'process')
  assert.match(String(line.err), 'dropped by a service')
})

test.run()
