import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type KeyPair, type TxContext, type Value, defineService, s, toHex } from '@cityledger/core'
import { Rng, testSeed, type TestCall } from '@cityledger/core/testing'
import { baseChain, expectCode, expectCodes, under } from './base-fixtures.ts'

const SEED = testSeed(20261202)

/** Test controllers: they move funds through token's exports on behalf of the signer. */
function controller(svcName: string) {
  const call = (fn: string) => ({
    args: s.any(),
    handler(ctx: TxContext, a: Value) {
      const out = ctx.call('token', fn, a)
      if (out !== undefined) ctx.emit('out', out)
    },
  })
  return defineService({
    name: svcName,
    version: '1.0.0',
    dependencies: ['token'],
    methods: {
      mint: call('mint'),
      burn: call('burn'),
      transfer: call('transfer'),
      hold: call('hold'),
      release: call('release'),
      cancelHold: call('cancelHold'),
      balance: call('balance'),
      holdOf: call('holdOf'),
    },
  })
}

function setup() {
  const base = baseChain({ extra: [controller('escrow'), controller('other')] })
  const { chain, city, key } = base
  const issuer = key('issuer')
  for (const asset of ['KRW', 'GIFT', 'MILES']) {
    expectCode(
      chain.tx(city, 'identity', 'grantRole', {
        scope: 'token',
        role: `issuer:${asset}`,
        key: issuer.publicKey,
      }),
      null,
      `issuer ${asset}`,
    )
  }
  expectCode(
    chain.tx(city, 'token', 'createAsset', {
      asset: 'KRW',
      decimals: 0,
      policy: 'open',
      controllers: ['escrow'],
      budgetPerPeriod: 0,
      periodBlocks: 1,
    }),
    null,
    'KRW',
  )
  expectCode(
    chain.tx(city, 'token', 'createAsset', {
      asset: 'GIFT',
      decimals: 2,
      policy: 'allowlist',
      controllers: ['escrow'],
      budgetPerPeriod: 1000,
      periodBlocks: 10,
    }),
    null,
    'GIFT',
  )
  expectCode(
    chain.tx(city, 'token', 'createAsset', {
      asset: 'MILES',
      decimals: 0,
      policy: 'controlled',
      controllers: ['escrow'],
      budgetPerPeriod: 0,
      periodBlocks: 1,
    }),
    null,
    'MILES',
  )
  return { ...base, issuer }
}

const bal = (chain: ReturnType<typeof setup>['chain'], asset: string, k: KeyPair) =>
  chain.query('token', 'balance', { asset, owner: k.publicKey })

test('createAsset: token admin only; ASSET_EXISTS; BAD_ARGS', () => {
  const { chain, city, key } = setup()
  expectCode(
    chain.tx(key('x'), 'token', 'createAsset', {
      asset: 'X',
      decimals: 0,
      policy: 'open',
      controllers: [],
      budgetPerPeriod: 0,
      periodBlocks: 1,
    }),
    'UNAUTHORIZED',
    'not admin',
  )
  expectCode(
    chain.tx(city, 'token', 'createAsset', {
      asset: 'KRW',
      decimals: 0,
      policy: 'open',
      controllers: [],
      budgetPerPeriod: 0,
      periodBlocks: 1,
    }),
    'ASSET_EXISTS',
    'dup',
  )
  expectCode(
    chain.tx(city, 'token', 'createAsset', {
      asset: 'Y',
      decimals: 0,
      policy: 'weird',
      controllers: [],
      budgetPerPeriod: 0,
      periodBlocks: 1,
    }),
    'BAD_ARGS',
    'policy',
  )
  expectCode(
    chain.tx(city, 'token', 'createAsset', {
      asset: 'Y',
      decimals: 0,
      policy: 'open',
      controllers: [],
      budgetPerPeriod: 0,
      periodBlocks: 0,
    }),
    'BAD_ARGS',
    'period',
  )
  assert.equal((chain.query('token', 'asset', { asset: 'GIFT' }) as { policy: string }).policy, 'allowlist')
  assert.is(chain.query('token', 'asset', { asset: 'NOPE' }), null)
})

