import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type KeyPair, type TxResult, type Value, generateKeyPair, sha256, utf8 } from '@cityledger/core'
import { Rng, createTestChain, seedFor, testSeed } from '@cityledger/core/testing'
import { baseServices } from '../src/base/index.ts'
import { MAX_FUNDINGS, subcontract } from '../src/seoul/index.ts'

const SEED = testSeed(20261207)

const k = (label: string): KeyPair => generateKeyPair(seedFor(label))
const key = (label: string) => k(label).publicKey
const h = (label: string | number) => sha256(utf8.encode(`seoul-subcontract/${label}`))

/** The settlement asset as the token admin creates it in the first block (docs/seoul-b.md). */
const KRW = {
  asset: 'KRW',
  decimals: 0,
  policy: 'open',
  controllers: ['subcontract'],
  budgetPerPeriod: 0,
  periodBlocks: 1,
}

function expect(r: TxResult, code: string | null, what: string): void {
  assert.is(
    r.code,
    code,
    `${what}: expected ${code ?? 'success'}, got ${r.code ?? 'success'} (${r.message ?? ''})`,
  )
}

function setup(opts: { asset?: Record<string, Value> | null; clientFunds?: number } = {}) {
  const chain = createTestChain({
    services: [...baseServices, subcontract],
    genesis: {
      identity: {
        admins: [{ key: key('city'), scopes: ['*'] }],
        roles: [
          { scope: 'token', role: 'admin', key: key('city') },
          { scope: 'token', role: 'issuer:KRW', key: key('treasury') },
          { scope: 'subcontract', role: 'client', key: key('client') },
          { scope: 'subcontract', role: 'client', key: key('client-2') },
          { scope: 'subcontract', role: 'inspector', key: key('inspector') },
          { scope: 'subcontract', role: 'inspector', key: key('inspector-payee') },
        ],
      },
    },
  })
  if (opts.asset !== null)
    expect(chain.tx(k('city'), 'token', 'createAsset', opts.asset ?? KRW), null, 'createAsset')
  if (opts.asset === undefined) {
    expect(
      chain.tx(k('treasury'), 'token', 'mint', {
        asset: 'KRW',
        to: key('client'),
        amount: opts.clientFunds ?? 1_000_000,
      }),
      null,
      'mint',
    )
  }
  const tx = (who: string, method: string, args: Value) => chain.tx(k(who), 'subcontract', method, args)
  const q = (name: string, args: Value) => chain.query('subcontract', name, args) as any
  const bal = (who: string) => chain.query('token', 'balance', { asset: 'KRW', owner: key(who) }) as number
  const contract = (over: Record<string, Value> = {}) =>
    tx('client', 'createContract', {
      id: 'bridge',
      prime: key('prime'),
      asset: 'KRW',
      value: 100_000,
      terms: h('terms'),
      ...over,
    })
  /** Two milestones: the subcontractor and two workers share each one exactly. */
  const milestones = [
    {
      id: 'm1',
      amount: 30_000,
      payouts: [
        { to: key('sub'), amount: 20_000 },
        { to: key('worker-1'), amount: 6_000 },
        { to: key('worker-2'), amount: 4_000 },
      ],
    },
    {
      id: 'm2',
      amount: 20_000,
      payouts: [
        { to: key('sub'), amount: 15_000 },
        { to: key('worker-1'), amount: 5_000 },
      ],
    },
  ]
  const propose = (over: Record<string, Value> = {}) =>
    tx('prime', 'propose', {
      contract: 'bridge',
      sub: 'steel',
      subcontractor: key('sub'),
      terms: h('sub-terms'),
      milestones,
      ...over,
    })
  /** contract + proposal + co-signature + approval. */
  const active = () => {
    expect(contract(), null, 'createContract')
    expect(propose(), null, 'propose')
    expect(tx('sub', 'sign', { contract: 'bridge', sub: 'steel' }), null, 'sign')
    expect(tx('client', 'approve', { contract: 'bridge', sub: 'steel' }), null, 'approve')
  }
  return { chain, tx, q, bal, contract, propose, active, milestones }
}

