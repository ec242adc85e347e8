// Log levels per module (config `log.modules`) and the `pretty` format for humans (issue #15): an
// operator turns one module up (p2p to debug) without drowning in the others, and reads logs in a
// terminal without a JSON viewer.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { configProblems } from '../src/config/index.ts'
import { createLogger, moduleLogger } from '../src/log/index.ts'
import { cli as runCli, oneValidatorHome, startCli } from './cliHarness.ts'
import { lineSink as sink, startLocalNode } from './nodeHarness.ts'

test('a module set more verbose than the root logs below the root level; the others stay at it', () => {
  const { lines, stream } = sink()
  const root = createLogger({ level: 'warn', destination: stream })
  const levels = { p2p: 'debug', consensus: 'error' } as const
  moduleLogger(root, 'p2p', levels).debug('p2p debug')
  moduleLogger(root, 'p2p', levels).trace('p2p trace')
  moduleLogger(root, 'consensus', levels).warn('consensus warn')
  moduleLogger(root, 'consensus', levels).error('consensus error')
  moduleLogger(root, 'sync', levels).info('sync info')
  moduleLogger(root, 'sync', levels).warn('sync warn')
  root.flush()
  assert.equal(
    lines.map((l) => JSON.parse(l).msg),
    ['p2p debug', 'consensus error', 'sync warn'],
  )
})

test('a running node applies log.modules to every module, rpc and p2p included', async () => {
  const { lines, stream } = sink()
  const logger = createLogger({ level: 'warn', destination: stream, name: 'n0' })
  const local = await startLocalNode(
    (config) => {
      config.log.level = 'warn'
      config.log.modules = { rpc: 'trace', p2p: 'debug' }
    },
    { logger },
  )
  try {
    await (await fetch(`${local.url}/v1/status`)).text()
  } finally {
    await local.close()
    logger.flush()
  }
  const parsed = lines.map((l) => JSON.parse(l) as { level: number; module?: string })
  const floor: Record<string, number> = { rpc: 10, p2p: 20 }
  const low = parsed.filter((l) => l.level < (floor[l.module ?? ''] ?? 40))
  assert.equal(low, [], 'lines below their module level')
  assert.ok(
    parsed.some((l) => l.module === 'rpc' && l.level === 10),
    'rpc logged its requests at trace',
  )
})

test('config refuses an unknown module or level, naming the field', () => {
  const problems = (log: unknown) => configProblems({ log }).map((p) => `${p.field}: ${p.message}`)
  assert.equal(problems({ format: 'pretty', modules: { p2p: 'debug' } }), [])
  const unknownModule = problems({ modules: { p2pp: 'debug' } })
  assert.ok(
    unknownModule.length > 0 && unknownModule.every((p) => p.startsWith('log.modules')),
    String(unknownModule),
  )
  assert.match(String(unknownModule), /p2pp/)
  const badLevel = problems({ modules: { p2p: 'loud' } })
  assert.ok(badLevel.length > 0 && badLevel[0]!.startsWith('log.modules.p2p'), String(badLevel))
  assert.ok(problems({ format: 'xml' })[0]!.startsWith('log.format'))
})

test('`cityledger start --log-format pretty` writes human lines; the ready line stays JSON', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cityledger-pretty-'))
  try {
    const node = await startCli(oneValidatorHome(dir, 'pretty-test'), ['--log-format', 'pretty'])
    node.proc.kill('SIGTERM')
    assert.is(await node.exited, 0)
    const out = node.output()
    const lines = out.split('\n').filter((l) => l.length > 0)
    // pino-pretty: `[HH:MM:ss.mmm] INFO (n0): message`, then indented fields.
    const human = lines.filter((l) => /^\[\d\d:\d\d:\d\d\.\d{3}\] (INFO|WARN|DEBUG|ERROR)/.test(l))
    assert.ok(human.length >= 2, `expected pretty lines, got:\n${out}`)
    const json = lines.filter((l) => l.startsWith('{'))
    assert.equal(
      json.map((l) => JSON.parse(l).msg),
      ['ready'],
      'only the ready line is JSON',
    )
    assert.ok(/shutting down/.test(out), out)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('`cityledger start` refuses an unknown --log-format with exit code 2 (usage)', async () => {
  const r = await runCli(['start', '--home', tmpdir(), '--log-format', 'xml'])
  assert.match(r.err, /--log-format/)
  assert.match(r.err, /json, pretty/)
  assert.is(r.code, 2)
})

test.run()
