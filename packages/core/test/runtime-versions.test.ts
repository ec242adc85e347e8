import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  type Runtime,
  type ServiceDefinition,
  type Value,
  createRuntime,
  decodeStrict,
  defineService,
  s,
  toHex,
  utf8,
} from '@cityledger/core'
import { refusal } from './helpers/refusal.ts'

// A service's version is chain state; an upgrade activates at a height with a migration; a node
// whose code has another version refuses to execute, with a message saying what to run.

const v1 = defineService({
  name: 'counter',
  version: '1.0.0',
  methods: { noop: { args: s.object({}), handler() {} } },
  genesis(ctx) {
    ctx.state.set('n', 5)
  },
})

const v2 = defineService({
  name: 'counter',
  version: '2.0.0',
  methods: { noop: { args: s.object({}), handler() {} } },
  genesis(ctx) {
    ctx.state.set('n', { count: 5 })
  },
  migrate(ctx, from) {
    ctx.state.set('n', { count: ctx.state.get<number>('n') ?? 0 })
    ctx.state.set('migratedFrom', from ?? null)
  },
})

/** A chain's committed state that runtimes with different code can take turns on (a node restarted). */
function chainState() {
  const store = new Map<string, Uint8Array>()
  let height = 0
  const reader = { get: (k: Uint8Array) => store.get(toHex(k)) }
  const apply = (writes: Map<string, Uint8Array | null>) => {
    for (const [k, v] of writes) {
      if (v === null) store.delete(k)
      else store.set(k, v)
    }
  }
  return {
    get height() {
      return height
    },
    genesis(rt: Runtime, config: Record<string, Value | undefined> = {}) {
      apply(rt.genesis(reader, config, 0).writes)
    },
    /** Executes the next (empty) block with `rt`; commits it unless it throws. */
    next(rt: Runtime) {
      const out = rt.executeBlock(reader, { height: height + 1, time: (height + 1) * 1000, txs: [] })
      apply(out.writes)
      height++
      return out
    },
    get(key: string): Value | undefined {
      const raw = store.get(toHex(utf8.encode(key)))
      return raw === undefined ? undefined : decodeStrict(raw, { maxBytes: raw.length, maxDepth: 8 })
    },
    reader,
  }
}

const runtime = (svc: ServiceDefinition) => createRuntime({ services: [svc] })

test('genesis records each service version; a node with other code refuses to execute', () => {
  const c = chainState()
  c.genesis(runtime(v1))
  assert.is(c.get('_sys/version/counter'), '1.0.0')
  c.next(runtime(v1))
  const err = refusal(() => c.next(runtime(v2)))
  assert.is(err.code, 'SERVICE_VERSION_MISMATCH')
  assert.match(err.message, /chain runs counter 1\.0\.0 at height 2; this node has counter 2\.0\.0/)
  assert.is(c.height, 1, 'nothing was committed')
  assert.equal(runtime(v2).versions(c.reader), [{ service: 'counter', chain: '1.0.0', code: '2.0.0' }])
})

test('an upgrade scheduled at genesis activates at its height with the migration', () => {
  const c = chainState()
  c.genesis(runtime(v1), { _sys: { upgrades: [{ service: 'counter', version: '2.0.0', height: 3 }] } })
  assert.equal(c.get('_sys/upgrade/counter'), { version: '2.0.0', height: 3 })
  c.next(runtime(v1))
  // The new code started too early refuses too (it would execute block 2 with 2.0.0's rules).
  assert.is(refusal(() => c.next(runtime(v2))).code, 'SERVICE_VERSION_MISMATCH')
  c.next(runtime(v1))
  // Block 3: the old code stops cleanly, naming the version to install.
  const stop = refusal(() => c.next(runtime(v1)))
  assert.is(stop.code, 'SERVICE_UPGRADE_REQUIRED')
  assert.match(
    stop.message,
    /block 3 runs counter 2\.0\.0 .*this node has counter 1\.0\.0: install counter 2\.0\.0/,
  )
  assert.is(c.height, 2)
  assert.is(c.get('counter/n'), 5)
  // The node restarts with 2.0.0: block 3 migrates, then runs under 2.0.0.
  const out = c.next(runtime(v2))
  assert.equal(c.get('counter/n'), { count: 5 })
  assert.is(c.get('counter/migratedFrom'), '1.0.0')
  assert.is(c.get('_sys/version/counter'), '2.0.0')
  assert.is(c.get('_sys/upgrade/counter'), undefined)
  assert.equal(
    out.blockEvents.filter((e) => e.name === 'serviceUpgraded').map((e) => e.data),
    [{ from: '1.0.0', to: '2.0.0' }],
  )
  c.next(runtime(v2))
  assert.is(refusal(() => c.next(runtime(v1))).code, 'SERVICE_VERSION_MISMATCH')
})

test('a failing migration stops the chain at its height on every node (nothing committed)', () => {
  const bad = {
    ...v2,
    migrate: () => {
      throw new Error('cannot convert')
    },
  }
  const c = chainState()
  c.genesis(runtime(v1), { _sys: { upgrades: [{ service: 'counter', version: '2.0.0', height: 2 }] } })
  c.next(runtime(v1))
  const err = refusal(() => c.next(runtime(bad)))
  assert.is(err.code, 'MIGRATION_FAILED')
  assert.match(err.message, /migration of counter from 1\.0\.0 to 2\.0\.0 at height 2 failed: cannot convert/)
  assert.is(c.height, 1)
})

test('a bad upgrade schedule in genesis is refused', () => {
  const c = chainState()
  for (const upgrades of [
    [{ service: 'nope', version: '2', height: 3 }],
    [{ service: 'counter', version: '', height: 3 }],
    'x',
  ]) {
    assert.is(refusal(() => c.genesis(runtime(v1), { _sys: { upgrades } as Value })).code, 'BAD_GENESIS')
  }
})

test.run()
