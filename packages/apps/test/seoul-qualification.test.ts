import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  type KeyPair,
  type TxResult,
  type Value,
  generateKeyPair,
  sha256,
  toHex,
  utf8,
} from '@cityledger/core'
import { Rng, createTestChain, seedFor, testSeed } from '@cityledger/core/testing'
import { baseServices } from '../src/base/index.ts'
import { DEFAULT_PREDICATES, purposeOf, qualification } from '../src/seoul/index.ts'

const SEED = testSeed(20261208)

const k = (label: string): KeyPair => generateKeyPair(seedFor(label))
const key = (label: string) => k(label).publicKey
const h = (label: string | number) => sha256(utf8.encode(`seoul-qualification/${label}`))

function expect(r: TxResult, code: string | null, what: string): void {
  assert.is(
    r.code,
    code,
    `${what}: expected ${code ?? 'success'}, got ${r.code ?? 'success'} (${r.message ?? ''})`,
  )
}

const INCOME = 'income-below-threshold'
const RESIDENT = 'resident-of-seoul'

function setup(genesis: Value = { requestTtl: 20 }) {
  const chain = createTestChain({
    services: [...baseServices, qualification],
    genesis: {
      identity: {
        admins: [{ key: key('city'), scopes: ['*'] }],
        roles: [
          { scope: 'qualification', role: 'admin', key: key('qual-admin') },
          { scope: 'qualification', role: 'requester', key: key('welfare-office') },
          { scope: 'qualification', role: 'requester', key: key('housing-office') },
          { scope: 'qualification', role: `answerer:${INCOME}`, key: key('tax-office') },
          { scope: 'qualification', role: `answerer:${INCOME}`, key: key('pension-office') },
          { scope: 'qualification', role: `answerer:${RESIDENT}`, key: key('district-office') },
        ],
      },
      qualification: genesis,
    },
  })
  const tx = (who: string, method: string, args: Value) => chain.tx(k(who), 'qualification', method, args)
  const q = (name: string, args: Value) => chain.query('qualification', name, args) as any
  /** The citizen (a pseudonymous key) grants `grantee` a check of `predicate` until `expiry`. */
  const grant = (
    label: string,
    grantee = 'welfare-office',
    predicate = INCOME,
    expiry = chain.height + 100,
    subject = 'citizen',
  ) =>
    expect(
      chain.tx(k(subject), 'consent', 'grant', {
        grantId: h(label),
        grantee: key(grantee),
        purpose: purposeOf(predicate),
        expiry,
      }),
      null,
      `grant ${label}`,
    )
  const request = (
    id: string | number,
    grantLabel: string,
    over: Record<string, Value> = {},
    who = 'welfare-office',
  ) => tx(who, 'request', { requestId: h(`req-${id}`), predicate: INCOME, grantId: h(grantLabel), ...over })
  const answer = (id: string | number, who = 'tax-office', result = true) =>
    tx(who, 'answer', { requestId: h(`req-${id}`), result, evidence: h(`evidence-${id}`) })
  return { chain, tx, q, grant, request, answer }
}

test('genesis: default predicates; config is checked', () => {
  const { q } = setup({})
  for (const p of DEFAULT_PREDICATES) assert.is(q('predicate', { predicate: p }).active, true, p)
  assert.is(q('predicate', { predicate: 'owns-a-yacht' }), null)
  const custom = setup({ predicates: ['disability-registered', { predicate: 'youth', validityBlocks: 5 }] })
  assert.is(custom.q('predicate', { predicate: 'youth' }).validityBlocks, 5)
  assert.is(custom.q('predicate', { predicate: INCOME }), null, 'an explicit list replaces the defaults')
  assert.throws(() => setup({ requestTtl: 0 }), /requestTtl/)
  assert.throws(() => setup({ predicates: ['Bad Name'] }), /predicates\[0\]/)
})