test('createContract: a client agency, a settlement asset subcontract controls, a distinct prime', () => {
  const { tx, q, contract } = setup()
  expect(
    tx('prime', 'createContract', { id: 'x', prime: key('other'), asset: 'KRW', value: 1, terms: h(1) }),
    'UNAUTHORIZED',
    'no client role',
  )
  expect(contract({ asset: 'USD' }), 'BAD_ASSET', 'unknown asset')
  expect(contract({ prime: key('client') }), 'BAD_PARTY', 'client as prime')
  expect(contract({ value: 0 }), 'BAD_ARGS', 'zero value')
  expect(contract(), null, 'create')
  expect(contract(), 'ALREADY_EXISTS', 'same id')
  const c = q('contract', { contract: 'bridge' })
  assert.is(c.value, 100_000)
  assert.is(c.escrow, 0)
  assert.is(c.status, 'open')
  assert.equal(c.client, key('client'))
  assert.is(q('contract', { contract: 'nope' }), null)

  const other = setup({ asset: { ...KRW, controllers: ['agreement'] } })
  expect(other.contract(), 'BAD_ASSET', 'asset without subcontract as controller')
})

test('fund: the client only, up to the contract value, through token holds', () => {
  const { tx, q, bal, chain, contract } = setup({ clientFunds: 200_000 })
  expect(contract(), null, 'create')
  expect(tx('prime', 'fund', { contract: 'bridge', amount: 1 }), 'UNAUTHORIZED', 'prime funds')
  expect(tx('client-2', 'fund', { contract: 'bridge', amount: 1 }), 'UNAUTHORIZED', 'another client funds')
  expect(tx('client', 'fund', { contract: 'nope', amount: 1 }), 'NOT_FOUND', 'unknown contract')
  expect(tx('client', 'fund', { contract: 'bridge', amount: 60_000 }), null, 'fund')
  expect(tx('client', 'fund', { contract: 'bridge', amount: 40_001 }), 'OVERFUNDED', 'past the value')
  expect(tx('client', 'fund', { contract: 'bridge', amount: 40_000 }), null, 'fund to the value')
  assert.is(bal('client'), 100_000)
  const c = q('contract', { contract: 'bridge' })
  assert.is(c.escrowed, 100_000)
  assert.is(c.escrow, 100_000)
  assert.is(c.holds.length, 2)
  const hold = chain.query('token', 'hold', { owner: 'subcontract', holdId: 'subcontract/bridge/0' }) as any
  assert.is(hold.owner, 'subcontract')
  assert.is(hold.remaining, 60_000)

  const poor = setup({ clientFunds: 10 })
  expect(poor.contract(), null, 'create')
  expect(
    poor.tx('client', 'fund', { contract: 'bridge', amount: 11 }),
    'INSUFFICIENT_FUNDS',
    'more than the balance',
  )
  assert.is(poor.q('contract', { contract: 'bridge' }).escrowed, 0, 'a failed hold leaves nothing behind')
})

test('fund: at most MAX_FUNDINGS holds per contract', () => {
  const { tx, contract } = setup()
  expect(contract(), null, 'create')
  for (let i = 0; i < MAX_FUNDINGS; i++)
    expect(tx('client', 'fund', { contract: 'bridge', amount: 1 }), null, `fund ${i}`)
  expect(tx('client', 'fund', { contract: 'bridge', amount: 1 }), 'LIMIT', 'one more')
})

test('propose: the prime only; payout tables add up exactly; no self-dealing; within the contract value', () => {
  const { tx, q, contract, propose, milestones } = setup()
  expect(contract(), null, 'create')
  expect(
    tx('sub', 'propose', {
      contract: 'bridge',
      sub: 'steel',
      subcontractor: key('sub'),
      terms: h(1),
      milestones,
    }),
    'UNAUTHORIZED',
    'subcontractor proposes',
  )
  expect(
    tx('client', 'propose', {
      contract: 'bridge',
      sub: 'steel',
      subcontractor: key('sub'),
      terms: h(1),
      milestones,
    }),
    'UNAUTHORIZED',
    'client proposes',
  )
  const off = [
    {
      id: 'm1',
      amount: 10,
      payouts: [
        { to: key('sub'), amount: 6 },
        { to: key('worker-1'), amount: 3 },
      ],
    },
  ]
  expect(propose({ milestones: off }), 'PAYOUT_MISMATCH', 'payouts short by one')
  const over = [
    {
      id: 'm1',
      amount: 10,
      payouts: [
        { to: key('sub'), amount: 6 },
        { to: key('worker-1'), amount: 5 },
      ],
    },
  ]
  expect(propose({ milestones: over }), 'PAYOUT_MISMATCH', 'payouts over by one')
  expect(
    propose({ milestones: [milestones[0]!, milestones[0]!] }),
    'DUPLICATE_MILESTONE',
    'same milestone twice',
  )
  expect(propose({ milestones: [] }), 'BAD_ARGS', 'no milestones')
  expect(
    propose({ milestones: [{ id: 'm', amount: 0, payouts: [{ to: key('sub'), amount: 0 }] }] }),
    'BAD_ARGS',
    'zero amounts',
  )
  expect(propose({ subcontractor: key('prime') }), 'BAD_PARTY', 'prime as subcontractor')
  expect(propose({ subcontractor: key('client') }), 'BAD_PARTY', 'client as subcontractor')
  const big = [{ id: 'm1', amount: 100_001, payouts: [{ to: key('sub'), amount: 100_001 }] }]
  expect(propose({ milestones: big }), 'OVER_COMMITTED', 'more than the contract value')
  expect(propose(), null, 'propose')
  expect(propose(), 'ALREADY_EXISTS', 'same sub id')
  const r = q('subcontract', { contract: 'bridge', sub: 'steel' })
  assert.is(r.status, 'proposed')
  assert.is(r.total, 50_000)
  assert.is(r.primeSigned, true)
  assert.is(r.subcontractorSigned, false)
  assert.is(q('contract', { contract: 'bridge' }).committed, 0, 'nothing committed before approval')
})

