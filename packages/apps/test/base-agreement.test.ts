import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type KeyPair, type Value, toHex } from '@cityledger/core'
import { Rng, testSeed, type TestCall } from '@cityledger/core/testing'
import type { AgreementRecord } from '../src/base/agreement.ts'
import { MAX_HOLDS } from '../src/base/agreement.ts'
import { baseChain, expectCode, expectCodes, exportCaller, under } from './base-fixtures.ts'

const SEED = testSeed(20261205)

/** Services that build on agreements through the exports (like subcontract payment). */
const caller = (svcName: string) => exportCaller(svcName, 'agreement')

function setup() {
  const base = baseChain({ extra: [caller('works'), caller('other'), exportCaller('squatter', 'token')] })
  const { chain, city, key } = base
  const issuer = key('issuer')
  expectCode(
    chain.tx(city, 'identity', 'grantRole', { scope: 'token', role: 'issuer:KRW', key: issuer.publicKey }),
    null,
    'issuer',
  )
  expectCode(
    chain.tx(city, 'token', 'createAsset', {
      asset: 'KRW',
      decimals: 0,
      policy: 'open',
      controllers: ['agreement'],
      budgetPerPeriod: 0,
      periodBlocks: 1,
    }),
    null,
    'KRW',
  )
  expectCode(
    chain.tx(city, 'token', 'createAsset', {
      asset: 'PLAIN',
      decimals: 0,
      policy: 'open',
      controllers: [],
      budgetPerPeriod: 0,
      periodBlocks: 1,
    }),
    null,
    'PLAIN',
  )
  const [client, builder, worker, inspector] = ['client', 'builder', 'worker', 'inspector'].map(key) as [
    KeyPair,
    KeyPair,
    KeyPair,
    KeyPair,
  ]
  for (const k of [client, builder])
    expectCode(
      chain.tx(issuer, 'token', 'mint', { asset: 'KRW', to: k.publicKey, amount: 10_000 }),
      null,
      'mint',
    )
  const contract = (id: string, over: Record<string, Value> = {}): Value => ({
    id,
    asset: 'KRW',
    parties: [client.publicKey, builder.publicKey],
    certifier: inspector.publicKey,
    milestones: [
      {
        id: 'foundation',
        amount: 600,
        payouts: [
          { to: builder.publicKey, amount: 400 },
          { to: worker.publicKey, amount: 200 },
        ],
      },
      { id: 'roof', amount: 400, payouts: [{ to: builder.publicKey, amount: 400 }] },
    ],
    ...over,
  })
  const balance = (k: KeyPair) =>
    chain.query('token', 'balance', { asset: 'KRW', owner: k.publicKey }) as number
  const get = (id: string) => chain.query('agreement', 'agreement', { id }) as unknown as AgreementRecord
  return { ...base, client, builder, worker, inspector, contract, balance, get }
}

test('create: checks parties, milestones, payouts and the asset', () => {
  const { chain, client, builder, contract, get } = setup()
  const c = contract('c1') as Record<string, Value>
  const ms = c.milestones as Record<string, Value>[]
  expectCode(
    chain.tx(client, 'agreement', 'create', { ...c, parties: [client.publicKey, client.publicKey] }),
    'DUPLICATE_PARTY',
    'dup party',
  )
  expectCode(
    chain.tx(client, 'agreement', 'create', { ...c, milestones: [ms[0]!, ms[0]!] }),
    'DUPLICATE_MILESTONE',
    'dup milestone',
  )
  expectCode(
    chain.tx(client, 'agreement', 'create', { ...c, milestones: [{ ...ms[0]!, amount: 601 }] }),
    'PAYOUT_MISMATCH',
    'payouts do not add up',
  )
  expectCode(chain.tx(client, 'agreement', 'create', { ...c, asset: 'NOPE' }), 'NO_SUCH_ASSET', 'no asset')
  expectCode(
    chain.tx(client, 'agreement', 'create', { ...c, asset: 'PLAIN' }),
    'ASSET_NOT_ESCROWABLE',
    'not a controller',
  )
  expectCode(chain.tx(client, 'agreement', 'create', { ...c, parties: [] }), 'BAD_ARGS', 'no parties')
  expectCode(chain.tx(client, 'agreement', 'create', c), null, 'create')
  expectCode(chain.tx(builder, 'agreement', 'create', c), 'AGREEMENT_EXISTS', 'dup')
  const a = get('c1')
  assert.is(a.status, 'proposed')
  assert.is(a.total, 1000)
})

