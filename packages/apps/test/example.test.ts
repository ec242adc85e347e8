// The README's example service (examples/gardens.ts) does what the README says, and the README's
// reference covers every method of the shipped services.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { type TxResult, createRuntime, loadServiceModules } from '@cityledger/core'
import { Rng, createTestChain, testSeed } from '@cityledger/core/testing'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { gardens } from '../examples/gardens.ts'
import { allServices, baseServices } from '../src/index.ts'

function setup(plots = 5) {
  const keys = createTestChain({ services: [] })
  const city = keys.keys('city')
  const chain = createTestChain({
    services: [...baseServices, gardens],
    genesis: { identity: { admins: [{ key: city.publicKey, scopes: ['*'] }] }, gardens: { plots } },
  })
  const steward = chain.keys('steward')
  const r = chain.tx(city, 'identity', 'grantRole', {
    scope: 'gardens',
    role: 'steward',
    key: steward.publicKey,
  })
  assert.is(r.code, null, r.message)
  return { chain, city, steward, alice: chain.keys('alice'), bob: chain.keys('bob') }
}

test('a steward assigns a plot; the query shows it; the holder releases it', () => {
  const { chain, steward, alice } = setup()
  const until = chain.height + 10
  const r = chain.tx(steward, 'gardens', 'assign', { plot: 2, to: alice.publicKey, until })
  assert.is(r.code, null, r.message)
  assert.equal(r.events, [{ service: 'gardens', name: 'assigned', data: { plot: 2, until } }])
  const rec = chain.query('gardens', 'plot', { plot: 2 }) as { holder: Uint8Array; until: number }
  assert.equal(rec.holder, alice.publicKey)
  assert.is(chain.tx(alice, 'gardens', 'release', { plot: 2 }).code, null)
  assert.is(chain.query('gardens', 'plot', { plot: 2 }), null)
})

test('the documented errors: UNAUTHORIZED, NO_SUCH_PLOT, TAKEN, BAD_UNTIL, NOT_HOLDER, BAD_ARGS', () => {
  const { chain, steward, alice, bob } = setup(3)
  const until = chain.height + 20
  assert.is(
    chain.tx(alice, 'gardens', 'assign', { plot: 1, to: alice.publicKey, until }).code,
    'UNAUTHORIZED',
  )
  assert.is(
    chain.tx(steward, 'gardens', 'assign', { plot: 4, to: alice.publicKey, until }).code,
    'NO_SUCH_PLOT',
  )
  assert.is(
    chain.tx(steward, 'gardens', 'assign', { plot: 1, to: alice.publicKey, until: chain.height }).code,
    'BAD_UNTIL',
  )
  assert.is(chain.tx(steward, 'gardens', 'assign', { plot: 1, to: alice.publicKey, until }).code, null)
  assert.is(chain.tx(steward, 'gardens', 'assign', { plot: 1, to: bob.publicKey, until }).code, 'TAKEN')
  assert.is(chain.tx(bob, 'gardens', 'release', { plot: 1 }).code, 'NOT_HOLDER')
  assert.is(chain.tx(bob, 'gardens', 'release', { plot: 2 }).code, 'NO_SUCH_PLOT')
  assert.is(chain.tx(steward, 'gardens', 'assign', { plot: 0, to: bob.publicKey, until }).code, 'BAD_ARGS')
  assert.is(chain.tx(steward, 'gardens', 'assign', { plot: 2, to: bob.publicKey }).code, 'BAD_ARGS')
})

test('the end-of-block hook frees a plot at its until height, not a re-assigned one', () => {
  const { chain, steward, alice, bob } = setup()
  const until = chain.height + 4
  assert.is(chain.tx(steward, 'gardens', 'assign', { plot: 1, to: alice.publicKey, until }).code, null)
  assert.is(chain.tx(steward, 'gardens', 'assign', { plot: 3, to: alice.publicKey, until }).code, null)
  // Plot 3 goes back early and to bob for longer: its old queue entry must not free it.
  assert.is(chain.tx(alice, 'gardens', 'release', { plot: 3 }).code, null)
  assert.is(
    chain.tx(steward, 'gardens', 'assign', { plot: 3, to: bob.publicKey, until: until + 6 }).code,
    null,
  )
  assert.is(chain.height, until)
  assert.equal(chain.lastBlockEvents(), [{ service: 'gardens', name: 'expired', data: { plot: 1 } }])
  assert.is(chain.query('gardens', 'plot', { plot: 1 }), null)
  assert.equal((chain.query('gardens', 'plot', { plot: 3 }) as { holder: Uint8Array }).holder, bob.publicKey)
  assert.is(
    chain.tx(steward, 'gardens', 'assign', { plot: 1, to: bob.publicKey, until: chain.height + 5 }).code,
    null,
  )
})

