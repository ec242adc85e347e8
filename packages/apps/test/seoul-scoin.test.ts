import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type KeyPair, type Value, generateKeyPair, sha256, sign, toHex, utf8 } from '@cityledger/core'
import { Rng, createTestChain, seedFor, testSeed } from '@cityledger/core/testing'
import { baseServices } from '../src/base/index.ts'
import { MAX_LOTS, SWEEP_HOLDERS, receiptMessage, scoin } from '../src/seoul/index.ts'

const SEED = testSeed(20261126)

const k = (label: string): KeyPair => generateKeyPair(seedFor(label))
const key = (label: string) => k(label).publicKey
const h = (label: string | number) => sha256(utf8.encode(`seoul-scoin/${label}`))

/** Convert args with a settlement receipt `label` for `holder` and `amount`, signed by `operator`. */
function receiptFor(operator: string, holder: string, amount: number, label: string | number) {
  const receipt = h(label)
  const signature = sign(k(operator).secretKey, receiptMessage('SCOIN', key(holder), amount, receipt))
  return { amount, receipt, operator: key(operator), signature }
}

/** The SCOIN asset as the token admin creates it (see docs/seoul-a.md). */
const SCOIN_ASSET = {
  asset: 'SCOIN',
  decimals: 0,
  policy: 'controlled',
  controllers: ['scoin'],
  budgetPerPeriod: 0,
  periodBlocks: 1,
}

function setup(opts: { asset?: Record<string, Value> | null } = {}) {
  const chain = createTestChain({
    services: [...baseServices, scoin],
    genesis: {
      identity: {
        admins: [{ key: key('city'), scopes: ['*'] }],
        roles: [
          { scope: 'token', role: 'admin', key: key('city') },
          { scope: 'scoin', role: 'admin', key: key('scoin-admin') },
          { scope: 'scoin', role: 'operator', key: key('op-green') },
          { scope: 'scoin', role: 'operator', key: key('op-volunteer') },
          { scope: 'scoin', role: 'operator', key: key('op-other') },
          { scope: 'scoin', role: 'settlement', key: key('settler') },
        ],
      },
      scoin: { asset: 'SCOIN' },
    },
  })
  if (opts.asset !== null) {
    const r = chain.tx(k('city'), 'token', 'createAsset', opts.asset ?? SCOIN_ASSET)
    assert.is(r.code, null, 'createAsset')
  }
  const tx = (who: string, method: string, args: Value) => chain.tx(k(who), 'scoin', method, args)
  const q = (name: string, args: Value) => chain.query('scoin', name, args) as any
  const tokenBalance = (who: string) =>
    chain.query('token', 'balance', { asset: 'SCOIN', owner: key(who) }) as number
  const usable = (who: string) => q('balance', { holder: key(who) }).usable as number
  const program = (id: string, over: Record<string, Value> = {}) =>
    tx('scoin-admin', 'createProgram', {
      program: id,
      operators: [key('op-green')],
      budget: 1000,
      expiryBlocks: 50,
      ...over,
    })
  const places = () => {
    assert.is(tx('scoin-admin', 'setPlace', { key: key('merchant'), kind: 'merchant' }).code, null)
    assert.is(tx('scoin-admin', 'setPlace', { key: key('agency'), kind: 'agency' }).code, null)
    assert.is(tx('scoin-admin', 'setPlace', { key: key('campaign'), kind: 'campaign' }).code, null)
  }
  return { chain, tx, q, tokenBalance, usable, program, places }
}

