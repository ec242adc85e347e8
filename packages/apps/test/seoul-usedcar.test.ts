import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  type KeyPair,
  type TxResult,
  type Value,
  concatBytes,
  generateKeyPair,
  sha256,
  toHex,
  utf8,
} from '@cityledger/core'
import { Rng, createTestChain, seedFor, testSeed } from '@cityledger/core/testing'
import { baseServices, vehicleIdOf } from '../src/base/index.ts'
import { MAX_ODOMETER, usedcar } from '../src/seoul/index.ts'

const SEED = testSeed(20261209)

const k = (label: string): KeyPair => generateKeyPair(seedFor(label))
const key = (label: string) => k(label).publicKey
const h = (label: string | number) => sha256(utf8.encode(`seoul-usedcar/${label}`))
/** A salted VIN commitment, as a dealer computes it off chain: SHA-256(salt || VIN). */
const vin = (v: string) => sha256(concatBytes(h(`salt/${v}`), utf8.encode(v)))

function expect(r: TxResult, code: string | null, what: string): void {
  assert.is(
    r.code,
    code,
    `${what}: expected ${code ?? 'success'}, got ${r.code ?? 'success'} (${r.message ?? ''})`,
  )
}

const CAR = vin('KMHxx41DBLU000001')

function setup(genesis: Value = { inspectionValidityBlocks: 10, offerValidityBlocks: 5 }) {
  const chain = createTestChain({
    services: [...baseServices, usedcar],
    genesis: {
      identity: {
        admins: [{ key: key('city'), scopes: ['*'] }],
        roles: [
          { scope: 'usedcar', role: 'dealer', key: key('dealer-a') },
          { scope: 'usedcar', role: 'dealer', key: key('dealer-b') },
          { scope: 'usedcar', role: 'inspector', key: key('inspector') },
          { scope: 'usedcar', role: 'inspector', key: key('inspector-2') },
          { scope: 'usedcar', role: 'insurer', key: key('insurer') },
          { scope: 'usedcar', role: 'registrar', key: key('registry') },
        ],
      },
      usedcar: genesis,
    },
  })
  const tx = (who: string, method: string, args: Value) => chain.tx(k(who), 'usedcar', method, args)
  const q = (name: string, args: Value) => chain.query('usedcar', name, args) as any
  const car = (v = CAR) => q('vehicle', { vehicle: v })
  const history = (v = CAR) => q('history', { vehicle: v }) as any[]
  /** The vehicle registry registers a vehicle id (once; later calls change nothing). */
  const register = (v: Uint8Array) => {
    if (!q('registered', { vehicle: v })) expect(tx('registry', 'register', { vehicle: v }), null, 'register')
  }
  const purchase = (odometer = 42_000, who = 'dealer-a', v = CAR) => {
    register(v)
    return tx(who, 'purchase', { vehicle: v, odometer, report: h('bill-of-sale') })
  }
  const inspect = (odometer: number, passed = true, who = 'inspector', v = CAR) =>
    tx(who, 'inspect', { vehicle: v, odometer, report: h(`inspection-${odometer}`), passed })
  const offer = (buyer: string, odometer: number, who = 'dealer-a', v = CAR) =>
    tx(who, 'offer', { vehicle: v, buyer: key(buyer), odometer, price: h('price') })
  return { chain, tx, q, car, history, register, purchase, inspect, offer }
}

test('genesis config is checked', () => {
  const { q } = setup({})
  assert.equal(q('config', {}), { inspectionValidityBlocks: 1000, offerValidityBlocks: 100 })
  assert.throws(() => setup({ inspectionValidityBlocks: 0 }), /inspectionValidityBlocks/)
  assert.throws(() => setup({ offerValidityBlocks: 'soon' }), /offerValidityBlocks/)
})

