import '@cityledger/core/lockdown'
import { fileURLToPath } from 'node:url'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type CityError, type Value, isCityError, loadServiceModules, toHex } from '@cityledger/core'
import { createTestChain } from '@cityledger/core/testing'

// Hostile services in the SES sandbox: every escape from determinism fails the tx with a stable code
// (or the module refuses to load), the same way on independently loaded runtimes ("nodes").

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/hostile/${name}`, import.meta.url))

/** One "node": the hostile module loaded afresh (its own Compartments) in a chain of its own. */
function node() {
  const bugs: string[] = []
  const chain = createTestChain({
    services: loadServiceModules([fixture('hostile.ts')]),
    onBug: ({ method }) => bugs.push(method),
  })
  return { chain, bugs }
}

const ESCAPES: [string, string][] = [
  ['dateNow', 'INTERNAL'],
  ['newDate', 'INTERNAL'],
  ['random', 'INTERNAL'],
  ['sin', 'INTERNAL'],
  ['uuid', 'INTERNAL'],
  ['intl', 'INTERNAL'],
  ['timer', 'INTERNAL'],
  ['performance', 'INTERNAL'],
  ['globalWrite', 'INTERNAL'],
  ['functionCtor', 'INTERNAL'],
  ['functionGlobal', 'INTERNAL'],
  ['indirectEval', 'INTERNAL'],
  ['process', 'INTERNAL'],
  ['require', 'INTERNAL'],
  ['pollute', 'INTERNAL'],
  ['patchArray', 'INTERNAL'],
  ['float', 'INTERNAL'],
  ['floatEvent', 'INTERNAL'],
  ['asyncThrow', 'INTERNAL'],
]

test('every escape fails its tx with the same code and leaves no write, on two independently loaded nodes', () => {
  const runs = [node(), node()]
  const outcomes = runs.map(({ chain }) => {
    const k = chain.keys('mallory')
    const results = chain.block(ESCAPES.map(([method]) => ({ key: k, service: 'hostile', method, args: {} })))
    return {
      codes: results.map((r) => r.code),
      raw: [...chain.raw()].map(([key, v]) => `${key}=${toHex(v)}`),
    }
  })
  for (const o of outcomes) {
    assert.equal(
      o.codes,
      ESCAPES.map(([, code]) => code),
    )
  }
  assert.equal(outcomes[0], outcomes[1], 'the two nodes disagree')
  const state = runs[0]!.chain.state()
  assert.is(state.get('hostile/out'), undefined, 'an escape stored a value')
  // Intrinsics of this process are intact (the sandbox froze them; the pollution attempts failed).
  assert.is(({} as Record<string, unknown>).polluted, undefined)
  assert.equal(
    [1, 2].map((x) => x * 2),
    [2, 4],
  )
})

test('stack traces carry no paths of the node: a stored stack is the same everywhere', () => {
  const { chain } = node()
  const r = chain.tx(chain.keys('m'), 'hostile', 'stack', {})
  assert.is(r.code, null)
  assert.is(chain.state().get('hostile/out'), 'Error: x')
})

test('a getter is read once: the stored value and what a callee sees are plain data', () => {
  const { chain } = node()
  const k = chain.keys('m')
  assert.is(chain.tx(k, 'hostile', 'getterValue', {}).code, null)
  assert.equal(chain.state().get('hostile/out'), { v: 1 })
  assert.equal(chain.state().get('hostile/again'), { v: 1 })
  assert.is(chain.tx(k, 'hostile', 'getterArgs', {}).code, null)
  assert.is(chain.state().get('victim/first'), 1)
  assert.is(chain.state().get('victim/second'), 1, 'the callee read a getter twice')
})

test('a promise cannot write after its tx ended', async () => {
  const { chain } = node()
  assert.is(chain.tx(chain.keys('m'), 'hostile', 'lateWrite', {}).code, null)
  await new Promise((resolve) => setImmediate(resolve))
  chain.advance(1)
  assert.is(chain.state().get('hostile/late'), undefined)
})

const refuse = (name: string, why: RegExp) => {
  let err: unknown
  try {
    loadServiceModules([fixture(name)])
  } catch (e) {
    err = e
  }
  assert.ok(isCityError(err, 'SERVICE_LOAD_FAILED'), `${name} loaded: ${String(err)}`)
  assert.match((err as CityError).message, why)
}

test('modules that reach for I/O, dynamic import, eval, the clock at load or files outside refuse to load', () => {
  refuse('dynamic-import.ts', /import/)
  refuse('direct-eval.ts', /eval/)
  refuse('node-import.ts', /node:fs.*only @cityledger\/core/)
  refuse('non-sdk-import.ts', /openMemoryKv.*not part of the service SDK/)
  refuse('load-time.ts', /failed while loading: .*(Date|now)/)
  refuse('escape-dir.ts', /outside/)
})

test('the sandbox keeps the SDK usable: schemas, errors and bytes helpers work inside a compartment', () => {
  const { chain } = node()
  // Unknown args are refused by the SDK's schema, a ServiceError-coded failure, not INTERNAL.
  const r = chain.tx(chain.keys('m'), 'hostile', 'dateNow', { extra: 1 } as Value)
  assert.is(r.code, 'BAD_ARGS')
})

test.run()