test('programs and allowlists: scoin admins only', () => {
  const { tx, q, program } = setup()
  assert.is(program('green', { operators: [key('op-green')] }).code, null)
  assert.is(
    tx('op-green', 'createProgram', {
      program: 'x',
      operators: [key('op-green')],
      budget: 1,
      expiryBlocks: 1,
    }).code,
    'UNAUTHORIZED',
  )
  assert.is(program('green').code, 'ALREADY_EXISTS')
  assert.is(program('bad', { budget: 0 }).code, 'BAD_ARGS')
  assert.is(program('bad', { expiryBlocks: 0 }).code, 'BAD_ARGS')
  assert.is(tx('citizen-a', 'setPlace', { key: key('merchant'), kind: 'merchant' }).code, 'UNAUTHORIZED')
  assert.is(tx('scoin-admin', 'setPlace', { key: key('merchant'), kind: 'merchant' }).code, null)
  assert.is(q('place', { key: key('merchant') }), 'merchant')
  assert.is(tx('scoin-admin', 'setPlace', { key: key('merchant'), kind: 'none' }).code, null)
  assert.is(q('place', { key: key('merchant') }), null)
  assert.is(tx('op-green', 'addBudget', { program: 'green', amount: 5 }).code, 'UNAUTHORIZED')
  assert.is(tx('op-green', 'closeProgram', { program: 'green' }).code, 'UNAUTHORIZED')
  assert.is(tx('scoin-admin', 'addBudget', { program: 'nope', amount: 5 }).code, 'NOT_FOUND')
  assert.equal(q('config', {}), { asset: 'SCOIN' })
})

test('award: a listed operator with the role, within the program budget', () => {
  const { tx, q, chain, tokenBalance, program } = setup()
  assert.is(program('green', { operators: [key('op-green'), key('citizen-b')], budget: 100 }).code, null)
  const award = (who: string, amount: number, program = 'green') =>
    tx(who, 'award', { program, to: key('citizen-a'), amount })
  assert.is(award('citizen-a', 1).code, 'UNAUTHORIZED', 'no operator role')
  assert.is(award('citizen-b', 1).code, 'UNAUTHORIZED', 'listed in the program but no role')
  assert.is(award('op-other', 1).code, 'NOT_OPERATOR', 'role but not listed')
  assert.is(award('op-green', 1, 'nope').code, 'NOT_FOUND')
  const r = award('op-green', 60)
  assert.is(r.code, null)
  const awarded = r.events.find((e) => e.name === 'awarded')!.data as { expiresAt: number }
  assert.is(awarded.expiresAt, chain.height + 50)
  assert.is(award('op-green', 41).code, 'BUDGET_EXCEEDED')
  assert.is(award('op-green', 40).code, null, 'exactly the budget')
  assert.is(award('op-green', 1).code, 'BUDGET_EXCEEDED')
  assert.is(tx('scoin-admin', 'addBudget', { program: 'green', amount: 10 }).code, null)
  assert.is(award('op-green', 10).code, null)
  assert.is(tx('scoin-admin', 'closeProgram', { program: 'green' }).code, null)
  assert.is(tx('scoin-admin', 'addBudget', { program: 'green', amount: 10 }).code, null)
  assert.is(award('op-green', 1).code, 'PROGRAM_CLOSED')
  assert.is(tokenBalance('citizen-a'), 110)
  const p = q('program', { program: 'green' })
  assert.is(p.awarded, 110)
  assert.is(p.active, false)
  assert.is(tx('op-green', 'award', { program: 'green', to: key('citizen-a'), amount: 0 }).code, 'BAD_ARGS')
})

test('the asset must be controlled by scoin, or no miles are awarded', () => {
  const { tx, program } = setup({ asset: { ...SCOIN_ASSET, policy: 'open', controllers: ['scoin'] } })
  assert.is(program('green').code, null)
  assert.is(tx('op-green', 'award', { program: 'green', to: key('citizen-a'), amount: 1 }).code, 'BAD_ASSET')
  const none = setup({ asset: null })
  assert.is(none.program('green').code, null)
  assert.is(
    none.tx('op-green', 'award', { program: 'green', to: key('citizen-a'), amount: 1 }).code,
    'BAD_ASSET',
  )
})