test('purchase: dealers only; a vehicle enters the system once; a commitment, not a VIN', () => {
  const { tx, car, history, purchase } = setup()
  expect(purchase(42_000, 'inspector'), 'UNAUTHORIZED', 'inspector purchases')
  expect(purchase(42_000, 'citizen'), 'UNAUTHORIZED', 'citizen purchases')
  expect(
    tx('dealer-a', 'purchase', { vehicle: utf8.encode('KMHxx41DBLU000001'), odometer: 1 }),
    'BAD_ARGS',
    'a raw VIN is not a 32-byte commitment',
  )
  expect(purchase(MAX_ODOMETER + 1), 'BAD_ARGS', 'absurd odometer')
  expect(purchase(), null, 'purchase')
  expect(purchase(50_000, 'dealer-b'), 'ALREADY_REGISTERED', 'second purchase of a known vehicle')
  const v = car()
  assert.equal(v.holder, key('dealer-a'))
  assert.is(v.odometer, 42_000)
  assert.is(v.entries, 1)
  assert.is(v.saleable, false)
  const [e] = history()
  assert.is(e.kind, 'purchase')
  assert.equal(e.by, key('dealer-a'))
  assert.is(car(vin('other')), null)
  assert.equal(history(vin('other')), [])
})

test('inspect: licensed inspectors only, never the holder; odometer never goes back', () => {
  const { chain, car, purchase, inspect } = setup()
  expect(inspect(42_100), 'NOT_FOUND', 'unknown vehicle')
  expect(purchase(), null, 'purchase')
  expect(inspect(42_100, true, 'dealer-b'), 'UNAUTHORIZED', 'dealer inspects')
  expect(inspect(42_100, true, 'insurer'), 'UNAUTHORIZED', 'insurer inspects')
  expect(inspect(41_999), 'ODOMETER_ROLLBACK', 'lower reading')
  expect(inspect(42_000), null, 'same reading is fine')
  expect(inspect(42_100), null, 'higher reading')
  assert.is(car().odometer, 42_100)
  // An inspector that holds the car may not inspect it.
  expect(
    chain.tx(k('city'), 'identity', 'grantRole', {
      scope: 'usedcar',
      role: 'inspector',
      key: key('dealer-a'),
    }),
    null,
    'grant',
  )
  expect(inspect(42_200, true, 'dealer-a'), 'CONFLICT_OF_INTEREST', 'holder inspects')
})

test('accident: insurers only; withdraws the car from sale; total loss is final', () => {
  const { tx, car, history, purchase, inspect, offer } = setup()
  expect(purchase(), null, 'purchase')
  const crash = (severity: string, who = 'insurer', odometer?: number) =>
    tx(who, 'accident', {
      vehicle: CAR,
      severity,
      report: h(`claim-${severity}`),
      ...(odometer === undefined ? {} : { odometer }),
    })
  expect(crash('minor', 'inspector'), 'UNAUTHORIZED', 'inspector reports an accident')
  expect(crash('minor', 'dealer-a'), 'UNAUTHORIZED', 'dealer reports an accident')
  expect(crash('fender-bender'), 'BAD_ARGS', 'unknown severity')
  expect(inspect(42_500), null, 'inspect')
  expect(tx('dealer-a', 'list', { vehicle: CAR }), null, 'list')
  expect(offer('citizen', 42_500), null, 'offer')
  expect(crash('minor', 'insurer', 42_000), 'ODOMETER_ROLLBACK', 'accident with a lower reading')
  expect(crash('minor'), null, 'accident (reading unchanged)')
  const v = car()
  assert.is(v.listed, false)
  assert.is(v.offer, null)
  assert.is(v.saleable, false)
  assert.match(v.notSaleableBecause, /accident/)
  expect(tx('citizen', 'accept', { vehicle: CAR }), 'NO_OFFER', 'the offer died with the accident')
  expect(inspect(42_600), null, 're-inspection')
  assert.is(car().saleable, true)
  expect(crash('total-loss', 'insurer', 42_700), null, 'total loss')
  expect(inspect(42_700), null, 'inspection after a total loss')
  assert.is(car().saleable, false)
  expect(tx('dealer-a', 'list', { vehicle: CAR }), 'INSPECTION_REQUIRED', 'a total loss is never listed')
  assert.equal(
    history().map((e) => e.kind),
    ['purchase', 'inspection', 'accident', 'inspection', 'accident', 'inspection'],
  )
  assert.is(history()[2].severity, 'minor')
})