test('mint: issuer role per asset; period budget; NO_SUCH_ASSET; OVERFLOW', () => {
  const { chain, issuer, key } = setup()
  const alice = key('alice')
  expectCode(
    chain.tx(alice, 'token', 'mint', { asset: 'KRW', to: alice.publicKey, amount: 5 }),
    'UNAUTHORIZED',
    'not issuer',
  )
  expectCode(
    chain.tx(issuer, 'token', 'mint', { asset: 'NOPE', to: alice.publicKey, amount: 5 }),
    'UNAUTHORIZED',
    'no issuer role for an unknown asset',
  )
  expectCode(
    chain.tx(issuer, 'token', 'mint', { asset: 'KRW', to: alice.publicKey, amount: 0 }),
    'BAD_ARGS',
    'zero',
  )
  expectCode(
    chain.tx(issuer, 'token', 'mint', { asset: 'KRW', to: alice.publicKey, amount: 500 }),
    null,
    'mint',
  )
  assert.is(bal(chain, 'KRW', alice), 500)
  chain.advance(10 - (chain.height % 10)) // start of a GIFT period
  expectCode(
    chain.tx(issuer, 'token', 'mint', { asset: 'GIFT', to: alice.publicKey, amount: 600 }),
    null,
    'within budget',
  )
  expectCode(
    chain.tx(issuer, 'token', 'mint', { asset: 'GIFT', to: alice.publicKey, amount: 401 }),
    'BUDGET_EXCEEDED',
    'over budget',
  )
  expectCode(
    chain.tx(issuer, 'token', 'mint', { asset: 'GIFT', to: alice.publicKey, amount: 400 }),
    null,
    'exactly the budget',
  )
  chain.advance(10 - (chain.height % 10))
  expectCode(
    chain.tx(issuer, 'token', 'mint', { asset: 'GIFT', to: alice.publicKey, amount: 1000 }),
    null,
    'next period',
  )
  expectCode(
    chain.tx(issuer, 'token', 'mint', { asset: 'KRW', to: alice.publicKey, amount: Number.MAX_SAFE_INTEGER }),
    'OVERFLOW',
    'overflow',
  )
  assert.equal(chain.query('token', 'supply', { asset: 'GIFT' }), {
    minted: 2000,
    burned: 0,
    held: 0,
    supply: 2000,
  })
})

