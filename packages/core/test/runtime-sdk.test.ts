import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  type Infer,
  type Value,
  callExport,
  deadlinePassed,
  defineExport,
  defineService,
  isCityError,
  method,
  s,
} from '@cityledger/core'
import { createTestChain } from '@cityledger/core/testing'

// The typed SDK. The `@ts-expect-error` lines are checked by `tsc --noEmit` (the workspace type check):
// each must be an error, or tsc fails with "unused @ts-expect-error".

const payArgs = s.object({ to: s.key(), amount: s.uint({ min: 1 }), memo: s.optional(s.string()) })

export const ledger = defineService({
  name: 'ledger',
  version: '1.0.0',
  methods: {
    pay: {
      args: payArgs,
      auth: (_ctx, a) => a.amount < 1000,
      handler(ctx, { to, amount, memo }) {
        const n: number = amount
        const k: Uint8Array = to
        const m: string | undefined = memo
        ctx.state.set(`bal/${k.length}`, n)
        if (m !== undefined) ctx.emit('memo', { m })
      },
    },
    typo: {
      args: s.object({ amount: s.uint() }),
      // @ts-expect-error a misspelt argument name is a type error
      handler(_ctx, { amout }) {
        void amout
      },
    },
    wrongType: {
      args: s.object({ amount: s.uint() }),
      handler(_ctx, a) {
        // @ts-expect-error amount is a number, not a string
        const t: string = a.amount
        void t
      },
    },
    viaHelper: method({
      args: s.object({ who: s.key() }),
      handler(ctx, a) {
        ctx.state.set('who', a.who)
      },
    }),
  },
  queries: {
    balance: {
      args: s.object({ of: s.uint() }),
      handler: (q, a) => q.state.get<number>(`bal/${a.of}`) ?? 0,
    },
  },
  exports: {
    balanceOf: defineExport(
      s.object({ of: s.uint() }),
      (ctx, a): number => ctx.state.get<number>(`bal/${a.of}`) ?? 0,
    ),
  },
})

export const reader = defineService({
  name: 'reader',
  version: '1.0.0',
  dependencies: ['ledger'],
  methods: {
    look: {
      args: s.object({}),
      handler(ctx) {
        const n: number = callExport<typeof ledger>(ctx, 'ledger', 'balanceOf', { of: 32 })
        ctx.emit('saw', { n })
        if (n < 0) {
          // @ts-expect-error no export of that name
          callExport<typeof ledger>(ctx, 'ledger', 'balanceOff', { of: 32 })
          // @ts-expect-error wrong argument type
          callExport<typeof ledger>(ctx, 'ledger', 'balanceOf', { of: 'x' })
        }
      },
    },
  },
})

test('inferred handlers run; typed exports call through', () => {
  const c = createTestChain({ services: [ledger, reader] })
  const k = c.keys('a')
  assert.is(c.tx(k, 'ledger', 'pay', { to: k.publicKey, amount: 7 }).code, null)
  assert.is(c.tx(k, 'ledger', 'pay', { to: k.publicKey, amount: 7000 }).code, 'UNAUTHORIZED')
  const r = c.tx(k, 'reader', 'look', {})
  assert.equal(r.events[0]!.data, { n: 7 })
  // Exports parse their args: a bad one fails the calling tx with BAD_ARGS.
  assert.is(c.query('ledger', 'balance', { of: 32 }), 7)
})

const parseErr = (f: () => unknown): string => {
  try {
    f()
  } catch (err) {
    if (isCityError(err)) return err.code
    throw err
  }
  return 'ok'
}

test('optional means absent, nullable means null; neither stands for the other', () => {
  const o = s.object({ a: s.optional(s.uint()), b: s.nullable(s.uint()) })
  const t: Infer<typeof o> = { b: null }
  assert.equal(o.parse(t as Value), { b: null })
  assert.equal(o.parse({ a: 1, b: 2 }), { a: 1, b: 2 })
  assert.is(
    parseErr(() => o.parse({ a: null, b: 1 })),
    'BAD_ARGS',
  )
  assert.is(
    parseErr(() => o.parse({})),
    'BAD_ARGS',
    'b is required (null or a uint)',
  )
  const both = s.optional(s.nullable(s.uint()))
  assert.is(both.parse(undefined), undefined)
  assert.is(both.parse(null), null)
})

test('unions, tagged variants and records', () => {
  const u = s.union(s.uint(), s.string({ max: 3 }))
  const x: number | string = u.parse('abc')
  assert.is(x, 'abc')
  assert.is(u.parse(5), 5)
  assert.is(
    parseErr(() => u.parse('abcd')),
    'BAD_ARGS',
  )
  const v = s.variant('kind', { cash: { amount: s.uint() }, card: { last4: s.string({ min: 4, max: 4 }) } })
  const p = v.parse({ kind: 'card', last4: '1234' })
  if (p.kind === 'card') assert.is(p.last4, '1234')
  else assert.unreachable('variant')
  assert.is(
    parseErr(() => v.parse({ kind: 'cheque' })),
    'BAD_ARGS',
  )
  assert.is(
    parseErr(() => v.parse({ kind: 'cash', last4: '1234' })),
    'BAD_ARGS',
    'fields of another variant',
  )
  const r = s.record(s.string({ min: 1, max: 9, pattern: /^[a-z_]+$/ }), s.uint(), { max: 2 })
  const rec: Record<string, number> = r.parse({ a: 1, b: 2 })
  assert.equal(rec, { a: 1, b: 2 })
  assert.is(
    parseErr(() => r.parse({ a: 1, b: 2, c: 3 })),
    'BAD_ARGS',
  )
  assert.is(
    parseErr(() => r.parse({ A: 1 })),
    'BAD_ARGS',
  )
  const proto = r.parse(JSON.parse('{"__proto__": 1}') as Value)
  assert.is(Object.getPrototypeOf(proto), Object.prototype, 'a __proto__ key is a plain field')
})

test('deadlines by height, by block time, or both (whichever first)', () => {
  const d = s.deadline()
  assert.is(
    parseErr(() => d.parse({})),
    'BAD_ARGS',
  )
  const both = d.parse({ height: 10, time: 5000 })
  assert.is(deadlinePassed({ height: 9, time: 4999 }, both), false)
  assert.is(deadlinePassed({ height: 10, time: 0 }, both), true)
  assert.is(deadlinePassed({ height: 1, time: 5000 }, both), true)
  assert.is(deadlinePassed({ height: 1_000_000, time: 0 }, d.parse({ time: 5000 })), false)
})

test('a deadline by date is met by the block time of a test chain', () => {
  const svc = defineService({
    name: 'dl',
    version: '1.0.0',
    methods: {
      set: {
        args: s.object({ until: s.deadline() }),
        handler(ctx, { until }) {
          ctx.state.set('until', until)
        },
      },
      check: {
        args: s.object({}),
        handler(ctx) {
          const until = ctx.state.get<{ height?: number; time?: number }>('until')!
          ctx.emit('passed', { passed: deadlinePassed(ctx, until) })
        },
      },
    },
  })
  const c = createTestChain({ services: [svc], blockMs: 1000 })
  const k = c.keys('a')
  c.tx(k, 'dl', 'set', { until: { time: c.time + 3000 } })
  const seen = [1, 2, 3].map(() => (c.tx(k, 'dl', 'check', {}).events[0]!.data as { passed: boolean }).passed)
  // Set in the block at t0+1000 for t0+3000: the checks run at t0+2000, t0+3000 and t0+4000.
  assert.equal(seen, [false, true, true])
})

test.run()