test('meterSwap: inspectors only; the new meter may read lower; distance keeps growing; re-inspection needed', () => {
  const { tx, car, history, purchase, inspect } = setup()
  expect(purchase(180_000), null, 'purchase')
  expect(inspect(180_500), null, 'inspect')
  const swap = (oldReading: number, newReading: number, who = 'inspector') =>
    tx(who, 'meterSwap', { vehicle: CAR, oldReading, newReading, report: h('work-order') })
  expect(swap(181_000, 0, 'dealer-a'), 'UNAUTHORIZED', 'dealer swaps the meter')
  expect(swap(181_000, 0, 'insurer'), 'UNAUTHORIZED', 'insurer swaps the meter')
  expect(swap(180_000, 0), 'ODOMETER_ROLLBACK', "old meter's final reading below the record")
  expect(inspect(10), 'ODOMETER_ROLLBACK', 'a lower reading without a swap')
  expect(swap(181_000, 12), null, 'swap')
  let v = car()
  assert.is(v.odometer, 12)
  assert.is(v.distanceBase, 181_000)
  assert.is(v.distance, 181_012)
  assert.is(v.saleable, false, 'the swap needs an inspection before sale')
  expect(inspect(11), 'ODOMETER_ROLLBACK', 'the new meter never goes back either')
  expect(inspect(300), null, 'inspect the new meter')
  v = car()
  assert.is(v.distance, 181_300)
  assert.is(v.saleable, true)
  const e = history()[2]
  assert.is(e.kind, 'meterSwap')
  assert.is(e.oldReading, 181_000)
  assert.is(e.odometer, 12)
})

test('list and offer: the holder only, with a fresh passed inspection', () => {
  const { chain, tx, car, purchase, inspect, offer } = setup()
  expect(purchase(), null, 'purchase')
  expect(tx('dealer-a', 'list', { vehicle: CAR }), 'INSPECTION_REQUIRED', 'never inspected')
  expect(offer('citizen', 42_000), 'INSPECTION_REQUIRED', 'offer without an inspection')
  expect(inspect(42_010, false), null, 'failed inspection')
  expect(tx('dealer-a', 'list', { vehicle: CAR }), 'INSPECTION_REQUIRED', 'failed inspection')
  expect(inspect(42_020), null, 'passed inspection')
  expect(tx('dealer-b', 'list', { vehicle: CAR }), 'NOT_HOLDER', 'another dealer lists')
  expect(offer('citizen', 42_020, 'dealer-b'), 'NOT_HOLDER', 'another dealer offers')
  expect(offer('dealer-a', 42_020), 'SELF_SALE', 'offer to oneself')
  expect(offer('citizen', 42_019), 'ODOMETER_ROLLBACK', 'offer declares a lower reading')
  expect(tx('dealer-a', 'list', { vehicle: CAR }), null, 'list')
  assert.is(car().listed, true)
  expect(inspect(42_030, false), null, 'a failed inspection withdraws the listing')
  assert.is(car().listed, false)
  expect(inspect(42_040), null, 'pass again')
  // Passed at height P: valid for list/offer at heights < P + 10. The next tx runs at P + 9.
  chain.advance(8)
  expect(tx('dealer-a', 'list', { vehicle: CAR }), null, 'last block of validity')
  expect(tx('dealer-a', 'list', { vehicle: CAR }), 'INSPECTION_REQUIRED', 'inspection too old')
  expect(tx('dealer-a', 'withdraw', { vehicle: CAR }), null, 'withdraw')
  expect(tx('dealer-b', 'withdraw', { vehicle: CAR }), 'NOT_HOLDER', 'another dealer withdraws')
})