test('transfer and burn: policies, INSUFFICIENT_FUNDS, NOT_ALLOWLISTED, TRANSFER_FORBIDDEN', () => {
  const { chain, issuer, key } = setup()
  const [alice, bob] = [key('alice'), key('bob')]
  for (const asset of ['KRW', 'GIFT'])
    expectCode(chain.tx(issuer, 'token', 'mint', { asset, to: alice.publicKey, amount: 100 }), null, asset)
  // A controlled asset is minted and burned only by its controllers.
  expectCode(
    chain.tx(issuer, 'token', 'mint', { asset: 'MILES', to: alice.publicKey, amount: 100 }),
    'CONTROLLED_ASSET',
    'mint MILES',
  )
  expectCode(
    chain.tx(alice, 'escrow', 'mint', { asset: 'MILES', to: alice.publicKey, amount: 100 }),
    null,
    'MILES',
  )
  expectCode(
    chain.tx(alice, 'token', 'burn', { asset: 'MILES', amount: 1 }),
    'CONTROLLED_ASSET',
    'burn MILES',
  )
  expectCode(
    chain.tx(alice, 'token', 'transfer', { asset: 'KRW', to: bob.publicKey, amount: 101 }),
    'INSUFFICIENT_FUNDS',
    'too much',
  )
  expectCode(
    chain.tx(alice, 'token', 'transfer', { asset: 'KRW', to: bob.publicKey, amount: 40 }),
    null,
    'open',
  )
  expectCode(
    chain.tx(alice, 'token', 'transfer', { asset: 'NOPE', to: bob.publicKey, amount: 1 }),
    'NO_SUCH_ASSET',
    'no asset',
  )
  expectCode(
    chain.tx(alice, 'token', 'transfer', { asset: 'GIFT', to: bob.publicKey, amount: 1 }),
    'NOT_ALLOWLISTED',
    'not allowlisted',
  )
  expectCode(
    chain.tx(alice, 'token', 'setAllowlist', { asset: 'GIFT', key: bob.publicKey, allowed: true }),
    'UNAUTHORIZED',
    'allowlist by non-issuer',
  )
  expectCode(
    chain.tx(issuer, 'token', 'setAllowlist', { asset: 'GIFT', key: bob.publicKey, allowed: true }),
    null,
    'allowlist',
  )
  assert.is(chain.query('token', 'allowed', { asset: 'GIFT', key: bob.publicKey }), true)
  expectCode(
    chain.tx(alice, 'token', 'transfer', { asset: 'GIFT', to: bob.publicKey, amount: 10 }),
    null,
    'allowlisted',
  )
  expectCode(
    chain.tx(issuer, 'token', 'setAllowlist', { asset: 'GIFT', key: bob.publicKey, allowed: false }),
    null,
    'unlist',
  )
  expectCode(
    chain.tx(alice, 'token', 'transfer', { asset: 'GIFT', to: bob.publicKey, amount: 10 }),
    'NOT_ALLOWLISTED',
    'unlisted again',
  )
  expectCode(
    chain.tx(alice, 'token', 'transfer', { asset: 'MILES', to: bob.publicKey, amount: 1 }),
    'TRANSFER_FORBIDDEN',
    'controlled',
  )
  expectCode(
    chain.tx(bob, 'token', 'burn', { asset: 'KRW', amount: 41 }),
    'INSUFFICIENT_FUNDS',
    'burn too much',
  )
  expectCode(chain.tx(bob, 'token', 'burn', { asset: 'KRW', amount: 40 }), null, 'burn')
  assert.is(bal(chain, 'KRW', bob), 0)
  assert.not.ok(chain.state().has(`token/bal/KRW/${toHex(bob.publicKey)}`), 'zero balances are deleted')
  assert.equal(chain.query('token', 'supply', { asset: 'KRW' }), {
    minted: 100,
    burned: 40,
    held: 0,
    supply: 60,
  })
})