test('a bad genesis config is refused', () => {
  assert.throws(
    () =>
      createRuntime({ services: [...baseServices, gardens] }).genesis(
        { get: () => undefined },
        { gardens: { plots: 0 } },
        0,
      ),
    /gardens genesis/,
  )
})

test(`random assign/release sequences keep at most one holder per plot and free every plot on time (seed ${testSeed(7)})`, () => {
  const rng = new Rng(testSeed(7))
  const { chain, steward } = setup(4)
  const people = ['p0', 'p1', 'p2'].map((l) => chain.keys(l))
  const model = new Map<number, { holder: number; until: number }>()
  for (let i = 0; i < 150; i++) {
    const plot = rng.range(1, 4)
    const who = rng.int(people.length)
    const height = chain.height + 1
    let expectOk: boolean
    let r: TxResult
    if (rng.chance(0.6)) {
      const until = height + rng.range(0, 6)
      expectOk = !model.has(plot) && until > height
      r = chain.tx(steward, 'gardens', 'assign', { plot, to: people[who]!.publicKey, until })
      if (expectOk) model.set(plot, { holder: who, until })
    } else {
      expectOk = model.get(plot)?.holder === who
      r = chain.tx(people[who]!, 'gardens', 'release', { plot })
      if (expectOk) model.delete(plot)
    }
    assert.is(r.code === null, expectOk, `seed ${rng.seed} step ${i}: ${r.code} ${r.message ?? ''}`)
    for (const [p, m] of model) if (m.until === chain.height) model.delete(p)
    for (let p = 1; p <= 4; p++) {
      const rec = chain.query('gardens', 'plot', { plot: p }) as { holder: Uint8Array } | null
      assert.is(rec === null, !model.has(p), `seed ${rng.seed} step ${i}: plot ${p}`)
    }
  }
})

test('the README shows examples/gardens.ts as it is', () => {
  const root = join(import.meta.dirname, '..')
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  assert.ok(
    readme.includes(readFileSync(join(root, 'examples/gardens.ts'), 'utf8')),
    'README example is out of date: paste examples/gardens.ts again',
  )
})

test('the README method index and the reference documents name every method of every shipped service', () => {
  const root = join(import.meta.dirname, '..')
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const docs = ['docs/base-services.md', 'docs/seoul-a.md', 'docs/seoul-b.md']
    .map((f) => readFileSync(join(root, f), 'utf8'))
    .join('\n')
  for (const svc of allServices) {
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${svc.name}\` | `) && !l.includes('.md'))
    assert.ok(row, `README method index has a row for ${svc.name}`)
    const listed = row
      .split('|')[2]!
      .split(',')
      .map((m) => m.trim())
    assert.equal(
      [...listed].sort(),
      Object.keys(svc.methods).sort(),
      `README method index row of ${svc.name}`,
    )
    for (const m of Object.keys(svc.methods)) {
      // A reference table row: "| m |", "| `m` |" or "| a / m / b |".
      const inTable = new RegExp(`\\|\\s*(?:\`?\\w+\`?\\s*/\\s*)*\`?${m}\`?\\s*[|/]`)
      assert.ok(inTable.test(docs), `${svc.name}.${m} has a row in docs/*.md`)
    }
  }
})

// Last: it hardens this process (lockdown) to load the example as validators do.
test('the example loads and runs in the SES sandbox, as validator processes run services', () => {
  const [sandboxed] = loadServiceModules([join(import.meta.dirname, '../examples/gardens.ts')])
  assert.is(sandboxed?.name, 'gardens')
  const keys = createTestChain({ services: [] })
  const city = keys.keys('city')
  const chain = createTestChain({
    services: [...baseServices, sandboxed!],
    genesis: { identity: { admins: [{ key: city.publicKey, scopes: ['*'] }] }, gardens: { plots: 3 } },
  })
  const steward = chain.keys('steward')
  assert.is(
    chain.tx(city, 'identity', 'grantRole', { scope: 'gardens', role: 'steward', key: steward.publicKey })
      .code,
    null,
  )
  const until = chain.height + 3
  const r = chain.tx(steward, 'gardens', 'assign', { plot: 1, to: chain.keys('alice').publicKey, until })
  assert.is(r.code, null, r.message)
  assert.is(
    chain.tx(steward, 'gardens', 'assign', { plot: 4, to: steward.publicKey, until }).code,
    'NO_SUCH_PLOT',
  )
  const events = chain.advance(3).filter((e) => e.service === 'gardens')
  assert.equal(events, [{ service: 'gardens', name: 'expired', data: { plot: 1 } }])
})

test.run()