test('accept: the named buyer, before the offer expires, while the inspection still holds', () => {
  const { chain, tx, car, history, purchase, inspect, offer } = setup()
  expect(purchase(), null, 'purchase')
  expect(tx('citizen', 'accept', { vehicle: CAR }), 'NO_OFFER', 'nothing offered')
  expect(inspect(42_100), null, 'inspect')
  expect(offer('citizen', 42_150), null, 'offer')
  expect(tx('citizen-2', 'accept', { vehicle: CAR }), 'NOT_BUYER', 'another buyer')
  chain.advance(4)
  expect(tx('citizen', 'accept', { vehicle: CAR }), 'OFFER_EXPIRED', 'offer too old')
  expect(inspect(42_200), null, 'inspect again')
  expect(offer('citizen', 42_200), null, 'offer again')
  // The inspection goes stale while the offer is still open: the sale is refused.
  chain.advance(4)
  expect(offer('citizen', 42_200), null, 'renewed offer, inspection 5 blocks old')
  // Inspected at I: the offer renewed at I+6 is open until I+11, the inspection stale from I+10.
  chain.advance(3)
  expect(
    tx('citizen', 'accept', { vehicle: CAR }),
    'INSPECTION_REQUIRED',
    'inspection went stale under the offer',
  )
  expect(inspect(42_300), null, 'inspect')
  expect(offer('citizen', 42_300), null, 'offer')
  expect(tx('citizen', 'accept', { vehicle: CAR }), null, 'accept')
  const v = car()
  assert.equal(v.holder, key('citizen'))
  assert.is(v.offer, null)
  assert.is(v.odometer, 42_300)
  const sale = history().at(-1)
  assert.is(sale.kind, 'sale')
  assert.equal(sale.from, key('dealer-a'))
  assert.equal(sale.to, key('citizen'))
  expect(offer('citizen-2', 42_300), 'NOT_HOLDER', 'the seller no longer holds it')
  expect(tx('citizen', 'accept', { vehicle: CAR }), 'NO_OFFER', 'accept twice')
})

test('scenario: dealer to citizen to dealer, with an accident and a meter swap on record', () => {
  const { chain, tx, car, history, register } = setup({
    inspectionValidityBlocks: 50,
    offerValidityBlocks: 10,
  })
  const car2 = vin('KNAxx81ABCD000777')
  register(car2)
  const step = (who: string, method: string, args: Record<string, Value>) =>
    expect(tx(who, method, { vehicle: car2, ...args }), null, `${who} ${method}`)
  step('dealer-a', 'purchase', { odometer: 31_000, report: h('auction') })
  step('inspector', 'inspect', { odometer: 31_020, report: h('i1'), passed: true })
  step('dealer-a', 'list', {})
  step('dealer-a', 'offer', { buyer: key('citizen'), odometer: 31_050, price: h('price-1') })
  step('citizen', 'accept', {})
  chain.advance(5)
  step('insurer', 'accident', { severity: 'major', report: h('claim-77'), odometer: 35_000 })
  step('inspector-2', 'meterSwap', { oldReading: 35_100, newReading: 5, report: h('cluster-replacement') })
  step('inspector', 'inspect', { odometer: 400, report: h('i2'), passed: true })
  step('citizen', 'offer', { buyer: key('dealer-b'), odometer: 420 })
  step('dealer-b', 'accept', {})
  const v = car(car2)
  assert.equal(v.holder, key('dealer-b'))
  assert.is(v.distance, 35_100 + 420)
  assert.equal(
    history(car2).map((e) => e.kind),
    ['purchase', 'inspection', 'sale', 'accident', 'meterSwap', 'inspection', 'sale'],
  )
  // No personal data: every stored byte string is a key or a hash; no free text besides the enums.
  for (const [k, val] of chain.state()) {
    if (!k.startsWith('usedcar/hist/') && !k.startsWith('usedcar/car/')) continue
    for (const [f, x] of Object.entries(val as Record<string, Value>)) {
      if (x instanceof Uint8Array) assert.is(x.length, 32, `${k}.${f}`)
      if (typeof x === 'string') assert.ok(['kind', 'severity'].includes(f), `free text in ${k}.${f}`)
    }
  }
})