test('definePredicate: qualification admins only; retired predicates take no requests', () => {
  const { tx, q, grant, request } = setup()
  expect(
    tx('welfare-office', 'definePredicate', { predicate: 'youth', validityBlocks: 10 }),
    'UNAUTHORIZED',
    'requester defines',
  )
  expect(
    tx('qual-admin', 'definePredicate', { predicate: 'Youth!', validityBlocks: 10 }),
    'BAD_ARGS',
    'bad name',
  )
  expect(tx('qual-admin', 'definePredicate', { predicate: 'youth', validityBlocks: 10 }), null, 'define')
  assert.is(q('predicate', { predicate: 'youth' }).validityBlocks, 10)
  grant('g1')
  expect(request(1, 'g1', { predicate: 'owns-a-yacht' }), 'UNKNOWN_PREDICATE', 'unknown predicate')
  expect(
    tx('qual-admin', 'definePredicate', { predicate: INCOME, validityBlocks: 0, active: false }),
    null,
    'retire',
  )
  expect(request(1, 'g1'), 'PREDICATE_RETIRED', 'retired')
})

test('request: a requester agency, under an active grant for that predicate, logged for the subject', () => {
  const { chain, q, grant, request } = setup()
  grant('g-income')
  expect(request(1, 'g-income', {}, 'tax-office'), 'UNAUTHORIZED', 'an answerer is not a requester')
  expect(request(1, 'g-income', {}, 'citizen'), 'UNAUTHORIZED', 'the subject is not a requester')
  expect(request(1, 'no-grant'), 'NO_SUCH_GRANT', 'no grant')
  expect(request(1, 'g-income', {}, 'housing-office'), 'NOT_GRANTEE', 'grant names another agency')
  expect(request(1, 'g-income', { predicate: RESIDENT }), 'PURPOSE_MISMATCH', 'grant for another predicate')
  const r = request(1, 'g-income', { params: h('threshold-table-2026') })
  expect(r, null, 'request')
  const at = chain.height
  expect(request(1, 'g-income'), 'ALREADY_EXISTS', 'same request id')
  const rec = q('request', { requestId: h('req-1') })
  assert.is(rec.status, 'pending')
  assert.is(rec.predicate, INCOME)
  assert.equal(rec.subject, key('citizen'), "the subject is the grant's subject")
  assert.equal(rec.requester, key('welfare-office'))
  assert.is(rec.expiresAt, at + 20)
  const log = chain.query('consent', 'accessLog', { subject: key('citizen') }) as any[]
  assert.is(log.length, 1)
  assert.is(log[0].via, 'qualification')
  assert.is(log[0].purpose, purposeOf(INCOME))
  assert.is(rec.accessIndex, 0)
})

test('request: refused once the grant is revoked or expired', () => {
  const { chain, grant, request } = setup()
  grant('g-short', 'welfare-office', INCOME, chain.height + 3)
  grant('g-revoked')
  expect(chain.tx(k('citizen'), 'consent', 'revoke', { grantId: h('g-revoked') }), null, 'revoke')
  expect(request(1, 'g-revoked'), 'GRANT_INACTIVE', 'revoked grant')
  chain.advance(3)
  expect(request(2, 'g-short'), 'GRANT_INACTIVE', 'expired grant')
})