test('spend: only at allowlisted merchants and agencies; no citizen-to-citizen transfers', () => {
  const { chain, tx, tokenBalance, usable, program, places } = setup()
  places()
  assert.is(program('green').code, null)
  assert.is(tx('op-green', 'award', { program: 'green', to: key('citizen-a'), amount: 100 }).code, null)
  const spend = (to: string, amount: number) =>
    tx('citizen-a', 'spend', { to: key(to), amount, ref: h('bill') })
  assert.is(spend('merchant', 30).code, null)
  assert.is(spend('agency', 20).code, null)
  assert.is(spend('citizen-b', 1).code, 'NOT_ALLOWLISTED', 'no transfer to another citizen')
  assert.is(spend('campaign', 1).code, 'NOT_ALLOWLISTED', 'campaigns take donations, not payments')
  assert.is(spend('merchant', 51).code, 'INSUFFICIENT_MILES')
  assert.is(tokenBalance('citizen-a'), 50)
  assert.is(usable('citizen-a'), 50)
  assert.is(tokenBalance('merchant'), 30)
  assert.is(tokenBalance('agency'), 20)
  // The token itself refuses plain transfers of a controlled asset.
  const direct = chain.tx(k('citizen-a'), 'token', 'transfer', {
    asset: 'SCOIN',
    to: key('citizen-b'),
    amount: 1,
  })
  assert.is(direct.code, 'TRANSFER_FORBIDDEN')
  assert.is(tokenBalance('citizen-b'), 0)
  // A merchant cannot pay itself, and a delisted merchant takes no more miles.
  assert.is(tx('merchant', 'spend', { to: key('merchant'), amount: 1 }).code, 'SELF_PAYMENT')
  assert.is(tx('scoin-admin', 'setPlace', { key: key('merchant'), kind: 'none' }).code, null)
  assert.is(spend('merchant', 1).code, 'NOT_ALLOWLISTED')
})

test('donate: to allowlisted campaigns and agencies only', () => {
  const { tx, tokenBalance, program, places, q } = setup()
  places()
  assert.is(program('green').code, null)
  assert.is(tx('op-green', 'award', { program: 'green', to: key('citizen-a'), amount: 10 }).code, null)
  const donate = (to: string, amount: number) => tx('citizen-a', 'donate', { to: key(to), amount })
  const r = donate('campaign', 4)
  assert.is(r.code, null)
  assert.ok(r.events.some((e) => e.name === 'donated'))
  assert.is(donate('agency', 1).code, null)
  assert.is(donate('merchant', 1).code, 'NOT_ALLOWLISTED')
  assert.is(donate('citizen-b', 1).code, 'NOT_ALLOWLISTED')
  assert.is(donate('campaign', 6).code, 'INSUFFICIENT_MILES')
  assert.is(tokenBalance('campaign'), 4)
  assert.is(q('stats', {}).donated, 5)
})

test('convert: burns against a settlement receipt, each receipt once', () => {
  const { chain, tx, q, tokenBalance, program, places } = setup()
  places()
  assert.is(program('green').code, null)
  assert.is(tx('op-green', 'award', { program: 'green', to: key('citizen-a'), amount: 100 }).code, null)
  assert.is(tx('citizen-a', 'convert', receiptFor('settler', 'citizen-a', 40, 'receipt-1')).code, null)
  assert.is(
    tx('citizen-a', 'convert', receiptFor('settler', 'citizen-a', 1, 'receipt-1')).code,
    'DUPLICATE_RECEIPT',
  )
  assert.is(
    tx('citizen-a', 'convert', receiptFor('settler', 'citizen-a', 61, 'receipt-2')).code,
    'INSUFFICIENT_MILES',
  )
  assert.is(q('receipt', { receipt: h('receipt-2') }), null, 'a failed convert leaves no receipt')
  assert.is(tokenBalance('citizen-a'), 60)
  const rec = q('receipt', { receipt: h('receipt-1') })
  assert.is(rec.amount, 40)
  assert.is(toHex(rec.holder), toHex(key('citizen-a')))
  // A merchant settles the miles it received (they never expire).
  assert.is(tx('citizen-a', 'spend', { to: key('merchant'), amount: 25 }).code, null)
  assert.is(tx('merchant', 'convert', receiptFor('settler', 'merchant', 25, 'receipt-m')).code, null)
  assert.is(tokenBalance('merchant'), 0)
  const supply = chain.query('token', 'supply', { asset: 'SCOIN' }) as { minted: number; burned: number }
  assert.equal([supply.minted, supply.burned], [100, 65])
  assert.equal(q('stats', {}), { awarded: 100, expired: 0, converted: 65, spent: 25, donated: 0 })
})

