import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ServiceError, type Value, defineService, ensure, generateKeyPair, s, toHex } from '@cityledger/core'
import { createTestChain, seedFor } from '@cityledger/core/testing'

const bank = defineService({
  name: 'bank',
  version: '1.0.0',
  methods: {
    deposit: {
      args: s.object({ amount: s.uint({ min: 1, max: 1_000_000 }) }),
      handler(ctx, { amount }) {
        const key = `bal/${ctx.signerHex}`
        ctx.state.set(key, (ctx.state.get<number>(key) ?? 0) + amount)
        ctx.emit('deposited', { amount })
      },
    },
    withdraw: {
      args: s.object({ amount: s.uint({ min: 1 }) }),
      handler(ctx, { amount }) {
        const key = `bal/${ctx.signerHex}`
        const bal = ctx.state.get<number>(key) ?? 0
        ctx.state.set(key, bal - amount) // written before the check: must be rolled back on failure
        ctx.emit('withdrawn', { amount })
        ensure(bal >= amount, 'INSUFFICIENT_FUNDS', `balance ${bal} < ${amount}`)
      },
    },
    adminOnly: {
      args: s.object({}),
      auth: (ctx) => ctx.signerHex === ctx.state.get<string>('admin'),
      handler(ctx) {
        ctx.state.set('touched', true)
      },
    },
    mutate: {
      args: s.object({ fail: s.bool() }),
      handler(ctx, { fail }) {
        const rec = ctx.state.get<{ n: number }>('rec') ?? { n: 0 }
        rec.n += 1 // in place, before any set: must not leak if the tx fails
        if (fail) ensure(false, 'NOPE', 'asked to fail')
        ctx.state.set('rec', rec)
      },
    },
    float: {
      args: s.object({ where: s.literal('state', 'event') }),
      handler(ctx, { where }) {
        if (where === 'state') ctx.state.set('f', 0.5 as unknown as Value)
        else ctx.emit('f', { x: 0.5 as unknown as Value })
      },
    },
    buggy: {
      args: s.object({}),
      handler: () => {
        throw new TypeError('oops')
      },
    },
    clock: {
      args: s.object({}),
      handler: (ctx) => {
        ctx.state.set('t', Date.now())
      },
    },
    spam: {
      args: s.object({ n: s.uint() }),
      handler(ctx, { n }) {
        for (let i = 0; i < n; i++) ctx.state.set(`k${i}`, i)
      },
    },
  },
  exports: {
    credit(ctx, args: { to: string; amount: number }) {
      if (ctx.caller !== 'shop') throw new ServiceError('UNAUTHORIZED', 'only the shop credits')
      const key = `bal/${args.to}`
      ctx.state.set(key, (ctx.state.get<number>(key) ?? 0) + args.amount)
      ensure(args.amount > 0, 'BAD_AMOUNT', 'credit must be positive') // after the write, on purpose
    },
  },
  queries: {
    balance: {
      args: s.object({ who: s.key() }),
      handler: (q, { who }) => q.state.get<number>(`bal/${toHex(who)}`) ?? 0,
    },
  },
  genesis(ctx, config) {
    ctx.state.set('admin', (config as { admin: string }).admin)
  },
})

const shop = defineService({
  name: 'shop',
  version: '1.0.0',
  dependencies: ['bank'],
  methods: {
    refund: {
      args: s.object({ amount: s.uint(), failAfter: s.bool() }),
      handler(ctx, { amount, failAfter }) {
        ctx.call('bank', 'credit', { to: ctx.signerHex, amount })
        ctx.state.set('refunds', (ctx.state.get<number>('refunds') ?? 0) + 1)
        ensure(!failAfter, 'REFUND_FAILED', 'asked to fail')
      },
    },
    tryCredit: {
      args: s.object({}),
      handler(ctx) {
        try {
          ctx.call('bank', 'credit', { to: 'x', amount: -1 as unknown as Value })
        } catch {
          ctx.state.set('caught', true)
        }
      },
    },
  },
  endBlock(ctx) {
    ctx.state.set('lastHeight', ctx.height)
  },
})