test('answer: an agency holding the predicate answerer role, once; only the result and an evidence hash', () => {
  const { q, grant, request, answer, tx } = setup()
  grant('g1')
  expect(request(1, 'g1'), null, 'request')
  expect(answer(1, 'district-office'), 'UNAUTHORIZED', 'answerer of another predicate')
  expect(answer(1, 'welfare-office'), 'UNAUTHORIZED', 'the requester answers itself')
  expect(answer(1, 'citizen'), 'UNAUTHORIZED', 'the subject answers')
  expect(answer('nope'), 'NOT_FOUND', 'unknown request')
  const r = answer(1, 'tax-office', false)
  expect(r, null, 'answer')
  assert.equal(r.events.find((e) => e.name === 'answered')!.data, {
    requestId: h('req-1'),
    predicate: INCOME,
    result: false,
    evidence: h('evidence-1'),
    answerer: key('tax-office'),
  })
  expect(answer(1, 'tax-office', true), 'ALREADY_ANSWERED', 'answer twice')
  expect(answer(1, 'pension-office', true), 'ALREADY_ANSWERED', 'another answerer after the first')
  expect(
    tx('tax-office', 'decline', { requestId: h('req-1'), reason: 'no-data' }),
    'ALREADY_ANSWERED',
    'decline after answer',
  )
  expect(tx('welfare-office', 'cancel', { requestId: h('req-1') }), 'ALREADY_ANSWERED', 'cancel after answer')
  const rec = q('request', { requestId: h('req-1') })
  assert.is(rec.status, 'answered')
  assert.is(rec.result, false)
  assert.equal(rec.evidence, h('evidence-1'))
  assert.equal(rec.answeredBy, key('tax-office'))
  assert.is(q('attestation', { requestId: h('req-1') }).result, false)
})

test('answer: the named answerer only', () => {
  const { grant, request, answer } = setup()
  grant('g1')
  expect(request(1, 'g1', { answerer: key('pension-office') }), null, 'request naming the pension office')
  expect(answer(1, 'tax-office'), 'NOT_ANSWERER', 'a different authorised answerer')
  expect(answer(1, 'pension-office'), null, 'the named one')
})

test('answer: refused after the request expires or the subject withdraws consent', () => {
  const { chain, grant, request, answer } = setup()
  grant('g1')
  grant('g2')
  expect(request(1, 'g1'), null, 'request 1')
  expect(request(2, 'g2'), null, 'request 2')
  expect(chain.tx(k('citizen'), 'consent', 'revoke', { grantId: h('g2') }), null, 'revoke g2')
  expect(answer(2), 'GRANT_INACTIVE', 'consent withdrawn before the answer')
  chain.advance(20)
  expect(answer(1), 'REQUEST_EXPIRED', 'too late')
})

test('an answerer role revoked in identity stops answers at once', () => {
  const { chain, grant, request, answer } = setup()
  grant('g1')
  expect(request(1, 'g1'), null, 'request')
  expect(
    chain.tx(k('city'), 'identity', 'revokeRole', {
      scope: 'qualification',
      role: `answerer:${INCOME}`,
      key: key('tax-office'),
    }),
    null,
    'revoke role',
  )
  expect(answer(1, 'tax-office'), 'UNAUTHORIZED', 'no longer authorised')
})

test('decline and cancel close a request without a result', () => {
  const { tx, q, grant, request } = setup()
  grant('g1')
  expect(request(1, 'g1'), null, 'request 1')
  expect(request(2, 'g1'), null, 'request 2 (same grant)')
  expect(
    tx('district-office', 'decline', { requestId: h('req-1'), reason: 'no-data' }),
    'UNAUTHORIZED',
    'decline without the role',
  )
  expect(
    tx('tax-office', 'decline', { requestId: h('req-1'), reason: 'lost-it' }),
    'BAD_ARGS',
    'unknown reason',
  )
  expect(tx('tax-office', 'decline', { requestId: h('req-1'), reason: 'no-data' }), null, 'decline')
  expect(tx('housing-office', 'cancel', { requestId: h('req-2') }), 'UNAUTHORIZED', 'another agency cancels')
  expect(tx('welfare-office', 'cancel', { requestId: h('req-2') }), null, 'cancel')
  expect(
    tx('tax-office', 'answer', { requestId: h('req-2'), result: true, evidence: h(0) }),
    'ALREADY_ANSWERED',
    'answer a cancelled request',
  )
  assert.is(q('request', { requestId: h('req-1') }).status, 'declined')
  assert.is(q('attestation', { requestId: h('req-1') }), null)
  assert.equal(q('stats', {}), { requests: 2, answered: 0, declined: 1, cancelled: 1 })
})