test('sign: parties only, once; active only when all have signed', () => {
  const { chain, client, builder, inspector, contract, get } = setup()
  expectCode(chain.tx(client, 'agreement', 'create', contract('c1')), null, 'create')
  expectCode(chain.tx(inspector, 'agreement', 'sign', { id: 'c1' }), 'NOT_PARTY', 'not a party')
  expectCode(chain.tx(client, 'agreement', 'sign', { id: 'nope' }), 'NO_SUCH_AGREEMENT', 'none')
  expectCode(chain.tx(client, 'agreement', 'sign', { id: 'c1' }), null, 'client signs')
  assert.is(get('c1').status, 'proposed')
  expectCode(chain.tx(client, 'agreement', 'sign', { id: 'c1' }), 'ALREADY_SIGNED', 'twice')
  const r = chain.tx(builder, 'agreement', 'sign', { id: 'c1' })
  expectCode(r, null, 'builder signs')
  assert.ok(r.events.some((e) => e.name === 'activated'))
  assert.is(get('c1').status, 'active')
  expectCode(chain.tx(builder, 'agreement', 'sign', { id: 'c1' }), 'BAD_STATE', 'after activation')
})

test('fund, certify: escrow, split payouts across holds, never more than escrowed', () => {
  const { chain, client, builder, worker, inspector, contract, balance, get } = setup()
  expectCode(chain.tx(client, 'agreement', 'create', contract('c1')), null, 'create')
  expectCode(chain.tx(inspector, 'agreement', 'fund', { id: 'c1', amount: 10 }), 'NOT_PARTY', 'not a party')
  expectCode(chain.tx(client, 'agreement', 'fund', { id: 'c1', amount: 1001 }), 'OVERFUNDED', 'over total')
  expectCode(chain.tx(client, 'agreement', 'fund', { id: 'c1', amount: 300 }), null, 'fund before activation')
  expectCode(
    chain.tx(inspector, 'agreement', 'certify', { id: 'c1', milestone: 'foundation' }),
    'BAD_STATE',
    'not active yet',
  )
  for (const k of [client, builder]) expectCode(chain.tx(k, 'agreement', 'sign', { id: 'c1' }), null, 'sign')
  expectCode(
    chain.tx(client, 'agreement', 'certify', { id: 'c1', milestone: 'foundation' }),
    'UNAUTHORIZED',
    'not the certifier',
  )
  expectCode(
    chain.tx(inspector, 'agreement', 'certify', { id: 'c1', milestone: 'walls' }),
    'NO_SUCH_MILESTONE',
    'no milestone',
  )
  expectCode(
    chain.tx(inspector, 'agreement', 'certify', { id: 'c1', milestone: 'foundation' }),
    'INSUFFICIENT_ESCROW',
    '300 < 600',
  )
  expectCode(chain.tx(builder, 'agreement', 'fund', { id: 'c1', amount: 350 }), null, 'second hold')
  const before = [balance(builder), balance(worker)]
  expectCode(
    chain.tx(inspector, 'agreement', 'certify', { id: 'c1', milestone: 'foundation' }),
    null,
    'certify across two holds',
  )
  assert.equal([balance(builder) - before[0]!, balance(worker) - before[1]!], [400, 200])
  expectCode(
    chain.tx(inspector, 'agreement', 'certify', { id: 'c1', milestone: 'foundation' }),
    'ALREADY_CERTIFIED',
    'twice',
  )
  expectCode(
    chain.tx(inspector, 'agreement', 'certify', { id: 'c1', milestone: 'roof' }),
    'INSUFFICIENT_ESCROW',
    '50 < 400',
  )
  expectCode(chain.tx(client, 'agreement', 'fund', { id: 'c1', amount: 20_000 }), 'OVERFUNDED', 'over total')
  expectCode(chain.tx(client, 'agreement', 'fund', { id: 'c1', amount: 350 }), null, 'top up')
  expectCode(chain.tx(client, 'agreement', 'cancel', { id: 'c1' }), 'BAD_STATE', 'no cancel once active')
  const r = chain.tx(inspector, 'agreement', 'certify', { id: 'c1', milestone: 'roof' })
  expectCode(r, null, 'roof')
  assert.ok(r.events.some((e) => e.name === 'completed'))
  const a = get('c1')
  assert.equal([a.status, a.funded, a.paid], ['completed', 1000, 1000])
  assert.equal(chain.query('token', 'supply', { asset: 'KRW' }), {
    minted: 20_000,
    burned: 0,
    held: 0,
    supply: 20_000,
  })
  expectCode(chain.tx(client, 'agreement', 'fund', { id: 'c1', amount: 1 }), 'BAD_STATE', 'after completion')
})