test('sign and approve: the subcontractor co-signs, then the contract client approves', () => {
  const { tx, q, contract, propose } = setup()
  expect(contract(), null, 'create')
  expect(propose(), null, 'propose')
  const ref = { contract: 'bridge', sub: 'steel' }
  expect(tx('client', 'approve', ref), 'BAD_STATE', 'approve before the co-signature')
  expect(tx('prime', 'sign', ref), 'UNAUTHORIZED', 'prime co-signs')
  expect(tx('worker-1', 'sign', ref), 'UNAUTHORIZED', 'a worker co-signs')
  expect(tx('sub', 'sign', ref), null, 'co-sign')
  expect(tx('sub', 'sign', ref), 'BAD_STATE', 'co-sign twice')
  expect(tx('prime', 'approve', ref), 'UNAUTHORIZED', 'prime approves (no client role)')
  expect(tx('client-2', 'approve', ref), 'UNAUTHORIZED', "a client agency that is not this contract's")
  expect(
    tx('inspector', 'certify', { ...ref, milestone: 'm1', report: h('r') }),
    'BAD_STATE',
    'certify before approval',
  )
  expect(tx('client', 'approve', ref), null, 'approve')
  expect(tx('client', 'approve', ref), 'BAD_STATE', 'approve twice')
  expect(tx('prime', 'cancel', ref), 'BAD_STATE', 'withdraw after approval')
  assert.is(q('subcontract', ref).status, 'active')
  const c = q('contract', { contract: 'bridge' })
  assert.is(c.committed, 50_000)
  assert.is(c.open, 1)
})

test('approve: refused when the client agency lost its role', () => {
  const { tx, chain, contract, propose } = setup()
  expect(contract(), null, 'create')
  expect(propose(), null, 'propose')
  expect(tx('sub', 'sign', { contract: 'bridge', sub: 'steel' }), null, 'sign')
  expect(
    chain.tx(k('city'), 'identity', 'revokeRole', {
      scope: 'subcontract',
      role: 'client',
      key: key('client'),
    }),
    null,
    'revoke role',
  )
  expect(
    tx('client', 'approve', { contract: 'bridge', sub: 'steel' }),
    'UNAUTHORIZED',
    'approve without the role',
  )
})

test('approve: the committed total never exceeds the contract value', () => {
  const { tx, q, contract, propose } = setup()
  expect(contract({ value: 60_000 }), null, 'create')
  const one = (id: string, amount: number) => [{ id, amount, payouts: [{ to: key('sub'), amount }] }]
  expect(propose({ sub: 'a', milestones: one('m', 40_000) }), null, 'propose a')
  expect(propose({ sub: 'b', milestones: one('m', 30_000) }), null, 'propose b (fits alone)')
  for (const sub of ['a', 'b']) expect(tx('sub', 'sign', { contract: 'bridge', sub }), null, `sign ${sub}`)
  expect(tx('client', 'approve', { contract: 'bridge', sub: 'a' }), null, 'approve a')
  expect(
    tx('client', 'approve', { contract: 'bridge', sub: 'b' }),
    'OVER_COMMITTED',
    'b would pass the value',
  )
  expect(tx('client', 'cancel', { contract: 'bridge', sub: 'b' }), null, 'client withdraws b')
  expect(
    tx('client', 'approve', { contract: 'bridge', sub: 'b' }),
    'BAD_STATE',
    'a withdrawn sub is not approved',
  )
  assert.is(q('contract', { contract: 'bridge' }).committed, 40_000)
})