test('attestation freshness follows the predicate validity', () => {
  const { chain, tx, q, grant, request, answer } = setup()
  expect(tx('qual-admin', 'definePredicate', { predicate: INCOME, validityBlocks: 5 }), null, 'validity 5')
  grant('g1')
  expect(request(1, 'g1'), null, 'request')
  expect(answer(1), null, 'answer')
  const a = q('attestation', { requestId: h('req-1') })
  assert.is(a.validUntil, chain.height + 5)
  assert.is(a.fresh, true)
  chain.advance(5)
  assert.is(q('attestation', { requestId: h('req-1') }).fresh, false)
})

test('no personal data: the state holds keys, hashes, predicate names, heights and booleans only', () => {
  const { chain, grant, request, answer } = setup()
  grant('g1')
  expect(request(1, 'g1', { params: h('p') }), null, 'request')
  expect(answer(1), null, 'answer')
  const mine = [...chain.state()].filter(([k]) => k.startsWith('qualification/req/'))
  assert.is(mine.length, 1)
  const rec = mine[0]![1] as Record<string, Value>
  assert.equal(Object.keys(rec).sort(), [
    'accessIndex',
    'answeredAt',
    'answeredBy',
    'answerer',
    'createdAt',
    'declineReason',
    'evidence',
    'expiresAt',
    'grantId',
    'params',
    'predicate',
    'requestId',
    'requester',
    'result',
    'status',
  ])
  for (const [f, v] of Object.entries(rec)) {
    if (typeof v === 'string') assert.ok(['predicate', 'status'].includes(f), `free text in ${f}`)
    if (v instanceof Uint8Array) assert.is(v.length, 32, `${f} is a key or a hash`)
  }
})

test('scenario: a housing benefit needs two checks from two data-holding agencies', () => {
  const { chain, q, grant, tx } = setup()
  // The applicant consents to both checks for the welfare office, in one block.
  grant('g-income', 'welfare-office', INCOME, chain.height + 50, 'applicant')
  grant('g-resident', 'welfare-office', RESIDENT, chain.height + 50, 'applicant')
  const results = chain.block([
    {
      key: k('welfare-office'),
      service: 'qualification',
      method: 'request',
      args: { requestId: h('housing/income'), predicate: INCOME, grantId: h('g-income') },
    },
    {
      key: k('welfare-office'),
      service: 'qualification',
      method: 'request',
      args: {
        requestId: h('housing/resident'),
        predicate: RESIDENT,
        grantId: h('g-resident'),
        answerer: key('district-office'),
      },
    },
  ])
  results.forEach((r, i) => {
    expect(r, null, `request ${i}`)
  })
  expect(
    tx('tax-office', 'answer', {
      requestId: h('housing/income'),
      result: true,
      evidence: h('nts-record-ref'),
    }),
    null,
    'income answer',
  )
  expect(
    tx('district-office', 'answer', {
      requestId: h('housing/resident'),
      result: true,
      evidence: h('resident-register-ref'),
    }),
    null,
    'residence answer',
  )
  const income = q('attestation', { requestId: h('housing/income') })
  const resident = q('attestation', { requestId: h('housing/resident') })
  assert.is(income.result && resident.result, true)
  assert.equal(q('request', { requestId: h('housing/resident') }).subject, key('applicant'))
  assert.is(
    (chain.query('consent', 'accessLog', { subject: key('applicant') }) as any[]).length,
    2,
    'the applicant sees both checks',
  )
  assert.equal(q('stats', {}), { requests: 2, answered: 2, declined: 0, cancelled: 0 })
})

