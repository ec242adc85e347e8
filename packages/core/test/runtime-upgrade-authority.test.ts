// Upgrades agreed on chain (issue #13 item 6): the service genesis names `_sys.upgradeAuthority` (the
// governance service) gets `ctx.scheduleUpgrade` in its transactions, and what it schedules stops a
// node without that version at the height and migrates a node with it, as a genesis-scheduled upgrade
// does. No other service gets the capability; a failed tx schedules nothing.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type ServiceDefinition, type Value, defineService, s } from '@cityledger/core'
import { refusal } from './helpers/refusal.ts'
import { runtimeChain } from './helpers/runtimeChain.ts'

const counter = (version: string) =>
  defineService({
    name: 'counter',
    version,
    methods: { noop: { args: s.object({}), handler() {} } },
    migrate(ctx, from) {
      ctx.state.set('migratedFrom', from ?? null)
    },
  })

/** A service that schedules whatever it is asked to (the rules are governance's, not the runtime's). */
const board = (name: string) =>
  defineService({
    name,
    version: '1.0.0',
    methods: {
      schedule: {
        args: s.object({
          service: s.string({ max: 100 }),
          version: s.string({ max: 100 }),
          height: s.uint(),
        }),
        handler(ctx, a) {
          if (!ctx.scheduleUpgrade) throw new Error('no scheduleUpgrade in this context')
          ctx.scheduleUpgrade(a.service, a.version, a.height)
        },
      },
    },
  })

const chain = (genesis: Record<string, Value | undefined>, code: ServiceDefinition[]) =>
  runtimeChain(genesis, code, 'upgrade-authority')

test('the authority schedules an upgrade: old code stops at its height, new code migrates and goes on', () => {
  const old = [counter('1.0.0'), board('gov')]
  const next = [counter('2.0.0'), board('gov')]
  const c = chain({ _sys: { upgradeAuthority: 'gov' } }, old)
  assert.is(c.get('_sys/upgradeAuthority'), 'gov')
  const r = c.next(old, [c.tx('gov', 'schedule', { service: 'counter', version: '2.0.0', height: 4 })])
  assert.is(r.results[0]!.code, null, r.results[0]!.message)
  assert.equal(c.get('_sys/upgrade/counter'), { version: '2.0.0', height: 4 })
  c.next(old)
  c.next(old)
  const stop = refusal(() => c.next(old))
  assert.is(stop.code, 'SERVICE_UPGRADE_REQUIRED')
  assert.match(stop.message, /install counter 2\.0\.0 and restart/)
  assert.is(c.height, 3, 'block 4 not committed by the old code')
  const out = c.next(next)
  assert.is(c.get('_sys/version/counter'), '2.0.0')
  assert.is(c.get('counter/migratedFrom'), '1.0.0')
  assert.ok(out.blockEvents.some((e) => e.name === 'serviceUpgraded'))
})

test('only the authority has scheduleUpgrade; bad requests and failed txs schedule nothing', () => {
  const code = [counter('1.0.0'), board('gov'), board('other')]
  const c = chain({ _sys: { upgradeAuthority: 'gov' } }, code)
  const ask = (svc: string, a: Record<string, Value>) =>
    c.next(code, [c.tx(svc, 'schedule', { service: 'counter', version: '2.0.0', height: 50, ...a })])
      .results[0]!
  assert.match(ask('other', {}).message ?? '', /no scheduleUpgrade/)
  assert.is(ask('gov', { height: 2 }).code !== null, true, 'a height not above the block')
  assert.is(ask('gov', { service: 'Bad/Name' }).code !== null, true, 'not a service name')
  assert.is(ask('gov', { version: '' }).code !== null, true, 'empty version')
  assert.is(c.get('_sys/upgrade/counter'), undefined, 'nothing scheduled by the refused ones')
  assert.is(ask('gov', {}).code, null)
  const again = ask('gov', { height: 60 })
  assert.match(again.message ?? '', /already upgrades to 2\.0\.0 at height 50/)
  assert.equal(c.get('_sys/upgrade/counter'), { version: '2.0.0', height: 50 })
  // A service this code does not run keeps its record past the height (nothing applies it); once past,
  // the next upgrade of it replaces the record instead of being refused as pending.
  const h = c.height
  assert.is(ask('gov', { service: 'ghost', height: h + 2 }).code, null)
  c.next(code)
  c.next(code)
  assert.is(ask('gov', { service: 'ghost', version: '3.0.0', height: h + 9 }).code, null, 'after the height')
  assert.equal(c.get('_sys/upgrade/ghost'), { version: '3.0.0', height: h + 9 })
  // Without `_sys.upgradeAuthority` no service has it.
  const none = chain({}, code)
  const r = none.next(code, [none.tx('gov', 'schedule', { service: 'counter', version: '2.0.0', height: 9 })])
  assert.match(r.results[0]!.message ?? '', /no scheduleUpgrade/)
  // Genesis refuses an authority that is not one of its services.
  assert.throws(() => chain({ _sys: { upgradeAuthority: 'nobody' } }, code), /upgradeAuthority/)
})

test.run()