test('expiry: expired miles cannot be used; lazy and swept burns agree', () => {
  const { chain, tx, q, tokenBalance, usable, program, places } = setup()
  places()
  assert.is(program('green', { expiryBlocks: 5 }).code, null)
  const r = tx('op-green', 'award', { program: 'green', to: key('citizen-a'), amount: 10 })
  const awardedAt = chain.height
  assert.is(r.code, null)
  assert.is(tx('op-green', 'award', { program: 'green', to: key('citizen-b'), amount: 7 }).code, null)
  chain.advance(awardedAt + 4 - chain.height - 1)
  // Height awardedAt + 4: the last height the lot can be used.
  assert.is(tx('citizen-a', 'spend', { to: key('merchant'), amount: 3 }).code, null)
  assert.is(chain.height, awardedAt + 4)
  // Height awardedAt + 5: expired. The spend fails; the failed tx leaves no burn behind, the sweep does it.
  assert.is(tx('citizen-a', 'spend', { to: key('merchant'), amount: 1 }).code, 'INSUFFICIENT_MILES')
  assert.is(tokenBalance('citizen-a'), 0, 'swept at the end of the expiry block')
  const swept = chain.lastBlockEvents().filter((e) => e.service === 'scoin' && e.name === 'expired')
  assert.equal(
    swept.map((e) => toHex((e.data as { holder: Uint8Array }).holder)),
    [toHex(key('citizen-a'))],
  )
  // citizen-b's lot expires one block later.
  assert.is(usable('citizen-b'), 7)
  assert.is(
    tx('citizen-b', 'convert', receiptFor('settler', 'citizen-b', 7, 'late')).code,
    'INSUFFICIENT_MILES',
  )
  const b = q('balance', { holder: key('citizen-b') })
  assert.equal([b.usable, b.lots, b.free], [0, [], 0])
  assert.is(tokenBalance('citizen-b'), 0)
  assert.is(tokenBalance('merchant'), 3, 'miles already spent do not expire')
  assert.equal(q('stats', {}), { awarded: 17, expired: 14, converted: 0, spent: 3, donated: 0 })
  // The manual expire method is a no-op now, and burns at once when the sweep has not run yet.
  assert.is(tx('anyone', 'expire', { holder: key('citizen-a') }).code, null)
})

test('lots are used earliest expiry first', () => {
  const { chain, tx, q, usable, program, places } = setup()
  places()
  assert.is(program('long', { expiryBlocks: 100 }).code, null)
  assert.is(program('short', { expiryBlocks: 10 }).code, null)
  assert.is(tx('op-green', 'award', { program: 'long', to: key('citizen-a'), amount: 50 }).code, null)
  assert.is(tx('op-green', 'award', { program: 'short', to: key('citizen-a'), amount: 20 }).code, null)
  const shortAt = chain.height + 0
  const lots = q('balance', { holder: key('citizen-a') }).lots as [number, number][]
  assert.equal(
    lots.map(([, n]) => n),
    [20, 50],
    'sorted by expiry',
  )
  assert.is(tx('citizen-a', 'spend', { to: key('merchant'), amount: 25 }).code, null)
  assert.equal(
    (q('balance', { holder: key('citizen-a') }).lots as [number, number][]).map(([, n]) => n),
    [45],
  )
  chain.advance(shortAt + 10 - chain.height)
  assert.is(usable('citizen-a'), 45, 'nothing was left to expire in the short lot')
})