test('cancel: prime, subcontractor or client, before approval only', () => {
  const { tx, q, contract, propose } = setup()
  expect(contract(), null, 'create')
  expect(propose({ sub: 's1' }), null, 'propose')
  expect(tx('worker-1', 'cancel', { contract: 'bridge', sub: 's1' }), 'UNAUTHORIZED', 'a stranger withdraws')
  expect(tx('sub', 'cancel', { contract: 'bridge', sub: 's1' }), null, 'subcontractor declines')
  expect(tx('sub', 'sign', { contract: 'bridge', sub: 's1' }), 'BAD_STATE', 'sign a withdrawn sub')
  expect(tx('sub', 'cancel', { contract: 'bridge', sub: 's1' }), 'BAD_STATE', 'withdraw twice')
  expect(tx('prime', 'cancel', { contract: 'bridge', sub: 'nope' }), 'NOT_FOUND', 'unknown sub')
  assert.is(q('subcontract', { contract: 'bridge', sub: 's1' }).status, 'cancelled')
})

test('certify: an inspector, once per milestone, never a payee; pays the split directly', () => {
  const { tx, q, bal, chain, active } = setup()
  active()
  expect(tx('client', 'fund', { contract: 'bridge', amount: 50_000 }), null, 'fund')
  const cert = (who: string, milestone = 'm1') =>
    tx(who, 'certify', { contract: 'bridge', sub: 'steel', milestone, report: h(`report-${milestone}`) })
  expect(cert('prime'), 'UNAUTHORIZED', 'prime certifies')
  expect(cert('client'), 'UNAUTHORIZED', 'client certifies')
  // An inspector who is also a payee of the milestone is refused.
  expect(
    chain.tx(k('city'), 'identity', 'grantRole', {
      scope: 'subcontract',
      role: 'inspector',
      key: key('worker-1'),
    }),
    null,
    'grant worker inspector',
  )
  expect(cert('worker-1'), 'CONFLICT_OF_INTEREST', 'payee certifies')
  expect(cert('inspector', 'm9'), 'NOT_FOUND', 'unknown milestone')
  const r = cert('inspector')
  expect(r, null, 'certify m1')
  assert.ok(
    r.events.some((e) => e.service === 'subcontract' && e.name === 'paid'),
    'paid event',
  )
  assert.is(
    r.events.filter((e) => e.service === 'token' && e.name === 'release').length,
    3,
    'one release per payee',
  )
  assert.is(bal('sub'), 20_000)
  assert.is(bal('worker-1'), 6_000)
  assert.is(bal('worker-2'), 4_000)
  assert.is(bal('prime'), 0, 'the prime never holds the subcontractor money')
  expect(cert('inspector'), 'ALREADY_CERTIFIED', 'certify twice')
  expect(cert('inspector-payee'), 'ALREADY_CERTIFIED', 'another inspector certifies again')
  const m1 = q('subcontract', { contract: 'bridge', sub: 'steel' }).milestones[0]
  assert.is(m1.status, 'paid')
  assert.equal(m1.certifiedBy, key('inspector'))
  assert.equal(m1.report, h('report-m1'))
  const c = q('contract', { contract: 'bridge' })
  assert.is(c.released, 30_000)
  assert.is(c.escrow, 20_000)
  assert.equal(q('payee', { contract: 'bridge', key: key('worker-1') }), { paid: 6_000, pending: 5_000 })
})