test(`property: one answer per request over random txs (seed ${SEED})`, () => {
  const rng = new Rng(SEED)
  const { chain, tx, q } = setup({ requestTtl: 15 })
  const agencies = [
    'welfare-office',
    'housing-office',
    'tax-office',
    'pension-office',
    'district-office',
    'citizen',
  ]
  const predicates = [INCOME, RESIDENT]
  const answerers: Record<string, string[]> = {
    [INCOME]: ['tax-office', 'pension-office'],
    [RESIDENT]: ['district-office'],
  }
  const ids: Uint8Array[] = []
  const closes = new Map<string, number>()
  const frozen = new Map<string, string>()
  const grants: { grantee: string; predicate: string }[] = []
  for (let step = 0; step < 600; step++) {
    const op = rng.int(6)
    let r: TxResult
    if (op === 0) {
      const grantee = rng.pick(['welfare-office', 'housing-office'])
      const predicate = rng.pick(predicates)
      expect(
        chain.tx(k(`subject-${rng.int(4)}`), 'consent', 'grant', {
          grantId: h(`g${grants.length}`),
          grantee: key(grantee),
          purpose: purposeOf(predicate),
          expiry: chain.height + rng.range(2, 60),
        }),
        null,
        `seed ${SEED} grant`,
      )
      grants.push({ grantee, predicate })
      continue
    }
    if ((op === 1 || op === 2) && grants.length > 0) {
      const id = h(`r${step}`)
      const g = rng.int(grants.length)
      // Mostly a request that matches its grant; sometimes a random (usually refused) one.
      const who = rng.chance(0.8) ? grants[g]!.grantee : rng.pick(agencies)
      const predicate = rng.chance(0.8) ? grants[g]!.predicate : rng.pick(predicates)
      r = tx(who, 'request', { requestId: id, predicate, grantId: h(`g${g}`) })
      if (r.code === null) ids.push(id)
    } else if (ids.length === 0) {
      chain.advance(1)
      continue
    } else {
      // Mostly a recent request and an agency that may answer it, so answers happen; sometimes anything.
      const id = rng.chance(0.7) ? ids[ids.length - 1 - rng.int(Math.min(4, ids.length))]! : rng.pick(ids)
      const pred = (q('request', { requestId: id }) as { predicate: string }).predicate
      const who = rng.chance(0.6) ? rng.pick(answerers[pred]!) : rng.pick(agencies)
      if (op === 5)
        r = tx(
          who,
          rng.pick(['cancel', 'decline']),
          rng.chance(0.5) ? { requestId: id } : { requestId: id, reason: 'no-data' },
        )
      else r = tx(who, 'answer', { requestId: id, result: rng.chance(0.5), evidence: h(step) })
      if (r.code === null) closes.set(toHex(id), (closes.get(toHex(id)) ?? 0) + 1)
    }
    assert.not.equal(r.code, 'INTERNAL', `seed ${SEED} step ${step}: ${r.message}`)
    for (const id of ids) {
      const hx = toHex(id)
      assert.ok((closes.get(hx) ?? 0) <= 1, `seed ${SEED} step ${step}: request ${hx} closed twice`)
      const rec = q('request', { requestId: id })
      const snapshot = JSON.stringify({ ...rec, subject: null }, (_, v) =>
        v instanceof Uint8Array ? toHex(v) : v,
      )
      if (rec.status !== 'pending') {
        const before = frozen.get(hx)
        if (before === undefined) frozen.set(hx, snapshot)
        else assert.is(snapshot, before, `seed ${SEED} step ${step}: a closed request changed`)
      }
      if (rec.status === 'answered') {
        const holds = chain.query('identity', 'hasRole', {
          scope: 'qualification',
          role: `answerer:${rec.predicate}`,
          key: rec.answeredBy,
        })
        assert.ok(holds, `seed ${SEED}: answered by a key without the role`)
        assert.ok(rec.answeredAt < rec.expiresAt, `seed ${SEED}: answered after expiry`)
      }
    }
  }
  const stats = q('stats', {})
  assert.is(stats.requests, ids.length)
  assert.is(
    stats.answered + stats.declined + stats.cancelled,
    [...closes.values()].reduce((a, b) => a + b, 0),
  )
  assert.ok(stats.answered >= 3, `seed ${SEED}: too few answers ${JSON.stringify(stats)}`)
})

test.run()