test('fund: INSUFFICIENT_FUNDS from token; LIMIT on fundings; cancel returns the escrow', () => {
  const { chain, client, builder, worker, contract, balance, get } = setup()
  expectCode(chain.tx(client, 'agreement', 'create', contract('c1')), null, 'create')
  expectCode(chain.tx(client, 'agreement', 'fund', { id: 'c1', amount: 1 }), null, 'fund')
  expectCode(chain.tx(builder, 'agreement', 'fund', { id: 'c1', amount: 2 }), null, 'fund')
  for (let i = 2; i < MAX_HOLDS; i++)
    expectCode(chain.tx(client, 'agreement', 'fund', { id: 'c1', amount: 1 }), null, `fund ${i}`)
  expectCode(chain.tx(client, 'agreement', 'fund', { id: 'c1', amount: 1 }), 'LIMIT', 'limit')
  expectCode(
    chain.tx(client, 'agreement', 'create', contract('c2', { parties: [worker.publicKey] })),
    null,
    'c2',
  )
  expectCode(
    chain.tx(worker, 'agreement', 'fund', { id: 'c2', amount: 5 }),
    'INSUFFICIENT_FUNDS',
    'worker has nothing',
  )
  expectCode(chain.tx(worker, 'agreement', 'cancel', { id: 'c1' }), 'UNAUTHORIZED', 'stranger cancels')
  const [c0, b0] = [balance(client), balance(builder)]
  expectCode(chain.tx(builder, 'agreement', 'cancel', { id: 'c1' }), null, 'cancel')
  assert.equal([balance(client) - c0, balance(builder) - b0], [MAX_HOLDS - 1, 2])
  assert.equal([get('c1').status, get('c1').returned], ['cancelled', MAX_HOLDS + 1])
  expectCode(chain.tx(builder, 'agreement', 'cancel', { id: 'c1' }), 'BAD_STATE', 'twice')
  expectCode(chain.tx(builder, 'agreement', 'sign', { id: 'c1' }), 'BAD_STATE', 'sign a cancelled one')
  expectCode(
    chain.tx(builder, 'agreement', 'fund', { id: 'c1', amount: 1 }),
    'BAD_STATE',
    'fund a cancelled one',
  )
})

test('exports: the creating service owns the agreement', () => {
  const { chain, client, builder, inspector, contract } = setup()
  expectCode(
    chain.tx(client, 'works', 'call', { fn: 'create', args: contract('w1') }),
    null,
    'create via works',
  )
  const w1 = () =>
    chain.query('agreement', 'agreement', { id: 'w1', scope: 'works' }) as unknown as AgreementRecord
  assert.is(w1().scope, 'works')
  for (const k of [client, builder])
    expectCode(chain.tx(k, 'agreement', 'sign', { id: 'w1', scope: 'works' }), null, 'parties sign directly')
  expectCode(
    chain.tx(client, 'other', 'call', { fn: 'fund', args: { id: 'w1', amount: 600 } }),
    'NO_SUCH_AGREEMENT',
    'other service funds',
  )
  expectCode(
    chain.tx(client, 'works', 'call', { fn: 'fund', args: { id: 'w1', amount: 600 } }),
    null,
    'works funds',
  )
  expectCode(
    chain.tx(inspector, 'other', 'call', { fn: 'certify', args: { id: 'w1', milestone: 'foundation' } }),
    'NO_SUCH_AGREEMENT',
    'other certifies',
  )
  expectCode(
    chain.tx(inspector, 'works', 'call', { fn: 'certify', args: { id: 'w1', milestone: 'foundation' } }),
    null,
    'works certifies',
  )
  const r = chain.tx(client, 'other', 'call', { fn: 'get', args: { id: 'w1', scope: 'works' } })
  assert.is((r.events.find((e) => e.name === 'out')!.data as { paid: number }).paid, 600)
  expectCode(chain.tx(client, 'works', 'call', { fn: 'create', args: { id: 'bad' } }), 'BAD_ARGS', 'bad args')
})