test('the largest payment (16 payees spanning 16 holds) stays within the per-tx work limits', () => {
  const { tx, bal, contract } = setup()
  expect(contract(), null, 'create')
  for (let i = 0; i < MAX_FUNDINGS; i++)
    expect(tx('client', 'fund', { contract: 'bridge', amount: 100 }), null, `fund ${i}`)
  // Shares 50, 100 x 14, 150 straddle the 100-unit holds: 31 releases, the most a payment can need.
  const payouts = [50, ...Array.from({ length: 14 }, () => 100), 150].map((amount, i) => ({
    to: key(`w${i}`),
    amount,
  }))
  const milestones = [{ id: 'all', amount: 1_600, payouts }]
  expect(
    tx('prime', 'propose', {
      contract: 'bridge',
      sub: 'big',
      subcontractor: key('w0'),
      terms: h('big'),
      milestones,
    }),
    null,
    'propose',
  )
  expect(tx('w0', 'sign', { contract: 'bridge', sub: 'big' }), null, 'sign')
  expect(tx('client', 'approve', { contract: 'bridge', sub: 'big' }), null, 'approve')
  const r = tx('inspector', 'certify', { contract: 'bridge', sub: 'big', milestone: 'all', report: h('big') })
  expect(r, null, 'certify')
  assert.is(r.events.filter((e) => e.name === 'release').length, 31)
  for (let i = 0; i < 16; i++) assert.is(bal(`w${i}`), payouts[i]!.amount, `w${i}`)
})

test('certify without enough escrow: certified now, paid by settle once funded', () => {
  const { tx, q, bal, active } = setup()
  active()
  const ref = { contract: 'bridge', sub: 'steel' }
  expect(tx('client', 'fund', { contract: 'bridge', amount: 10_000 }), null, 'fund 10k')
  expect(tx('anyone', 'settle', { ...ref, milestone: 'm1' }), 'NOT_CERTIFIED', 'settle before certification')
  const r = tx('inspector', 'certify', { ...ref, milestone: 'm1', report: h('r1') })
  expect(r, null, 'certify m1')
  assert.not.ok(
    r.events.some((e) => e.name === 'paid'),
    'no payment yet',
  )
  assert.is(q('subcontract', ref).milestones[0].status, 'certified')
  assert.is(q('contract', { contract: 'bridge' }).released, 0)
  expect(tx('anyone', 'settle', { ...ref, milestone: 'm1' }), 'INSUFFICIENT_ESCROW', 'settle short')
  // Two fundings: the shares span both holds.
  expect(tx('client', 'fund', { contract: 'bridge', amount: 25_000 }), null, 'fund 25k')
  expect(tx('anyone', 'settle', { ...ref, milestone: 'm1' }), null, 'settle')
  expect(tx('anyone', 'settle', { ...ref, milestone: 'm1' }), 'ALREADY_PAID', 'settle twice')
  expect(
    tx('inspector', 'certify', { ...ref, milestone: 'm1', report: h('r1') }),
    'ALREADY_CERTIFIED',
    'certify after paid',
  )
  assert.is(bal('sub') + bal('worker-1') + bal('worker-2'), 30_000)
  const c = q('contract', { contract: 'bridge' })
  assert.is(c.released, 30_000)
  assert.is(c.holds[0].remaining, 0)
  assert.is(c.holds[1].remaining, 5_000)
})

test('close: the client, once every approved subcontract is completed; refunds the rest', () => {
  const { tx, q, bal, active } = setup()
  active()
  const ref = { contract: 'bridge', sub: 'steel' }
  expect(tx('client', 'fund', { contract: 'bridge', amount: 80_000 }), null, 'fund')
  expect(tx('inspector', 'certify', { ...ref, milestone: 'm1', report: h(1) }), null, 'm1')
  expect(tx('client', 'close', { contract: 'bridge' }), 'OUTSTANDING', 'm2 still open')
  expect(tx('inspector', 'certify', { ...ref, milestone: 'm2', report: h(2) }), null, 'm2')
  assert.is(q('subcontract', ref).status, 'completed')
  expect(tx('prime', 'close', { contract: 'bridge' }), 'UNAUTHORIZED', 'prime closes')
  const before = bal('client')
  const r = tx('client', 'close', { contract: 'bridge' })
  expect(r, null, 'close')
  assert.is(bal('client'), before + 30_000)
  const c = q('contract', { contract: 'bridge' })
  assert.is(c.status, 'closed')
  assert.is(c.refunded, 30_000)
  assert.is(c.escrow, 0)
  expect(tx('client', 'close', { contract: 'bridge' }), 'CONTRACT_CLOSED', 'close twice')
  expect(tx('client', 'fund', { contract: 'bridge', amount: 1 }), 'CONTRACT_CLOSED', 'fund after close')
  expect(
    tx('prime', 'propose', {
      contract: 'bridge',
      sub: 'late',
      subcontractor: key('sub'),
      terms: h(3),
      milestones: [{ id: 'm', amount: 1, payouts: [{ to: key('sub'), amount: 1 }] }],
    }),
    'CONTRACT_CLOSED',
    'propose after close',
  )
})