test('exports: controllers only; hold, release, cancelHold; HOLD_EXISTS, NO_SUCH_HOLD, HOLD_EXCEEDED', () => {
  const { chain, key } = setup()
  const [alice, bob] = [key('alice'), key('bob')]
  expectCode(
    chain.tx(alice, 'escrow', 'mint', { asset: 'MILES', to: alice.publicKey, amount: 100 }),
    null,
    'mint',
  )
  expectCode(
    chain.tx(alice, 'other', 'transfer', {
      asset: 'MILES',
      from: alice.publicKey,
      to: bob.publicKey,
      amount: 1,
    }),
    'UNAUTHORIZED',
    'not a controller',
  )
  expectCode(
    chain.tx(alice, 'escrow', 'transfer', {
      asset: 'MILES',
      from: alice.publicKey,
      to: bob.publicKey,
      amount: 10,
    }),
    null,
    'controller moves a controlled asset',
  )
  expectCode(
    chain.tx(alice, 'escrow', 'mint', { asset: 'MILES', to: bob.publicKey, amount: 5 }),
    null,
    'controller mints',
  )
  expectCode(
    chain.tx(alice, 'escrow', 'burn', { asset: 'MILES', from: bob.publicKey, amount: 15 }),
    null,
    'controller burns',
  )
  expectCode(
    chain.tx(alice, 'escrow', 'hold', { asset: 'MILES', from: alice.publicKey, amount: 91, holdId: 'h1' }),
    'INSUFFICIENT_FUNDS',
    'hold too much',
  )
  expectCode(
    chain.tx(alice, 'escrow', 'hold', { asset: 'MILES', from: alice.publicKey, amount: 50, holdId: 'h1' }),
    null,
    'hold',
  )
  expectCode(
    chain.tx(alice, 'escrow', 'hold', { asset: 'MILES', from: alice.publicKey, amount: 1, holdId: 'h1' }),
    'HOLD_EXISTS',
    'dup hold',
  )
  assert.is(bal(chain, 'MILES', alice), 40)
  assert.equal(chain.query('token', 'hold', { owner: 'escrow', holdId: 'h1' }), {
    asset: 'MILES',
    from: alice.publicKey,
    owner: 'escrow',
    amount: 50,
    remaining: 50,
  })
  expectCode(
    chain.tx(alice, 'other', 'release', { holdId: 'h1', to: bob.publicKey, amount: 1 }),
    'NO_SUCH_HOLD',
    'holds are per owner: other has no hold h1',
  )
  expectCode(
    chain.tx(alice, 'escrow', 'release', { holdId: 'h1', to: bob.publicKey, amount: 51 }),
    'HOLD_EXCEEDED',
    'over hold',
  )
  expectCode(
    chain.tx(alice, 'escrow', 'release', { holdId: 'h1', to: bob.publicKey, amount: 20 }),
    null,
    'release',
  )
  expectCode(
    chain.tx(alice, 'escrow', 'release', { holdId: 'nope', to: bob.publicKey, amount: 1 }),
    'NO_SUCH_HOLD',
    'no hold',
  )
  const r = chain.tx(alice, 'escrow', 'cancelHold', { holdId: 'h1' })
  expectCode(r, null, 'cancel')
  assert.equal(r.events.find((e) => e.name === 'out')?.data, 30)
  assert.is(bal(chain, 'MILES', alice), 70)
  assert.is(bal(chain, 'MILES', bob), 20)
  expectCode(
    chain.tx(alice, 'escrow', 'release', { holdId: 'h1', to: bob.publicKey, amount: 1 }),
    'HOLD_EXCEEDED',
    'empty hold',
  )
  expectCode(
    chain.tx(alice, 'escrow', 'hold', { asset: 'MILES', from: alice.publicKey, amount: 1, holdId: 'h1' }),
    'HOLD_EXISTS',
    'a holdId is never reused',
  )
  expectCode(
    chain.tx(alice, 'escrow', 'mint', { asset: 'MILES', to: 'bob', amount: 5 }),
    'BAD_ARGS',
    'bad args',
  )
  expectCode(chain.tx(alice, 'escrow', 'holdOf', { holdId: 'h1' }), null, 'holdOf')
  assert.equal(chain.query('token', 'supply', { asset: 'MILES' }), {
    minted: 105,
    burned: 15,
    held: 0,
    supply: 90,
  })
})

// ---- property test: random mints, burns, transfers and escrow against a model ----