// ---- holes of issue #12 ----

test("hole: the methods act only on the method's own agreements: a service's contract is not funded or cancelled directly", () => {
  const { chain, client, builder, contract, get } = setup()
  expectCode(
    chain.tx(client, 'works', 'call', { fn: 'create', args: contract('w1') }),
    null,
    'create via works',
  )
  for (const k of [client, builder])
    expectCode(chain.tx(k, 'works', 'call', { fn: 'sign', args: { id: 'w1' } }), null, 'sign via works')
  const worksAgreement = () =>
    chain.query('agreement', 'agreement', { id: 'w1', scope: 'works' }) as unknown as AgreementRecord
  expectCode(
    chain.tx(client, 'agreement', 'fund', { id: 'w1', amount: 100 }),
    'NO_SUCH_AGREEMENT',
    'fund directly',
  )
  assert.is(worksAgreement().funded, 0)
  expectCode(chain.tx(client, 'works', 'call', { fn: 'create', args: contract('w2') }), null, 'create w2')
  expectCode(chain.tx(client, 'agreement', 'cancel', { id: 'w2' }), 'NO_SUCH_AGREEMENT', 'cancel directly')
  assert.is(
    (chain.query('agreement', 'agreement', { id: 'w2', scope: 'works' }) as unknown as AgreementRecord)
      .status,
    'proposed',
  )
  assert.is(get('w1'), null, "the method's own namespace has no w1")
})

test('hole: an active agreement whose certifier is gone can be ended (every party, or one after endAt); the escrow goes back', () => {
  const { chain, client, builder, inspector, contract, balance, get } = setup()
  expectCode(chain.tx(client, 'agreement', 'create', contract('c1')), null, 'create')
  for (const k of [client, builder]) expectCode(chain.tx(k, 'agreement', 'sign', { id: 'c1' }), null, 'sign')
  expectCode(chain.tx(client, 'agreement', 'fund', { id: 'c1', amount: 1000 }), null, 'fund')
  expectCode(
    chain.tx(inspector, 'agreement', 'certify', { id: 'c1', milestone: 'foundation' }),
    null,
    'certify',
  )
  // The certifier disappears: 'roof' is never certified. Today the 400 left are locked for good.
  expectCode(
    chain.tx(inspector, 'agreement', 'terminate', { id: 'c1' }),
    'NOT_PARTY',
    'certifier is no party',
  )
  expectCode(chain.tx(builder, 'agreement', 'terminate', { id: 'c1' }), null, 'builder asks')
  expectCode(chain.tx(builder, 'agreement', 'terminate', { id: 'c1' }), 'ALREADY_SIGNED', 'asks once')
  assert.is(get('c1').status, 'active', 'one party alone does not end it before endAt')
  const before = balance(client)
  expectCode(chain.tx(client, 'agreement', 'terminate', { id: 'c1' }), null, 'client asks')
  assert.is(get('c1').status, 'terminated')
  assert.is(balance(client), before + 400, 'the unspent escrow goes back to its funder')
  assert.is(get('c1').returned, 400)
  expectCode(
    chain.tx(inspector, 'agreement', 'certify', { id: 'c1', milestone: 'roof' }),
    'BAD_STATE',
    'ended',
  )
  // With an end height, one party ends it alone from then on.
  const endAt = chain.height + 8
  expectCode(chain.tx(client, 'agreement', 'create', contract('c2', { endAt })), null, 'create c2')
  for (const k of [client, builder]) expectCode(chain.tx(k, 'agreement', 'sign', { id: 'c2' }), null, 'sign')
  expectCode(chain.tx(builder, 'agreement', 'fund', { id: 'c2', amount: 300 }), null, 'fund c2')
  assert.ok(chain.height < endAt)
  expectCode(chain.tx(client, 'agreement', 'terminate', { id: 'c2' }), null, 'client asks early')
  assert.is(get('c2').status, 'active')
  chain.advance(endAt - chain.height - 1)
  const b = balance(builder)
  expectCode(chain.tx(client, 'agreement', 'terminate', { id: 'c2' }), null, 'after endAt')
  assert.is(get('c2').status, 'terminated')
  assert.is(balance(builder), b + 300, "the builder's funding goes back to the builder")
  expectCode(
    chain.tx(client, 'agreement', 'create', contract('c3', { endAt: chain.height })),
    'BAD_HEIGHT',
    'endAt in the past',
  )
})