test(`the endBlock sweep does bounded work per block (at most ${SWEEP_HOLDERS} holders)`, () => {
  const { chain, tx, program } = setup()
  const n = 2 * SWEEP_HOLDERS + 10
  assert.is(program('bulk', { operators: [key('op-green')], budget: 10_000, expiryBlocks: 3 }).code, null)
  const holders = Array.from({ length: n }, (_, i) => k(`holder-${i}`))
  const rs = chain.block(
    holders.map((hk) => ({
      key: k('op-green'),
      service: 'scoin',
      method: 'award',
      args: { program: 'bulk', to: hk.publicKey, amount: 5 },
    })),
  )
  assert.ok(rs.every((r) => r.code === null))
  const at = chain.height
  chain.advance(at + 3 - chain.height - 1)
  const expiredIn = (events: { service: string; name: string }[]) =>
    events.filter((e) => e.service === 'scoin' && e.name === 'expired').length
  const bal = (hk: KeyPair) =>
    chain.query('token', 'balance', { asset: 'SCOIN', owner: hk.publicKey }) as number
  assert.is(expiredIn(chain.advance(1)), SWEEP_HOLDERS)
  // Not swept yet, but already unusable: expiry does not wait for the sweep.
  const last = holders.at(-1)!
  assert.is(bal(last), 5)
  assert.is((chain.query('scoin', 'balance', { holder: last.publicKey }) as { usable: number }).usable, 0)
  assert.is(
    tx(`holder-${n - 1}`, 'convert', receiptFor('settler', `holder-${n - 1}`, 1, 'too-late')).code,
    'INSUFFICIENT_MILES',
  )
  assert.is(expiredIn(chain.lastBlockEvents()), SWEEP_HOLDERS, 'the sweep ran after that tx too')
  assert.is(bal(last), 5, 'the failed tx burned nothing')
  assert.is(expiredIn(chain.advance(1)), n - 2 * SWEEP_HOLDERS)
  assert.is(expiredIn(chain.advance(3)), 0)
  for (const hk of holders) assert.is(bal(hk), 0)
  for (const key of chain.state().keys()) assert.ok(!key.startsWith('scoin/expq/'), `queue drained: ${key}`)
  assert.equal(chain.state().get('scoin/sweep'), { height: chain.height + 1, index: 0 })
})

test(`at most ${MAX_LOTS} live lots per holder`, () => {
  const { chain, tx, program } = setup()
  assert.is(program('daily', { budget: 10_000, expiryBlocks: 1000 }).code, null)
  for (let i = 0; i < MAX_LOTS; i++)
    assert.is(tx('op-green', 'award', { program: 'daily', to: key('citizen-a'), amount: 1 }).code, null)
  assert.is(
    tx('op-green', 'award', { program: 'daily', to: key('citizen-a'), amount: 1 }).code,
    'TOO_MANY_LOTS',
  )
  // Two awards in one block share one lot.
  const rs = chain.block(
    [0, 1].map(() => ({
      key: k('op-green'),
      service: 'scoin',
      method: 'award',
      args: { program: 'daily', to: key('citizen-b'), amount: 2 },
    })),
  )
  assert.equal(
    rs.map((r) => r.code),
    [null, null],
  )
  assert.equal(
    (chain.query('scoin', 'balance', { holder: key('citizen-b') }) as { lots: number[][] }).lots.map(
      (l) => l[1],
    ),
    [4],
  )
})