test('scenario: a public works contract with two subcontracts paid directly to subcontractors and workers', () => {
  const { chain, tx, q, bal } = setup({ clientFunds: 500_000 })
  expect(
    tx('client', 'createContract', {
      id: 'gangnam-road-7',
      prime: key('prime'),
      asset: 'KRW',
      value: 300_000,
      terms: h('road'),
    }),
    null,
    'award',
  )
  const line = (to: string, amount: number) => ({ to: key(to), amount })
  const asphalt = [
    {
      id: 'base-course',
      amount: 90_000,
      payouts: [line('asphalt-co', 60_000), line('worker-a', 15_000), line('worker-b', 15_000)],
    },
    {
      id: 'surface',
      amount: 60_000,
      payouts: [line('asphalt-co', 40_000), line('worker-a', 10_000), line('worker-b', 10_000)],
    },
  ]
  const lights = [
    {
      id: 'install',
      amount: 50_000,
      payouts: [line('lights-co', 35_000), line('worker-c', 10_000), line('prime', 5_000)],
    },
  ]
  expect(
    tx('prime', 'propose', {
      contract: 'gangnam-road-7',
      sub: 'asphalt',
      subcontractor: key('asphalt-co'),
      terms: h('a'),
      milestones: asphalt,
    }),
    null,
    'propose asphalt',
  )
  expect(
    tx('prime', 'propose', {
      contract: 'gangnam-road-7',
      sub: 'lights',
      subcontractor: key('lights-co'),
      terms: h('l'),
      milestones: lights,
    }),
    null,
    'propose lights',
  )
  const results = chain.block([
    {
      key: k('asphalt-co'),
      service: 'subcontract',
      method: 'sign',
      args: { contract: 'gangnam-road-7', sub: 'asphalt' },
    },
    {
      key: k('lights-co'),
      service: 'subcontract',
      method: 'sign',
      args: { contract: 'gangnam-road-7', sub: 'lights' },
    },
    {
      key: k('client'),
      service: 'subcontract',
      method: 'approve',
      args: { contract: 'gangnam-road-7', sub: 'asphalt' },
    },
    {
      key: k('client'),
      service: 'subcontract',
      method: 'approve',
      args: { contract: 'gangnam-road-7', sub: 'lights' },
    },
    {
      key: k('client'),
      service: 'subcontract',
      method: 'fund',
      args: { contract: 'gangnam-road-7', amount: 120_000 },
    },
  ])
  results.forEach((r, i) => {
    expect(r, null, `block tx ${i}`)
  })
  const cert = (sub: string, milestone: string) =>
    tx('inspector', 'certify', {
      contract: 'gangnam-road-7',
      sub,
      milestone,
      report: h(`${sub}/${milestone}`),
    })
  expect(cert('asphalt', 'base-course'), null, 'base course')
  expect(cert('lights', 'install'), null, 'lights: certified, escrow short')
  expect(tx('client', 'fund', { contract: 'gangnam-road-7', amount: 100_000 }), null, 'second funding')
  expect(
    tx('lights-co', 'settle', { contract: 'gangnam-road-7', sub: 'lights', milestone: 'install' }),
    null,
    'lights paid',
  )
  expect(cert('asphalt', 'surface'), null, 'surface')
  expect(tx('client', 'close', { contract: 'gangnam-road-7' }), null, 'close')
  assert.is(bal('asphalt-co'), 100_000)
  assert.is(bal('lights-co'), 35_000)
  assert.is(bal('worker-a'), 25_000)
  assert.is(bal('worker-b'), 25_000)
  assert.is(bal('worker-c'), 10_000)
  assert.is(bal('prime'), 5_000)
  assert.is(bal('client'), 500_000 - 200_000)
  const c = q('contract', { contract: 'gangnam-road-7' })
  assert.is(c.escrowed, 220_000)
  assert.is(c.released, 200_000)
  assert.is(c.refunded, 20_000)
  assert.is(c.committed, 200_000)
  const supply = chain.query('token', 'supply', { asset: 'KRW' }) as any
  assert.is(supply.held, 0)
  assert.is(supply.supply, 500_000)
})

// ---- holes of issue #12 ----