test('hole: agreement and hold ids belong to their owner: nobody takes an id a service will need', () => {
  const { chain, city, client, builder, contract, key } = setup()
  // A citizen takes 'w1' through the method; the works service still creates its own 'w1'.
  expectCode(chain.tx(builder, 'agreement', 'create', contract('w1')), null, 'citizen takes w1')
  expectCode(
    chain.tx(client, 'works', 'call', { fn: 'create', args: contract('w1') }),
    null,
    'works creates w1',
  )
  assert.is(
    (chain.query('agreement', 'agreement', { id: 'w1', scope: 'works' }) as unknown as AgreementRecord).scope,
    'works',
  )
  // Another controller of an asset takes the hold id agreement would use for its first funding of 'w2'.
  expectCode(
    chain.tx(city, 'token', 'createAsset', {
      asset: 'KRW2',
      decimals: 0,
      policy: 'open',
      controllers: ['agreement', 'squatter'],
      budgetPerPeriod: 0,
      periodBlocks: 1,
    }),
    null,
    'KRW2',
  )
  expectCode(
    chain.tx(city, 'identity', 'grantRole', { scope: 'token', role: 'issuer:KRW2', key: city.publicKey }),
    null,
    'issuer',
  )
  expectCode(
    chain.tx(city, 'token', 'mint', { asset: 'KRW2', to: client.publicKey, amount: 1000 }),
    null,
    'mint',
  )
  const squatter = key('squatter-owner')
  expectCode(
    chain.tx(city, 'token', 'mint', { asset: 'KRW2', to: squatter.publicKey, amount: 1 }),
    null,
    'mint',
  )
  expectCode(
    chain.tx(squatter, 'squatter', 'call', {
      fn: 'hold',
      args: { asset: 'KRW2', from: squatter.publicKey, amount: 1, holdId: 'agreement/w2/0' },
    }),
    null,
    'squat the hold id',
  )
  expectCode(chain.tx(client, 'agreement', 'create', contract('w2', { asset: 'KRW2' })), null, 'create w2')
  expectCode(chain.tx(client, 'agreement', 'fund', { id: 'w2', amount: 100 }), null, 'fund w2')
})

// ---- property test ----