test(`property: supply is conserved and no balance goes negative over random txs (seed ${SEED})`, () => {
  const rng = new Rng(SEED)
  const { chain, city, issuer, key } = setup()
  const users = Array.from({ length: 8 }, (_, i) => key(`u${i}`))
  const everyone = [city, issuer, ...users]
  const assets = {
    KRW: { policy: 'open', budget: 0, period: 1 },
    GIFT: { policy: 'allowlist', budget: 1000, period: 10 },
    MILES: { policy: 'controlled', budget: 0, period: 1 },
  } as const
  type A = keyof typeof assets
  const names = Object.keys(assets) as A[]
  const bal = new Map<string, number>() // asset|hex
  const holds = new Map<string, { asset: A; from: string; owner: string; remaining: number }>()
  const minted = new Map<string, number>(names.map((a) => [a, 0]))
  const burned = new Map<string, number>(names.map((a) => [a, 0]))
  const periodMinted = new Map<string, { period: number; n: number }>()
  const allow = new Set<string>()
  const get = (a: string, h: string) => bal.get(`${a}|${h}`) ?? 0
  const put = (a: string, h: string, v: number) =>
    v === 0 ? bal.delete(`${a}|${h}`) : bal.set(`${a}|${h}`, v)
  let holdSeq = 0
  let txs = 0
  let ok = 0
  for (let b = 0; b < 400; b++) {
    const height = chain.height + 1
    const calls: TestCall[] = []
    const expected: (string | null)[] = []
    for (let n = rng.range(1, 8); n > 0; n--) {
      const signer = rng.chance(0.25) ? issuer : rng.pick(everyone)
      const sh = toHex(signer.publicKey)
      const to = rng.pick(everyone)
      const th = toHex(to.publicKey)
      const asset = rng.pick(names)
      const def = assets[asset]
      const amount = rng.chance(0.03) ? 0 : rng.range(1, rng.chance(0.8) ? 30 : 400)
      const op = [0, 0, 0, 1, 2, 3, 4, 5, 6, 6, 7, 7, 8][rng.int(13)]!
      let call: { service: string; method: string; args: Value }
      let code: string | null = null
      const spend = (from: string) => {
        if (get(asset, from) < amount) return 'INSUFFICIENT_FUNDS'
        put(asset, from, get(asset, from) - amount)
        return null
      }
      if (amount === 0 && op !== 5 && op !== 8) code = 'BAD_ARGS'
      if (op === 0) {
        // A controlled asset is minted through its controller (the token method refuses it).
        const viaController = def.policy === 'controlled' && !rng.chance(0.2)
        call = viaController
          ? { service: 'escrow', method: 'mint', args: { asset, to: to.publicKey, amount } }
          : { service: 'token', method: 'mint', args: { asset, to: to.publicKey, amount } }
        if (code) {
        } else if (!viaController && signer !== issuer) code = 'UNAUTHORIZED'
        else if (!viaController && def.policy === 'controlled') code = 'CONTROLLED_ASSET'
        else {
          const period = Math.floor(height / def.period)
          const pm = periodMinted.get(asset)
          const used = pm && pm.period === period ? pm.n : 0
          if (def.budget > 0 && used + amount > def.budget) code = 'BUDGET_EXCEEDED'
          else {
            periodMinted.set(asset, { period, n: used + amount })
            minted.set(asset, minted.get(asset)! + amount)
            put(asset, th, get(asset, th) + amount)
          }
        }
      } else if (op === 1) {
        call = { service: 'token', method: 'burn', args: { asset, amount } }
        if (!code && def.policy === 'controlled') code = 'CONTROLLED_ASSET'
        if (!code && !(code = spend(sh))) burned.set(asset, burned.get(asset)! + amount)
      } else if (op === 2 || op === 3) {
        call = { service: 'token', method: 'transfer', args: { asset, to: to.publicKey, amount } }
        if (code) {
        } else if (def.policy === 'controlled') code = 'TRANSFER_FORBIDDEN'
        else if (def.policy === 'allowlist' && !allow.has(`${asset}|${th}`)) code = 'NOT_ALLOWLISTED'
        else if (!(code = spend(sh))) put(asset, th, get(asset, th) + amount)
      } else if (op === 4) {
        const svc = rng.chance(0.85) ? 'escrow' : 'other'
        call = {
          service: svc,
          method: 'transfer',
          args: { asset, from: signer.publicKey, to: to.publicKey, amount },
        }
        if (code) {
        } else if (svc !== 'escrow') code = 'UNAUTHORIZED'
        else if (!(code = spend(sh))) put(asset, th, get(asset, th) + amount)
      } else if (op === 5) {
        const allowed = rng.chance(0.7)
        call = { service: 'token', method: 'setAllowlist', args: { asset, key: to.publicKey, allowed } }
        code = null
        if (signer !== issuer) code = 'UNAUTHORIZED'
        else if (allowed) allow.add(`${asset}|${th}`)
        else allow.delete(`${asset}|${th}`)
      } else if (op === 6) {
        const holdId = rng.chance(0.1) && holdSeq > 0 ? `h${rng.int(holdSeq)}` : `h${holdSeq++}`
        const svc = rng.chance(0.85) ? 'escrow' : 'other'
        call = { service: svc, method: 'hold', args: { asset, from: signer.publicKey, amount, holdId } }
        if (code) {
        } else if (svc !== 'escrow') code = 'UNAUTHORIZED'
        else if (holds.has(holdId)) code = 'HOLD_EXISTS'
        else if (!(code = spend(sh))) holds.set(holdId, { asset, from: sh, owner: svc, remaining: amount })
      } else {
        const holdId = holdSeq > 0 ? `h${rng.int(holdSeq + 1)}` : 'h0'
        const h = holds.get(holdId)
        const svc = rng.chance(0.9) ? 'escrow' : 'other'
        if (op === 7) {
          const n = h && amount > 0 && rng.chance(0.7) ? rng.range(1, Math.max(1, h.remaining)) : amount
          call = { service: svc, method: 'release', args: { holdId, to: to.publicKey, amount: n } }
          code = n === 0 ? 'BAD_ARGS' : null
          if (code) {
          } else if (!h || svc !== h.owner) code = 'NO_SUCH_HOLD'
          else if (n > h.remaining) code = 'HOLD_EXCEEDED'
          else {
            h.remaining -= n
            put(h.asset, th, get(h.asset, th) + n)
          }
        } else {
          call = { service: svc, method: 'cancelHold', args: { holdId } }
          code = null
          if (!h || svc !== h.owner) code = 'NO_SUCH_HOLD'
          else {
            put(h.asset, h.from, get(h.asset, h.from) + h.remaining)
            h.remaining = 0
          }
        }
      }
      calls.push({ key: signer, ...call })
      expected.push(code)
    }
    const results = chain.block(calls)
    txs += results.length
    ok += expectCodes(
      results,
      expected,
      (i) => `seed ${SEED} height ${height} tx ${i} ${calls[i]!.service}.${calls[i]!.method}`,
    )
    // Invariants, from the raw state only.
    const state = chain.state()
    for (const a of names) {
      let balances = 0
      for (const [k, v] of under(state, `token/bal/${a}/`)) {
        assert.ok(
          typeof v === 'number' && Number.isSafeInteger(v) && v > 0,
          `seed ${SEED}: balance ${k} = ${v}`,
        )
        balances += v as number
        assert.is(v, get(a, k.slice(`token/bal/${a}/`.length)), `seed ${SEED}: ${k} matches the model`)
      }
      let held = 0
      for (const [, v] of under(state, 'token/hold/')) {
        const h = v as { asset: string; remaining: number }
        assert.ok(
          Number.isSafeInteger(h.remaining) && h.remaining >= 0,
          `seed ${SEED}: hold remaining ${h.remaining}`,
        )
        if (h.asset === a) held += h.remaining
      }
      const sup = state.get(`token/supply/${a}`) as { minted: number; burned: number; held: number }
      assert.is(
        sup.minted - sup.burned,
        balances + held,
        `seed ${SEED} height ${height}: ${a} minted - burned = balances + holds`,
      )
      assert.is(sup.held, held, `seed ${SEED}: ${a} held counter`)
      assert.is(sup.minted, minted.get(a), `seed ${SEED}: ${a} minted`)
      assert.is(sup.burned, burned.get(a), `seed ${SEED}: ${a} burned`)
    }
    assert.is([...bal.keys()].length, under(state, 'token/bal/').length, `seed ${SEED}: no stray balances`)
  }
  assert.ok(txs >= 1500, `enough txs (${txs})`)
  assert.ok(ok > txs / 4 && ok < txs, `a mix of accepted and refused txs (${ok}/${txs})`)
})

test.run()