test(`random operations keep the invariants (seed ${SEED})`, () => {
  const { chain, q, program, places } = setup()
  places()
  const rng = new Rng(SEED)
  assert.is(program('p1', { operators: [key('op-green')], budget: 3000, expiryBlocks: 7 }).code, null)
  assert.is(program('p2', { operators: [key('op-volunteer')], budget: 2000, expiryBlocks: 19 }).code, null)
  const citizens = ['c0', 'c1', 'c2', 'c3', 'c4']
  const holders = [...citizens, 'merchant', 'agency', 'campaign']
  let receipts = 0
  for (let b = 0; b < 120; b++) {
    const calls = Array.from({ length: rng.range(0, 4) }, () => {
      const who = rng.pick(citizens)
      const amount = rng.range(1, 60)
      switch (rng.int(6)) {
        case 0:
          return {
            key: k('op-green'),
            service: 'scoin',
            method: 'award',
            args: { program: 'p1', to: key(who), amount } as Value,
          }
        case 1:
          return {
            key: k('op-volunteer'),
            service: 'scoin',
            method: 'award',
            args: { program: 'p2', to: key(who), amount } as Value,
          }
        case 2:
          return {
            key: k(who),
            service: 'scoin',
            method: 'spend',
            args: { to: key(rng.pick(['merchant', 'agency', 'c0'])), amount } as Value,
          }
        case 3:
          return {
            key: k(who),
            service: 'scoin',
            method: 'donate',
            args: { to: key(rng.pick(['campaign', 'agency'])), amount } as Value,
          }
        case 4: {
          const convertWho = rng.pick(holders)
          return {
            key: k(convertWho),
            service: 'scoin',
            method: 'convert',
            args: receiptFor('settler', convertWho, amount, `r${receipts++}`) as Value,
          }
        }
        default:
          return {
            key: k(who),
            service: 'token',
            method: 'transfer',
            args: { asset: 'SCOIN', to: key(rng.pick(citizens)), amount } as Value,
          }
      }
    })
    const before = new Map(
      citizens.map((c) => [c, chain.query('token', 'balance', { asset: 'SCOIN', owner: key(c) }) as number]),
    )
    const rs = chain.block(calls)
    const ctx = `seed ${SEED} block ${chain.height}`
    rs.forEach((r, i) => {
      const c = calls[i]!
      if (c.service === 'token') assert.is(r.code, 'TRANSFER_FORBIDDEN', ctx)
      else if (r.code !== null)
        assert.ok(
          [
            'BUDGET_EXCEEDED',
            'INSUFFICIENT_MILES',
            'NOT_ALLOWLISTED',
            'SELF_PAYMENT',
            'TOO_MANY_LOTS',
          ].includes(r.code),
          `${ctx}: ${r.code}`,
        )
    })
    // A citizen's balance only grows through awards.
    const awardedTo = new Set(
      calls
        .filter((c, i) => c.method === 'award' && rs[i]!.code === null)
        .map((c) => toHex((c.args as { to: Uint8Array }).to)),
    )
    for (const c of citizens) {
      const now = chain.query('token', 'balance', { asset: 'SCOIN', owner: key(c) }) as number
      if (!awardedTo.has(toHex(key(c))))
        assert.ok(now <= before.get(c)!, `${ctx}: ${c} gained ${now - before.get(c)!} without an award`)
    }
    // Per holder: live + expired-unburned lots never exceed the token balance; lots sorted, bounded.
    const state = chain.state()
    let balances = 0
    for (const hname of holders) {
      const bal = (state.get(`token/bal/SCOIN/${toHex(key(hname))}`) as number | undefined) ?? 0
      balances += bal
      const lots = (state.get(`scoin/lots/${toHex(key(hname))}`) as [number, number][] | undefined) ?? []
      const lotSum = lots.reduce((s, [, n]) => s + n, 0)
      assert.ok(lotSum <= bal, `${ctx}: ${hname} lots ${lotSum} > balance ${bal}`)
      assert.ok(lots.length <= MAX_LOTS, ctx)
      for (let i = 1; i < lots.length; i++) assert.ok(lots[i - 1]![0] < lots[i]![0], `${ctx}: lots sorted`)
      const usable = q('balance', { holder: key(hname) })
      assert.ok(usable.usable >= 0 && usable.free >= 0, ctx)
    }
    const stats = q('stats', {})
    const supply = chain.query('token', 'supply', { asset: 'SCOIN' }) as {
      minted: number
      burned: number
      supply: number
    }
    assert.is(supply.minted, stats.awarded, ctx)
    assert.is(supply.burned, stats.expired + stats.converted, ctx)
    assert.is(supply.supply, balances, `${ctx}: supply = sum of balances`)
    for (const p of ['p1', 'p2']) {
      const rec = q('program', { program: p })
      assert.ok(rec.awarded <= rec.budget, ctx)
    }
  }
  assert.ok(q('stats', {}).expired > 0, `seed ${SEED}: some miles expired`)
})