test(`property: paid <= escrowed, payouts add up, active only when all signed (seed ${SEED})`, () => {
  const rng = new Rng(SEED)
  const { chain, key } = setup()
  const issuer = key('issuer')
  const people = Array.from({ length: 6 }, (_, i) => key(`p${i}`))
  for (const p of people)
    expectCode(
      chain.tx(issuer, 'token', 'mint', { asset: 'KRW', to: p.publicKey, amount: 5_000 }),
      null,
      'mint',
    )
  interface M {
    creator: string
    parties: string[]
    signed: Set<string>
    certifier: string
    milestones: Map<string, { amount: number; done: boolean; payouts: { to: Uint8Array; amount: number }[] }>
    status: string
    total: number
    funded: number
    paid: number
    holds: { from: string; amount: number }[]
  }
  const agr = new Map<string, M>()
  const bal = new Map(
    under(chain.state(), 'token/bal/KRW/').map(([k, v]) => [k.slice('token/bal/KRW/'.length), v as number]),
  )
  let seq = 0
  let txs = 0
  let ok = 0
  for (let b = 0; b < 420; b++) {
    const height = chain.height + 1
    const calls: TestCall[] = []
    const expected: (string | null)[] = []
    for (let n = rng.range(1, 6); n > 0; n--) {
      const op = rng.int(10)
      const signer = rng.pick(people)
      const sh = toHex(signer.publicKey)
      const id = seq > 0 && rng.chance(0.95) ? `a${rng.int(seq)}` : `a${seq}`
      const a = agr.get(id)
      let code: string | null = null
      if (op < 2) {
        const newId = `a${seq++}`
        const parties = rng.shuffle([...people]).slice(0, rng.range(1, 3))
        const certifier = rng.pick(people)
        const milestones = Array.from({ length: rng.range(1, 3) }, (_, i) => {
          const payouts = Array.from({ length: rng.range(1, 3) }, () => ({
            to: rng.pick(people).publicKey,
            amount: rng.range(1, 300),
          }))
          const sum = payouts.reduce((x, p) => x + p.amount, 0)
          return { id: `m${i}`, amount: rng.chance(0.1) ? sum + 1 : sum, payouts }
        })
        calls.push({
          key: signer,
          service: 'agreement',
          method: 'create',
          args: {
            id: newId,
            asset: 'KRW',
            parties: parties.map((p) => p.publicKey),
            certifier: certifier.publicKey,
            milestones,
          },
        })
        if (milestones.some((m) => m.amount !== m.payouts.reduce((x, p) => x + p.amount, 0)))
          code = 'PAYOUT_MISMATCH'
        else {
          agr.set(newId, {
            parties: parties.map((p) => toHex(p.publicKey)),
            signed: new Set(),
            certifier: toHex(certifier.publicKey),
            creator: sh,
            milestones: new Map(
              milestones.map((m) => [m.id, { amount: m.amount, done: false, payouts: m.payouts }]),
            ),
            status: 'proposed',
            total: milestones.reduce((x, m) => x + m.amount, 0),
            funded: 0,
            paid: 0,
            holds: [],
          })
        }
      } else if (op < 5) {
        const s =
          a && rng.chance(0.7)
            ? (people.find(
                (p) => a.parties.includes(toHex(p.publicKey)) && !a.signed.has(toHex(p.publicKey)),
              ) ?? signer)
            : signer
        const h = toHex(s.publicKey)
        calls.push({ key: s, service: 'agreement', method: 'sign', args: { id } })
        if (!a) code = 'NO_SUCH_AGREEMENT'
        else if (!a.parties.includes(h)) code = 'NOT_PARTY'
        else if (a.status !== 'proposed') code = 'BAD_STATE'
        else if (a.signed.has(h)) code = 'ALREADY_SIGNED'
        else {
          a.signed.add(h)
          if (a.signed.size === a.parties.length) a.status = 'active'
        }
      } else if (op < 7) {
        const party = a ? rng.pick(a.parties) : ''
        const s = a && rng.chance(0.8) ? people.find((p) => toHex(p.publicKey) === party)! : signer
        const h = toHex(s.publicKey)
        const amount =
          a && rng.chance(0.8)
            ? rng.chance(0.5)
              ? Math.max(1, a.total - a.funded)
              : rng.range(1, Math.max(1, a.total - a.funded))
            : rng.range(1, 2000)
        calls.push({ key: s, service: 'agreement', method: 'fund', args: { id, amount } })
        if (!a) code = 'NO_SUCH_AGREEMENT'
        else if (!a.parties.includes(h)) code = 'NOT_PARTY'
        else if (a.status !== 'proposed' && a.status !== 'active') code = 'BAD_STATE'
        else if (a.funded + amount > a.total) code = 'OVERFUNDED'
        else if (a.holds.length >= MAX_HOLDS) code = 'LIMIT'
        else if (bal.get(h)! < amount) code = 'INSUFFICIENT_FUNDS'
        else {
          a.funded += amount
          a.holds.push({ from: h, amount })
          bal.set(h, bal.get(h)! - amount)
        }
      } else if (op < 9) {
        const s = a && rng.chance(0.8) ? people.find((p) => toHex(p.publicKey) === a.certifier)! : signer
        const ms = a ? [...a.milestones.keys()] : ['m0']
        const mid = rng.chance(0.95) ? rng.pick(ms) : 'mx'
        calls.push({ key: s, service: 'agreement', method: 'certify', args: { id, milestone: mid } })
        const m = a?.milestones.get(mid)
        if (!a) code = 'NO_SUCH_AGREEMENT'
        else if (toHex(s.publicKey) !== a.certifier) code = 'UNAUTHORIZED'
        else if (a.status !== 'active') code = 'BAD_STATE'
        else if (!m) code = 'NO_SUCH_MILESTONE'
        else if (m.done) code = 'ALREADY_CERTIFIED'
        else if (a.funded - a.paid < m.amount) code = 'INSUFFICIENT_ESCROW'
        else {
          m.done = true
          a.paid += m.amount
          for (const p of m.payouts) bal.set(toHex(p.to), bal.get(toHex(p.to))! + p.amount)
          if ([...a.milestones.values()].every((x) => x.done)) a.status = 'completed'
        }
      } else {
        calls.push({ key: signer, service: 'agreement', method: 'cancel', args: { id } })
        if (!a) code = 'NO_SUCH_AGREEMENT'
        else if (!a.parties.includes(sh) && a.creator !== sh) code = 'UNAUTHORIZED'
        else if (a.status !== 'proposed') code = 'BAD_STATE'
        else {
          a.status = 'cancelled'
          // The escrow goes back to its funders.
          for (const f of a.holds) bal.set(f.from, bal.get(f.from)! + f.amount)
        }
      }
      expected.push(code)
    }
    const results = chain.block(calls)
    txs += results.length
    ok += expectCodes(results, expected, (i) => `seed ${SEED} height ${height} tx ${i} ${calls[i]!.method}`)
    const state = chain.state()
    let heldTotal = 0
    for (const [, v] of under(state, 'token/hold/')) heldTotal += (v as { remaining: number }).remaining
    let escrowTotal = 0
    for (const [k, v] of under(state, 'agreement/agr/')) {
      const a = v as unknown as AgreementRecord
      const m = agr.get(a.id)!
      assert.ok(
        a.paid <= a.funded && a.funded <= a.total,
        `seed ${SEED} ${k}: paid ${a.paid} <= funded ${a.funded} <= total ${a.total}`,
      )
      assert.is(
        a.paid,
        a.milestones.filter((x) => x.certifiedAt !== null).reduce((x, y) => x + y.amount, 0),
        `seed ${SEED} ${k}: paid = certified`,
      )
      for (const ms of a.milestones)
        assert.is(
          ms.payouts.reduce((x, p) => x + p.amount, 0),
          ms.amount,
          `seed ${SEED} ${k}: payouts add up`,
        )
      if (a.status === 'active' || a.status === 'completed')
        assert.ok(a.signed.every(Boolean), `seed ${SEED} ${k}: ${a.status} without every signature`)
      const remaining = a.holds.reduce(
        (x, h) => x + (state.get(`token/hold/agreement/${h.holdId}`) as { remaining: number }).remaining,
        0,
      )
      assert.is(
        remaining,
        a.funded - a.paid - a.returned,
        `seed ${SEED} ${k}: holds = funded - paid - returned`,
      )
      if (a.status === 'cancelled')
        assert.is(remaining, 0, `seed ${SEED} ${k}: a cancelled agreement holds nothing`)
      assert.is(a.funded, m.funded, `seed ${SEED} ${k}: funded`)
      assert.is(a.status, m.status, `seed ${SEED} ${k}: status`)
      assert.is(a.paid, m.paid, `seed ${SEED} ${k}: paid`)
      escrowTotal += remaining
    }
    assert.is(heldTotal, escrowTotal, `seed ${SEED}: every hold belongs to an agreement`)
    let balances = 0
    for (const [k, v] of under(state, 'token/bal/KRW/')) {
      balances += v as number
      const h = k.slice('token/bal/KRW/'.length)
      assert.is(v, bal.get(h), `seed ${SEED} height ${height}: balance of ${h.slice(0, 8)}`)
    }
    const sup = state.get('token/supply/KRW') as { minted: number; burned: number }
    assert.is(sup.minted - sup.burned, balances + heldTotal, `seed ${SEED}: supply conserved`)
  }
  const statuses = new Set([...agr.values()].map((a) => a.status))
  assert.ok(
    statuses.has('completed') && statuses.has('cancelled') && statuses.has('active'),
    `seed ${SEED}: the run reaches every status (${[...statuses]})`,
  )
  assert.ok(txs >= 1200, `enough txs (${txs})`)
  assert.ok(ok > txs / 5 && ok < txs, `a mix of accepted and refused txs (${ok}/${txs})`)
})

test.run()
