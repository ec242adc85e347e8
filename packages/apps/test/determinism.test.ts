// Determinism of the whole service set: the same blocks executed on fresh stores, in separate processes
// (memory store, LevelDB store; services in SES Compartments after lockdown, as validators run them) and
// in this one (plain modules), give the same state root after every height, the same tx results and the
// same events, byte for byte. The blocks come from a seeded generator of a realistic mix
// of city transactions that calls every method of every service (test/determinism-fixtures.ts).
// Replay a failure with SEED=<seed> (printed in the test names).
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { createRuntime, openMemoryKv, toHex } from '@cityledger/core'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { allServices } from '../src/all.ts'
import {
  CHAIN_ID,
  GENESIS_TIME,
  SEED,
  type Trace,
  firstDifference,
  generate,
  run,
} from './determinism-fixtures.ts'

const generated = generate(SEED)
const child = join(import.meta.dirname, 'determinism-child.ts')

/** Runs the blocks of SEED in a fresh node process on a fresh store; returns its trace. */
async function runInChild(kind: 'memory' | 'level', dir: string): Promise<Trace> {
  const out = join(dir, `${kind}.json`)
  const args = [...process.execArgv, child, String(SEED), kind, out]
  if (kind === 'level') args.push(join(dir, 'db'))
  await promisify(execFile)(process.execPath, args, { cwd: import.meta.dirname, timeout: 300_000 })
  return JSON.parse(readFileSync(out, 'utf8')) as Trace
}

test(`the generator is deterministic and its traffic calls every method and mostly succeeds (seed ${SEED})`, async () => {
  const again = generate(SEED)
  assert.equal(
    again.blocks.map((b) => b.map((t) => toHex(t.hash))),
    generated.blocks.map((b) => b.map((t) => toHex(t.hash))),
    'same seed, same signed txs',
  )
  // A determinism check over traffic that only fails would prove little: most txs must do something,
  // every service must succeed, and every method of every service must run.
  const runtime = createRuntime({ services: allServices })
  const state = new Map<string, Uint8Array>()
  const reader = { get: (k: Uint8Array) => state.get(toHex(k)) }
  const apply = (w: Map<string, Uint8Array | null>) => {
    for (const [k, v] of w) v === null ? state.delete(k) : state.set(k, v)
  }
  apply(runtime.genesis(reader, generated.genesis, GENESIS_TIME).writes)
  const ok = new Map<string, number>()
  const called = new Set<string>()
  const succeeded = new Set<string>()
  let all = 0
  let good = 0
  for (const [i, txs] of generated.blocks.entries()) {
    const exec = runtime.executeBlock(reader, {
      height: i + 1,
      time: GENESIS_TIME + (i + 1) * 1000,
      chainId: CHAIN_ID,
      txs,
    })
    apply(exec.writes)
    for (const [j, r] of exec.results.entries()) {
      const { service, method } = txs[j]!.body
      called.add(`${service}.${method}`)
      all++
      if (r.code !== null) continue
      good++
      succeeded.add(`${service}.${method}`)
      ok.set(service, (ok.get(service) ?? 0) + 1)
    }
  }
  assert.ok(good / all > 0.5, `seed ${SEED}: only ${good}/${all} txs succeeded`)
  const methods = allServices.flatMap((svc) => Object.keys(svc.methods).map((m) => `${svc.name}.${m}`))
  for (const svc of allServices)
    assert.ok((ok.get(svc.name) ?? 0) > 0, `seed ${SEED}: no successful tx of ${svc.name}`)
  assert.equal(
    methods.filter((m) => !called.has(m)),
    [],
    `seed ${SEED}: methods the traffic never calls`,
  )
  assert.equal(
    methods.filter((m) => !succeeded.has(m)),
    [],
    `seed ${SEED}: methods that never succeed`,
  )
})

test(`memory and LevelDB stores in separate sandboxed processes, and a memory store here: same roots, results and events (seed ${SEED})`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cityledger-determinism-'))
  try {
    const [memory, level, here] = await Promise.all([
      runInChild('memory', dir),
      runInChild('level', dir),
      (async () => run(await openMemoryKv(), generated.genesis, generated.blocks))(),
    ])
    assert.is(firstDifference(here, memory), undefined, `seed ${SEED}: this process vs a memory child`)
    assert.is(firstDifference(memory, level), undefined, `seed ${SEED}: memory vs LevelDB child`)
    assert.equal(memory, here, `seed ${SEED}: traces are byte-identical`)
    assert.equal(level, memory, `seed ${SEED}: traces are byte-identical`)
    assert.is(here.heights.length, generated.blocks.length)
    for (const h of level.heights)
      assert.equal(h.stored, h.results, 'the store returns the results as executed')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