test('scenario: earn for recycling, pay the subway, donate, convert, the rest expires', () => {
  const { chain, tx, q, tokenBalance, usable, places } = setup()
  places()
  assert.is(
    tx('scoin-admin', 'createProgram', {
      program: 'recycling',
      operators: [key('op-green')],
      budget: 500,
      expiryBlocks: 20,
    }).code,
    null,
  )
  assert.is(
    tx('scoin-admin', 'createProgram', {
      program: 'volunteer',
      operators: [key('op-volunteer')],
      budget: 500,
      expiryBlocks: 40,
    }).code,
    null,
  )
  assert.is(
    tx('op-green', 'award', { program: 'recycling', to: key('citizen-a'), amount: 120, ref: h('bottles') })
      .code,
    null,
  )
  assert.is(
    tx('op-volunteer', 'award', { program: 'volunteer', to: key('citizen-a'), amount: 80 }).code,
    null,
  )
  assert.is(
    tx('op-volunteer', 'award', { program: 'recycling', to: key('citizen-a'), amount: 1 }).code,
    'NOT_OPERATOR',
  )
  assert.is(usable('citizen-a'), 200)
  assert.is(tx('citizen-a', 'spend', { to: key('agency'), amount: 50, ref: h('subway-fare') }).code, null)
  assert.is(tx('citizen-a', 'donate', { to: key('campaign'), amount: 30 }).code, null)
  assert.is(
    tx('citizen-a', 'convert', receiptFor('settler', 'citizen-a', 20, 'bank-settlement-1')).code,
    null,
  )
  // 120 recycling miles: 100 used (earliest first), 20 left; 80 volunteer miles untouched.
  assert.equal(
    (q('balance', { holder: key('citizen-a') }).lots as [number, number][]).map(([, n]) => n),
    [20, 80],
  )
  chain.advance(25)
  assert.is(usable('citizen-a'), 80, 'the recycling lot expired')
  chain.advance(20)
  assert.is(usable('citizen-a'), 0)
  assert.is(tokenBalance('citizen-a'), 0)
  assert.equal(q('stats', {}), { awarded: 200, expired: 100, converted: 20, spent: 50, donated: 30 })
  assert.is(tokenBalance('agency'), 50)
  assert.is(tokenBalance('campaign'), 30)
  assert.is(tx('agency', 'convert', receiptFor('settler', 'agency', 50, 'agency-settlement')).code, null)
  const supply = chain.query('token', 'supply', { asset: 'SCOIN' }) as { supply: number }
  assert.is(supply.supply, 30)
})

// Holes of issue #12, each seen failing before its fix.

test('hole: a citizen burning miles through token.burn neither gets through nor stalls the expiry sweep', () => {
  const { chain, tx, program, tokenBalance } = setup()
  assert.is(program('green', { expiryBlocks: 3 }).code, null)
  assert.is(tx('op-green', 'award', { program: 'green', to: key('citizen-a'), amount: 10 }).code, null)
  assert.is(tx('op-green', 'award', { program: 'green', to: key('citizen-b'), amount: 5 }).code, null)
  const burn = chain.tx(k('citizen-a'), 'token', 'burn', { asset: 'SCOIN', amount: 1 })
  assert.is(burn.code, 'CONTROLLED_ASSET', 'a controlled asset is burned only by its controllers')
  assert.is(tokenBalance('citizen-a'), 10)
  chain.advance(4)
  assert.is(tokenBalance('citizen-a'), 0, "citizen-a's lot expired")
  assert.is(tokenBalance('citizen-b'), 0, "citizen-b's lot expired too")
})