test(`property: odometer monotone except across meter swaps; history append-only (seed ${SEED})`, () => {
  const rng = new Rng(SEED)
  const { tx, q, register } = setup({ inspectionValidityBlocks: 40, offerValidityBlocks: 15 })
  const cars = [vin('A'), vin('B'), vin('C')]
  for (const c of cars) register(c)
  const people = ['dealer-a', 'dealer-b', 'inspector', 'inspector-2', 'insurer', 'citizen', 'citizen-2']
  const seen = new Map<string, string[]>()
  const reading = new Map<string, number>()
  const json = (v: Value) => JSON.stringify(v, (_, x) => (x instanceof Uint8Array ? toHex(x) : x))
  let appended = 0
  for (let step = 0; step < 500; step++) {
    const vehicle = rng.pick(cars)
    const cur = q('vehicle', { vehicle })
    const base = cur?.odometer ?? rng.range(0, 100_000)
    // Readings mostly go up, sometimes down (must be refused unless it is a swap's new meter).
    const next = Math.max(0, base + (rng.chance(0.8) ? rng.range(0, 2_000) : -rng.range(1, 500)))
    const who = rng.pick(people)
    const holderLabel = cur ? (people.find((p) => toHex(key(p)) === toHex(cur.holder)) ?? 'x') : 'dealer-a'
    let r: TxResult
    const inspector = rng.chance(0.8) ? rng.pick(['inspector', 'inspector-2']) : who
    switch (rng.int(12)) {
      case 0:
        r = tx(rng.chance(0.7) ? rng.pick(['dealer-a', 'dealer-b']) : who, 'purchase', {
          vehicle,
          odometer: next,
        })
        break
      case 1:
      case 2:
      case 3:
        r = tx(inspector, 'inspect', { vehicle, odometer: next, report: h(step), passed: rng.chance(0.9) })
        break
      case 4:
        r = tx(rng.chance(0.7) ? 'insurer' : who, 'accident', {
          vehicle,
          severity: rng.chance(0.03) ? 'total-loss' : rng.pick(['minor', 'major']),
          report: h(step),
          odometer: next,
        })
        break
      case 5:
        r = tx(inspector, 'meterSwap', {
          vehicle,
          oldReading: next,
          newReading: rng.range(0, 50),
          report: h(step),
        })
        break
      case 6:
        r = tx(rng.chance(0.8) ? holderLabel : who, rng.pick(['list', 'withdraw']), { vehicle })
        break
      case 7:
      case 8:
        r = tx(rng.chance(0.8) ? holderLabel : who, 'offer', {
          vehicle,
          buyer: key(rng.pick(people)),
          odometer: next,
        })
        break
      default: {
        const buyer = cur?.offer ? people.find((p) => toHex(key(p)) === toHex(cur.offer.buyer)) : undefined
        r = tx(buyer && rng.chance(0.8) ? buyer : who, 'accept', { vehicle })
      }
    }
    assert.not.equal(r.code, 'INTERNAL', `seed ${SEED} step ${step}: ${r.message}`)
    for (const v of cars) {
      const at = `seed ${SEED} step ${step} car ${toHex(v).slice(0, 8)}`
      const rec = q('vehicle', { vehicle: v })
      const hist = q('history', { vehicle: v }) as Record<string, Value>[]
      const before = seen.get(toHex(v)) ?? []
      const now = hist.map(json)
      assert.ok(now.length - before.length <= 1, `${at}: more than one entry in a tx`)
      for (const [i, e] of before.entries()) assert.is(now[i], e, `${at}: entry ${i} changed`)
      appended += now.length - before.length
      seen.set(toHex(v), now)
      if (!rec) continue
      assert.is(rec.entries, hist.length, `${at}: entry count`)
      for (let i = 1; i < hist.length; i++) {
        const prev = hist[i - 1]!.odometer as number
        const e = hist[i]!
        if (e.kind === 'meterSwap')
          assert.ok((e.oldReading as number) >= prev, `${at}: swap below the recorded reading`)
        else
          assert.ok(
            (e.odometer as number) >= prev,
            `${at}: odometer ${prev} -> ${e.odometer} at entry ${i} without a swap`,
          )
      }
      assert.is(rec.odometer, hist.at(-1)!.odometer, `${at}: record and history agree`)
      const distance = rec.distance as number
      const last = reading.get(toHex(v)) ?? 0
      assert.ok(distance >= last, `${at}: distance decreased`)
      reading.set(toHex(v), distance)
      const lastOwner = [...hist].reverse().find((e) => e.kind === 'sale' || e.kind === 'purchase')!
      assert.equal(rec.holder, lastOwner.to, `${at}: holder is the last buyer`)
    }
  }
  const kinds = new Map<string, number>()
  for (const v of cars)
    for (const e of q('history', { vehicle: v }) as { kind: string }[])
      kinds.set(e.kind, (kinds.get(e.kind) ?? 0) + 1)
  assert.ok(appended > 60, `seed ${SEED}: too few history entries (${appended})`)
  for (const kind of ['purchase', 'inspection', 'accident', 'meterSwap', 'sale'])
    assert.ok((kinds.get(kind) ?? 0) > 0, `seed ${SEED}: no ${kind} entry`)
})

