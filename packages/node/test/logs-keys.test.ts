// Every log line a node writes is a JSON object without duplicate keys (Elasticsearch and other log
// stores reject `{"module":"rpc","module":"rpc"}`), and the `ready` line a supervisor greps for has a
// level and a time like every other line. JSON.parse keeps the last of two equal keys, so the lines are
// checked on their raw text.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pino } from 'pino'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createTestnet } from '../src/cli/testnet.ts'
import { lineSink, startLocalNode } from './nodeHarness.ts'

/** Duplicate keys of any object in one JSON text, as `path.key` (empty when there are none). */
function duplicateKeys(text: string): string[] {
  let i = 0
  const found: string[] = []
  const ws = () => {
    while (/\s/.test(text[i] ?? '')) i++
  }
  const str = (): string => {
    const start = i
    i++
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1
    i++
    return JSON.parse(text.slice(start, i)) as string
  }
  const value = (path: string): void => {
    ws()
    const c = text[i]
    if (c === '{') {
      i++
      const seen = new Set<string>()
      ws()
      if (text[i] === '}') return void i++
      for (;;) {
        ws()
        const key = str()
        if (seen.has(key)) found.push(`${path}${key}`)
        seen.add(key)
        ws()
        i++ // ':'
        value(`${path}${key}.`)
        ws()
        if (text[i++] === '}') return
      }
    }
    if (c === '[') {
      i++
      ws()
      if (text[i] === ']') return void i++
      for (;;) {
        value(path)
        ws()
        if (text[i++] === ']') return
      }
    }
    if (c === '"') return void str()
    while (i < text.length && !/[,}\]\s]/.test(text[i]!)) i++
  }
  JSON.parse(text) // throws on anything that is not JSON
  value('')
  return found
}

test('duplicateKeys finds repeated keys at any depth', () => {
  assert.equal(duplicateKeys('{"a":1,"b":{"c":"x\\"y","c":2},"a":[{"d":1,"d":2}]}'), ['b.c', 'a', 'a.d'])
  assert.equal(duplicateKeys('{"level":30,"msg":"ok","list":[1,"a",{}],"n":null}'), [])
})

test('no log line of a running node repeats a key (rpc and p2p included)', async () => {
  const { lines, stream: sink } = lineSink()
  // Trace: the RPC server logs every request at trace level, so its lines are in the sample.
  const logger = pino({ level: 'trace', base: { node: 'n0' } }, sink)
  const local = await startLocalNode((config) => (config.log.level = 'trace'), { logger })
  try {
    await (await fetch(`${local.url}/v1/status`)).text()
  } finally {
    await local.close()
    logger.flush()
  }
  const modules = new Set(lines.map((l) => (JSON.parse(l) as { module?: string }).module))
  for (const m of ['rpc', 'p2p', 'node']) assert.ok(modules.has(m), `a ${m} line was logged`)
  for (const line of lines) assert.equal(duplicateKeys(line), [], line)
})

test('the ready line of `cityledger start` has a level and a time, and the text harnesses grep for', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cityledger-ready-'))
  try {
    const layout = createTestnet({
      validators: 1,
      out: dir,
      chainId: 'ready-test',
      ports: [{ p2p: 0, rpc: 0 }],
      consensus: { blockIntervalMs: 20, viewChangeTimeoutMs: 1000 },
    })
    const main = resolve(import.meta.dirname, '../src/cli/main.ts')
    const proc = spawn(process.execPath, [main, 'start', '--home', layout.homes[0]!], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)))
    let out = ''
    const line = await new Promise<string>((ready, fail) => {
      proc.stdout!.on('data', (b: Buffer) => {
        out += b
        const l = out.split('\n').find((x) => x.includes('"msg":"ready"'))
        if (l !== undefined && out.includes(`${l}\n`)) ready(l)
      })
      proc.stderr!.on('data', (b: Buffer) => (out += b))
      proc.once('exit', (code) => fail(new Error(`node exited with ${code} before ready:\n${out}`)))
    })
    proc.kill('SIGTERM')
    assert.is(await exited, 0)
    // What node-shutdown.test.ts and the fault harness match on.
    assert.match(line, /^\{"msg":"ready","rpc":"http:\/\/[^"]+"/)
    assert.equal(duplicateKeys(line), [])
    const o = JSON.parse(line) as Record<string, unknown>
    assert.is(o.level, 30)
    assert.type(o.time, 'string')
    assert.ok(Math.abs(Date.parse(o.time as string) - Date.now()) < 60_000, `time ${o.time}`)
    assert.ok(Array.isArray(o.p2p))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