test('hole: the token admin cannot grant itself the SCOIN issuer role and mint outside every budget', () => {
  const { chain, tokenBalance } = setup()
  const grant = chain.tx(k('city'), 'identity', 'grantRole', {
    scope: 'token',
    role: 'issuer:SCOIN',
    key: key('city'),
  })
  assert.is(grant.code, null)
  const mint = chain.tx(k('city'), 'token', 'mint', { asset: 'SCOIN', to: key('citizen-a'), amount: 1000 })
  assert.is(mint.code, 'CONTROLLED_ASSET')
  assert.is(tokenBalance('citizen-a'), 0)
  assert.is((chain.query('token', 'supply', { asset: 'SCOIN' }) as { minted: number }).minted, 0)
})

test('hole: an asset shared with another controller is refused (citizens would pay each other through it)', () => {
  const { chain, tx, program, tokenBalance } = setup({
    asset: { ...SCOIN_ASSET, controllers: ['scoin', 'agreement'] },
  })
  assert.is(program('green').code, null)
  const award = tx('op-green', 'award', { program: 'green', to: key('citizen-a'), amount: 50 })
  assert.is(award.code, 'BAD_ASSET')
  // The way around the allowlist it would open: an agreement whose only party and certifier is citizen-a
  // pays citizen-b.
  const create = chain.tx(k('citizen-a'), 'agreement', 'create', {
    id: 'gift',
    asset: 'SCOIN',
    parties: [key('citizen-a')],
    certifier: key('citizen-a'),
    milestones: [{ id: 'm', amount: 50, payouts: [{ to: key('citizen-b'), amount: 50 }] }],
  })
  if (create.code === null) {
    chain.tx(k('citizen-a'), 'agreement', 'sign', { id: 'gift' })
    chain.tx(k('citizen-a'), 'agreement', 'fund', { id: 'gift', amount: 50 })
    chain.tx(k('citizen-a'), 'agreement', 'certify', { id: 'gift', milestone: 'm' })
  }
  assert.is(tokenBalance('citizen-b'), 0, 'no miles reached another citizen')
})

test('hole: convert needs a receipt signed by a settlement operator for this holder and amount', () => {
  const { chain, tx, q, tokenBalance, program } = setup()
  assert.is(program('green').code, null)
  assert.is(tx('op-green', 'award', { program: 'green', to: key('citizen-a'), amount: 100 }).code, null)
  // Any unused hash used to do.
  assert.is(
    tx('citizen-a', 'convert', {
      amount: 10,
      receipt: h('made-up'),
      operator: key('bank'),
      signature: new Uint8Array(64),
    }).code,
    'BAD_RECEIPT',
  )
  // A well-signed receipt from a key without the settlement role.
  assert.is(tx('citizen-a', 'convert', receiptFor('bank', 'citizen-a', 10, 'r1')).code, 'BAD_RECEIPT')
  assert.is(
    chain.tx(k('city'), 'identity', 'grantRole', { scope: 'scoin', role: 'settlement', key: key('bank') })
      .code,
    null,
  )
  // Signed for another amount or another holder.
  assert.is(
    tx('citizen-a', 'convert', { ...receiptFor('bank', 'citizen-a', 10, 'r1'), amount: 11 }).code,
    'BAD_RECEIPT',
  )
  assert.is(tx('citizen-a', 'convert', receiptFor('bank', 'citizen-b', 10, 'r1')).code, 'BAD_RECEIPT')
  assert.is(tokenBalance('citizen-a'), 100)
  assert.is(tx('citizen-a', 'convert', receiptFor('bank', 'citizen-a', 10, 'r1')).code, null)
  assert.is(tx('citizen-a', 'convert', receiptFor('bank', 'citizen-a', 10, 'r1')).code, 'DUPLICATE_RECEIPT')
  assert.is(tokenBalance('citizen-a'), 90)
  assert.is(q('receipt', { receipt: h('r1') }).amount, 10)
})

test.run()