// ---- holes of issue #12 ----

const REGISTRY_SECRET = sha256(utf8.encode('vehicle registry HMAC key'))

test('hole: one keyed id per VIN: a dealer cannot open a second history with a salt of its own', () => {
  const { tx, q, history } = setup()
  const VIN = 'KMHxx41DBLU000009'
  const id = vehicleIdOf(REGISTRY_SECRET, VIN)
  expect(tx('dealer-a', 'register', { vehicle: id }), 'UNAUTHORIZED', 'only the vehicle registry registers')
  expect(tx('registry', 'register', { vehicle: id }), null, 'register')
  expect(tx('registry', 'register', { vehicle: id }), 'ALREADY_REGISTERED', 'once')
  expect(tx('dealer-a', 'purchase', { vehicle: id, odometer: 80_000 }), null, 'purchase')
  expect(
    tx('insurer', 'accident', { vehicle: id, severity: 'total-loss', report: h('claim') }),
    null,
    'total loss',
  )
  // The same car under an id the dealer salted itself: no second, clean history.
  const laundered = sha256(concatBytes(h('a fresh salt'), utf8.encode(VIN)))
  expect(
    tx('dealer-b', 'purchase', { vehicle: laundered, odometer: 80_100 }),
    'NOT_REGISTERED',
    'laundered id',
  )
  assert.equal(q('vehicle', { vehicle: laundered }), null)
  // The registry's id is the same whoever asks (the VIN as printed or typed), so the insurer needs no salt.
  assert.equal(vehicleIdOf(REGISTRY_SECRET, ' kmhxx41dblu000009 '), id)
  assert.equal(
    history(id).map((e) => e.kind),
    ['purchase', 'accident'],
  )
  assert.is(q('vehicle', { vehicle: id }).totalLoss, true)
})

test('hole: a mistyped reading is corrected by a correction entry, by its author, never below the previous reading', () => {
  const { tx, car, history, purchase, inspect } = setup()
  expect(purchase(50_000), null, 'purchase')
  expect(inspect(500_000), null, 'inspection typed 500,000 instead of 50,000')
  expect(inspect(51_000), 'ODOMETER_ROLLBACK', 'the typo locks the history')
  const fix = (who: string, odometer: number) =>
    tx(who, 'correct', { vehicle: CAR, odometer, report: h(`fix-${odometer}`) })
  expect(fix('inspector-2', 50_010), 'NOT_AUTHOR', "another inspector does not correct someone's entry")
  expect(fix('inspector', 49_000), 'ODOMETER_ROLLBACK', 'below the reading before the entry')
  expect(fix('inspector', 50_100), null, 'correct')
  expect(fix('inspector', 50_010), null, 'a correction of the correction')
  assert.is(car().odometer, 50_010)
  const h2 = history()
  assert.equal(
    h2.map((e) => e.kind),
    ['purchase', 'inspection', 'correction', 'correction'],
  )
  assert.equal([h2[2].corrects, h2[2].oldReading, h2[2].odometer], [1, 500_000, 50_100])
  assert.equal([h2[3].corrects, h2[3].oldReading], [1, 50_100])
  expect(inspect(51_000), null, 'the history goes on')
  expect(
    tx('insurer', 'correct', { vehicle: CAR, odometer: 51_000, report: h('x') }),
    'NOT_AUTHOR',
    'last entry is the inspection',
  )
})

test.run()