test('writes of a failed tx are discarded, its nonce is consumed, events dropped', () => {
  const c = createTestChain({
    services: [bank, shop],
    genesis: { bank: { admin: 'nobody' } },
    onBug: () => {},
  })
  const alice = c.keys('alice')
  assert.is(c.tx(alice, 'bank', 'deposit', { amount: 10 }).code, null)
  const r = c.tx(alice, 'bank', 'withdraw', { amount: 11 })
  assert.is(r.code, 'INSUFFICIENT_FUNDS')
  assert.equal(r.events, [])
  assert.is(c.query('bank', 'balance', { who: alice.publicKey }), 10)
  assert.is(c.state().get(`_sys/nonce/${toHex(alice.publicKey)}`), 2)
  const ok = c.tx(alice, 'bank', 'withdraw', { amount: 4 })
  assert.is(ok.code, null)
  assert.equal(ok.events, [{ service: 'bank', name: 'withdrawn', data: { amount: 4 } }])
  assert.is(c.query('bank', 'balance', { who: alice.publicKey }), 6)
})

test('a failed tx that edited a value it read in place leaves no trace (regression)', () => {
  const c = createTestChain({ services: [bank, shop], genesis: { bank: { admin: 'x' } }, onBug: () => {} })
  const k = c.keys('mutator')
  const rs = c.block([
    { key: k, service: 'bank', method: 'mutate', args: { fail: false } },
    { key: k, service: 'bank', method: 'mutate', args: { fail: true } },
  ])
  assert.is(rs[0]!.code, null)
  assert.ok(rs[1]!.code !== null, 'editing a value read back from this block fails the tx')
  assert.equal(c.state().get('bank/rec'), { n: 1 })
})

test('a block of more than 512 txs executes (regression: the block layer had per-tx write limits)', () => {
  const c = createTestChain({ services: [bank, shop], genesis: { bank: { admin: 'x' } } })
  const calls = Array.from({ length: 600 }, (_, i) => ({
    key: c.keys(`many-${i}`),
    service: 'bank',
    method: 'deposit',
    args: { amount: 1 },
  }))
  const rs = c.block(calls)
  assert.is(rs.filter((r) => r.code === null).length, 600)
})

test('a float written to state or an event fails that tx only (it could not be stored and read back)', () => {
  const c = createTestChain({ services: [bank, shop], genesis: { bank: { admin: 'x' } }, onBug: () => {} })
  const k = c.keys('floater')
  const rs = c.block([
    { key: k, service: 'bank', method: 'float', args: { where: 'state' } },
    { key: k, service: 'bank', method: 'float', args: { where: 'event' } },
    { key: k, service: 'bank', method: 'deposit', args: { amount: 2 } },
  ])
  assert.equal(
    rs.map((r) => r.code),
    ['INTERNAL', 'INTERNAL', null],
  )
  assert.not.ok(c.state().has('bank/f'))
})

test('bad args, unknown service and method, unauthorised signer, bugs', () => {
  const c = createTestChain({
    services: [bank, shop],
    genesis: { bank: { admin: 'nobody' } },
    onBug: () => {},
  })
  const bob = c.keys('bob')
  assert.is(c.tx(bob, 'bank', 'deposit', { amount: 0 }).code, 'BAD_ARGS')
  assert.is(c.tx(bob, 'bank', 'deposit', { amount: 1, extra: 1 }).code, 'BAD_ARGS')
  assert.is(c.tx(bob, 'nope', 'deposit', {}).code, 'UNKNOWN_SERVICE')
  assert.is(c.tx(bob, 'bank', 'toString', {}).code, 'UNKNOWN_METHOD')
  assert.is(c.tx(bob, 'bank', 'adminOnly', {}).code, 'UNAUTHORIZED')
  assert.is(c.tx(bob, 'bank', 'buggy', {}).code, 'INTERNAL')
  assert.is(c.tx(bob, 'bank', 'clock', {}).code, 'INTERNAL')
  assert.ok(Date.now() > 0, 'clock restored after execution')
  assert.is(c.tx(bob, 'bank', 'spam', { n: 10_000 }).code, 'RESOURCE_LIMIT')
  assert.not.ok(c.state().has('bank/k0'))
})