test('hole: an approved subcontract whose inspector is gone can be ended by client, prime and subcontractor', () => {
  const { tx, q, bal, active } = setup()
  active()
  const ref = { contract: 'bridge', sub: 'steel' }
  expect(tx('client', 'fund', { contract: 'bridge', amount: 80_000 }), null, 'fund')
  expect(tx('inspector', 'certify', { ...ref, milestone: 'm1', report: h(1) }), null, 'm1')
  // The inspector is gone: m2 is never certified; today the contract can never close.
  expect(tx('worker-1', 'terminate', ref), 'UNAUTHORIZED', 'a payee does not end it')
  expect(tx('client', 'terminate', ref), null, 'client asks')
  expect(tx('client', 'terminate', ref), 'ALREADY_SIGNED', 'asks once')
  expect(tx('prime', 'terminate', ref), null, 'prime asks')
  assert.is(q('subcontract', ref).status, 'active', 'not before all three asked')
  expect(tx('sub', 'terminate', ref), null, 'subcontractor asks')
  const r = q('subcontract', ref)
  assert.is(r.status, 'terminated')
  expect(tx('inspector', 'certify', { ...ref, milestone: 'm2', report: h(2) }), 'BAD_STATE', 'ended')
  const c = q('contract', { contract: 'bridge' })
  assert.is(c.committed, 30_000, 'only what was paid stays committed')
  assert.is(c.open, 0)
  const before = bal('client')
  expect(tx('client', 'close', { contract: 'bridge' }), null, 'close')
  assert.is(bal('client'), before + 50_000, 'the unspent escrow goes back to the client')
})

test('hole: a certified-unpaid milestone must be settled before its subcontract is ended', () => {
  const { tx, q, active } = setup()
  active()
  const ref = { contract: 'bridge', sub: 'steel' }
  expect(tx('client', 'fund', { contract: 'bridge', amount: 10_000 }), null, 'fund')
  expect(
    tx('inspector', 'certify', { ...ref, milestone: 'm1', report: h(1) }),
    null,
    'certified, not covered',
  )
  for (const who of ['client', 'prime']) expect(tx(who, 'terminate', ref), null, `${who} asks`)
  expect(tx('sub', 'terminate', ref), 'OUTSTANDING', 'm1 is owed')
  assert.is(q('subcontract', ref).status, 'active')
})

test('hole: conflict of interest is checked by organisation, not only by key', () => {
  const { chain, tx, active } = setup()
  active()
  const ref = { contract: 'bridge', sub: 'steel' }
  expect(tx('client', 'fund', { contract: 'bridge', amount: 80_000 }), null, 'fund')
  const city = k('city')
  const orgOf = (owner: string, org: string, other: string) => {
    expect(
      chain.tx(city, 'identity', 'grantRole', { scope: 'identity', role: 'registrar', key: key(owner) }),
      null,
      'registrar',
    )
    expect(chain.tx(k(owner), 'identity', 'registerOrg', { org, name: org }), null, 'org')
    expect(chain.tx(k(owner), 'identity', 'addOrgKey', { org, key: key(other) }), null, 'org key')
    expect(
      chain.tx(city, 'identity', 'grantRole', { scope: 'subcontract', role: 'inspector', key: key(other) }),
      null,
      'inspector role',
    )
  }
  // A second key of the prime's firm, and one of the subcontractor's, hold the inspector role.
  orgOf('prime', 'builder-co', 'builder-co-inspector')
  orgOf('sub', 'steel-co', 'steel-co-inspector')
  for (const who of ['builder-co-inspector', 'steel-co-inspector'])
    expect(tx(who, 'certify', { ...ref, milestone: 'm1', report: h(who) }), 'CONFLICT_OF_INTEREST', who)
  expect(
    tx('inspector', 'certify', { ...ref, milestone: 'm1', report: h(1) }),
    null,
    'an independent inspector',
  )
})

