// Validator-set changes agreed on chain (issue #13 items 2-3): the service genesis names
// `_sys.validatorAuthority` (governance) gets `ctx.scheduleValidators` in its transactions; the runtime
// records each change (`_sys/validators/<seq>`: the height asked for, the block that executed it, the
// whole set) for consensus to follow. No other service gets it; bad sets, heights out of order and
// failed txs record nothing.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type Value, createRuntime, defineService, generateKeyPair, s } from '@cityledger/core'
import { seedFor } from '@cityledger/core/testing'
import { runtimeChain } from './helpers/runtimeChain.ts'

/** A service that records whatever set it is asked to (the rules are governance's, not the runtime's). */
const board = (name: string) =>
  defineService({
    name,
    version: '1.0.0',
    methods: {
      schedule: {
        args: s.object({
          keys: s.array(s.bytes(undefined, { max: 64 }), { max: 200 }),
          height: s.uint(),
          fail: s.bool(),
        }),
        handler(ctx, a) {
          if (!ctx.scheduleValidators) throw new Error('no scheduleValidators in this context')
          ctx.scheduleValidators(a.keys, a.height)
          if (a.fail) throw new Error('fails after scheduling')
        },
      },
    },
  })

const code = [board('gov'), board('other')]
const keys = (n: number, tag = 'v') =>
  Array.from({ length: n }, (_, i) => generateKeyPair(seedFor(`${tag}-${i}`)).publicKey)
const changes = (c: ReturnType<typeof runtimeChain>) =>
  createRuntime({ services: code }).validatorChanges(c.reader)

test('the authority records validator-set changes, in order, with the height that executed them', () => {
  const c = runtimeChain({ _sys: { validatorAuthority: 'gov' } }, code, 'validator-authority')
  assert.is(c.get('_sys/validatorAuthority'), 'gov')
  assert.equal(changes(c), [])
  const five = keys(5)
  const ask = (svc: string, a: Record<string, Value>) =>
    c.next(code, [c.tx(svc, 'schedule', { keys: five, height: 40, fail: false, ...a })]).results[0]!
  assert.is(ask('gov', {}).code, null)
  const first = changes(c)
  assert.equal(
    first.map((x) => [x.seq, x.height, x.executedAt, x.keys.length]),
    [[1, 40, 1, 5]],
  )
  assert.equal(first[0]!.keys, five)
  const four = keys(4, 'w')
  assert.is(ask('gov', { keys: four, height: 60 }).code, null)
  assert.equal(
    changes(c).map((x) => [x.seq, x.height, x.executedAt]),
    [
      [1, 40, 1],
      [2, 60, 2],
    ],
  )
  assert.equal(
    createRuntime({ services: code })
      .validatorChanges(c.reader, 1)
      .map((x) => x.seq),
    [2],
  )
})

test('only the authority has scheduleValidators; bad sets, heights and failed txs record nothing', () => {
  const c = runtimeChain({ _sys: { validatorAuthority: 'gov' } }, code, 'validator-authority-2')
  const ask = (svc: string, a: Record<string, Value>) =>
    c.next(code, [c.tx(svc, 'schedule', { keys: keys(4), height: 50, fail: false, ...a })]).results[0]!
  assert.match(ask('other', {}).message ?? '', /no scheduleValidators/)
  const refused = (a: Record<string, Value>, why: RegExp) => {
    const r = ask('gov', a)
    assert.is(r.code, 'BAD_VALIDATORS', JSON.stringify(a))
    assert.match(r.message ?? '', why)
  }
  refused({ keys: [] }, /1 to 128/)
  refused({ keys: keys(129) }, /1 to 128/)
  refused({ keys: [...keys(3), keys(1)[0]!] }, /listed twice/)
  refused({ keys: [new Uint8Array(31)] }, /32 bytes/)
  refused({ height: 1 }, /above/)
  assert.match(ask('gov', { fail: true }).message ?? '', /fails after scheduling/)
  assert.equal(changes(c), [], 'nothing recorded by the refused or failed ones')
  assert.is(ask('gov', {}).code, null)
  refused({ height: 50 }, /in order, after the last one \(50\)/)
  assert.is(changes(c).length, 1)
  // Without `_sys.validatorAuthority` no service has it; genesis refuses an unknown authority.
  const none = runtimeChain({}, code, 'validator-authority-3')
  const r = none.next(code, [none.tx('gov', 'schedule', { keys: keys(4), height: 9, fail: false })])
  assert.match(r.results[0]!.message ?? '', /no scheduleValidators/)
  assert.throws(
    () => runtimeChain({ _sys: { validatorAuthority: 'nobody' } }, code, 'x'),
    /validatorAuthority/,
  )
})

test.run()