test('the admin named at genesis is authorised', () => {
  const admin = generateKeyPair(seedFor('admin'))
  const c = createTestChain({ services: [bank, shop], genesis: { bank: { admin: toHex(admin.publicKey) } } })
  assert.is(c.tx(admin, 'bank', 'adminOnly', {}).code, null)
  assert.is(c.state().get('bank/touched'), true)
})

test('cross-service calls: caller identity, rollback of the whole tx, savepoint when caught', () => {
  const c = createTestChain({ services: [bank, shop], genesis: { bank: { admin: 'x' } }, onBug: () => {} })
  const carol = c.keys('carol')
  assert.is(c.tx(carol, 'shop', 'refund', { amount: 5, failAfter: false }).code, null)
  assert.is(c.query('bank', 'balance', { who: carol.publicKey }), 5)
  assert.is(c.tx(carol, 'shop', 'refund', { amount: 5, failAfter: true }).code, 'REFUND_FAILED')
  assert.is(c.query('bank', 'balance', { who: carol.publicKey }), 5)
  assert.is(c.tx(carol, 'shop', 'tryCredit', {}).code, null)
  assert.is(c.state().get('shop/caught'), true)
  assert.not.ok(c.state().has('bank/bal/x'))
  // bank.credit refuses direct callers other than the shop: a tx cannot reach exports at all
  assert.is(c.tx(carol, 'bank', 'credit', { to: 'x', amount: 1 }).code, 'UNKNOWN_METHOD')
})

test('end-of-block hooks run every block; reads see earlier writes of the same block', () => {
  const c = createTestChain({ services: [bank, shop], genesis: { bank: { admin: 'x' } } })
  const d = c.keys('dave')
  const rs = c.block([
    { key: d, service: 'bank', method: 'deposit', args: { amount: 3 } },
    { key: d, service: 'bank', method: 'withdraw', args: { amount: 3 } },
  ])
  assert.equal(
    rs.map((r) => r.code),
    [null, null],
  )
  c.advance(3)
  assert.is(c.state().get('shop/lastHeight'), c.height)
})

test('a genesis hook that throws names its service', () => {
  assert.throws(() => createTestChain({ services: [bank, shop], genesis: {} }), /genesis of bank/)
})

test('dependency cycles and unknown dependencies are refused', () => {
  const a = defineService({ name: 'a', version: '1', dependencies: ['b'], methods: {} })
  const b = defineService({ name: 'b', version: '1', dependencies: ['a'], methods: {} })
  assert.throws(() => createTestChain({ services: [a, b] }), /cycle/)
  assert.throws(() => createTestChain({ services: [a] }), /unknown service/)
})

test('queries report the keys they read, for proofs', () => {
  const c = createTestChain({ services: [bank, shop], genesis: { bank: { admin: 'x' } } })
  const e = c.keys('erin')
  c.tx(e, 'bank', 'deposit', { amount: 9 })
  const q = c.runtime.query(
    { get: (k) => c.raw().get(toHex(k)) },
    c.height,
    'bank',
    'balance',
    { who: toHex(e.publicKey) },
    true,
  )
  assert.is(q.value, 9)
  assert.equal(
    q.keys.map((k) => Buffer.from(k).toString()),
    [`bank/bal/${toHex(e.publicKey)}`],
  )
  assert.throws(() => c.runtime.query({ get: () => undefined }, 1, 'bank', 'nope', {}), /no query/)
})

test.run()