test(`property: released <= escrowed and escrow matches the token holds over random txs (seed ${SEED})`, () => {
  const rng = new Rng(SEED)
  const { chain, tx, q } = setup({ clientFunds: 10_000_000 })
  const contracts = ['c1', 'c2']
  const people = ['sub-a', 'sub-b', 'w1', 'w2', 'w3']
  for (const id of contracts)
    expect(
      tx('client', 'createContract', { id, prime: key('prime'), asset: 'KRW', value: 5_000, terms: h(id) }),
      null,
      `create ${id}`,
    )
  const subs: { contract: string; sub: string; ms: string[]; by: string }[] = []
  let made = 0
  const randomTable = (amount: number) => {
    // Split `amount` among 1..3 payees, usually exactly, sometimes off by one (must be refused).
    const n = rng.range(1, 3)
    const out: { to: Uint8Array; amount: number }[] = []
    let left = amount
    for (let i = 0; i < n - 1 && left > 1; i++) {
      const part = rng.range(1, left - 1)
      out.push({ to: key(rng.pick(people)), amount: part })
      left -= part
    }
    out.push({ to: key(rng.pick(people)), amount: left + (rng.chance(0.1) ? 1 : 0) })
    return out
  }
  const codes = new Map<string, number>()
  for (let step = 0; step < 300; step++) {
    const contract = rng.pick(contracts)
    const op = rng.int(8)
    let r: TxResult
    if (op === 0 || subs.length === 0) {
      const sub = `s${made++}`
      const ms = Array.from({ length: rng.range(1, 3) }, (_, i) => `m${i}`)
      const milestones = ms.map((id) => {
        const amount = rng.range(1, 900)
        return { id, amount, payouts: randomTable(amount) }
      })
      const by = rng.pick(['sub-a', 'sub-b'])
      r = tx('prime', 'propose', { contract, sub, subcontractor: key(by), terms: h(sub), milestones })
      if (r.code === null) subs.push({ contract, sub, ms, by })
    } else {
      const s = rng.pick(subs)
      const ref = { contract: s.contract, sub: s.sub }
      if (op === 1) r = tx(rng.pick(['stranger', 'prime', s.by]), rng.pick(['sign', 'cancel']), ref)
      else if (op === 2) r = tx(s.by, 'sign', ref)
      else if (op === 3) r = tx(rng.pick(['client', 'client', 'client-2']), 'approve', ref)
      else if (op === 4) r = tx('client', 'fund', { contract: s.contract, amount: rng.range(1, 1500) })
      else if (op === 5 || op === 6)
        r = tx(rng.pick(['inspector', 'inspector', 'prime']), 'certify', {
          ...ref,
          milestone: rng.pick(s.ms),
          report: h(step),
        })
      // Closing ends a contract for good: only late in the run, so most of it exercises payments.
      else if (step < 250 || rng.chance(0.7))
        r = tx('anyone', 'settle', { ...ref, milestone: rng.pick(s.ms) })
      else r = tx('client', 'close', { contract: s.contract })
    }
    codes.set(r.code ?? 'ok', (codes.get(r.code ?? 'ok') ?? 0) + 1)
    assert.not.equal(r.code, 'INTERNAL', `seed ${SEED} step ${step}: ${r.message}`)
    for (const id of contracts) {
      const c = q('contract', { contract: id })
      const at = `seed ${SEED} step ${step} contract ${id}`
      assert.ok(c.released <= c.escrowed, `${at}: released ${c.released} > escrowed ${c.escrowed}`)
      assert.ok(c.escrowed <= c.value && c.committed <= c.value, `${at}: over the value`)
      let held = 0
      for (const hd of c.holds) {
        const t = chain.query('token', 'hold', { owner: 'subcontract', holdId: hd.holdId }) as any
        assert.is(t.remaining, hd.remaining, `${at}: hold ${hd.holdId}`)
        held += t.remaining
      }
      assert.is(c.escrowed, c.released + c.refunded + held, `${at}: escrow accounting`)
      let paid = 0
      let committed = 0
      for (const sub of c.subs) {
        const rec = q('subcontract', { contract: id, sub })
        if (rec.approvedAt !== null) committed += rec.total
        for (const m of rec.milestones) {
          assert.is(
            m.payouts.reduce((x: number, p: any) => x + p.amount, 0),
            m.amount,
            `${at}: payout table of ${sub}/${m.id}`,
          )
          if (m.status === 'paid') paid += m.amount
          if (m.status !== 'pending') assert.ok(rec.approvedAt !== null, `${at}: certified before approval`)
        }
      }
      assert.is(c.released, paid, `${at}: released = paid milestones`)
      assert.is(c.committed, committed, `${at}: committed = approved totals`)
    }
  }
  // The run exercised payments, not just refusals.
  assert.ok((codes.get('ok') ?? 0) > 50, `seed ${SEED}: too few successes ${JSON.stringify([...codes])}`)
  assert.ok(
    q('contract', { contract: 'c1' }).released + q('contract', { contract: 'c2' }).released > 0,
    `seed ${SEED}: nothing was paid`,
  )
})

test.run()
