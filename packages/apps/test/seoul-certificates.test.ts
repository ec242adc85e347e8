import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type KeyPair, type Value, generateKeyPair, sha256, toHex, utf8 } from '@cityledger/core'
import { Rng, createTestChain, seedFor, testSeed } from '@cityledger/core/testing'
import { baseServices } from '../src/base/index.ts'
import { CERTIFICATE_TYPES, CITIZEN_CARD, certificates } from '../src/seoul/index.ts'

const SEED = testSeed(20261124)

const h = (label: string | number): Uint8Array => sha256(utf8.encode(`seoul-certificates/${label}`))

function setup() {
  // Test keys are derived from labels (as chain.keys does), so genesis can name them.
  const k = (label: string): KeyPair => generateKeyPair(seedFor(label))
  const key = (label: string) => k(label).publicKey
  const chain = createTestChain({
    services: [...baseServices, certificates],
    genesis: {
      identity: {
        admins: [{ key: key('city'), scopes: ['*'] }],
        orgs: [
          {
            org: 'jongno',
            name: 'Jongno District Office',
            keys: [key('jongno-1'), key('jongno-2'), key('jongno-3')],
          },
          { org: 'mapo', name: 'Mapo District Office', keys: [key('mapo-1')] },
          { org: 'city-hall', name: 'Seoul City Hall', keys: [key('card-1'), key('card-2')] },
        ],
        roles: [
          { scope: 'certificates', role: 'issuer:family-relation', key: key('jongno-1'), org: 'jongno' },
          { scope: 'certificates', role: 'issuer:family-relation', key: key('jongno-2'), org: 'jongno' },
          { scope: 'certificates', role: 'issuer:land-register', key: key('jongno-1'), org: 'jongno' },
          { scope: 'certificates', role: 'issuer:family-relation', key: key('mapo-1'), org: 'mapo' },
          { scope: 'certificates', role: 'issuer:graduation', key: key('school') },
          { scope: 'certificates', role: 'issuer:graduation', key: key('school-2') },
          { scope: 'certificates', role: 'card-issuer', key: key('card-1'), org: 'city-hall' },
          { scope: 'certificates', role: 'card-issuer', key: key('card-2'), org: 'city-hall' },
          { scope: 'certificates', role: 'facility', key: key('library') },
          { scope: 'certificates', role: 'facility', key: key('pool') },
        ],
      },
    },
  })
  const tx = (who: string, method: string, args: Value) => chain.tx(k(who), 'certificates', method, args)
  const q = (name: string, args: Value) => chain.query('certificates', name, args) as any
  return { chain, k, key, tx, q }
}

const cert = (n: number, type = 'family-relation', validUntil = 0) => ({
  id: h(`id-${n}`),
  type,
  hash: h(`content-${n}`),
  validUntil,
})

test('29 certificate kinds, distinct, plus the citizen card', () => {
  assert.is(CERTIFICATE_TYPES.length, 29)
  assert.is(new Set(CERTIFICATE_TYPES).size, 29)
  assert.ok(!(CERTIFICATE_TYPES as readonly string[]).includes(CITIZEN_CARD))
  const { q } = setup()
  const types = q('types', {}) as string[]
  assert.is(types.length, 30)
  assert.is(types.at(-1), CITIZEN_CARD)
})

test('issue: only an office with the role for that type', () => {
  const { tx, q, key } = setup()
  assert.is(tx('jongno-1', 'issue', cert(1)).code, null)
  assert.is(tx('jongno-1', 'issue', cert(2, 'land-register')).code, null)
  assert.is(tx('mapo-1', 'issue', cert(3, 'land-register')).code, 'UNAUTHORIZED', 'role for another type')
  assert.is(tx('nobody', 'issue', cert(4)).code, 'UNAUTHORIZED', 'no role')
  assert.is(tx('card-1', 'issue', cert(5)).code, 'UNAUTHORIZED', 'card issuer is not a certificate issuer')
  const rec = q('credential', { id: h('id-1') })
  assert.is(rec.type, 'family-relation')
  assert.is(rec.status, 'active')
  assert.is(rec.office, 'jongno')
  assert.is(toHex(rec.issuer), toHex(key('jongno-1')))
  assert.equal(q('credential', { id: h('id-3') }), null)
})

test('issue: bad input is refused with a code and writes nothing', () => {
  const { tx, chain } = setup()
  assert.is(tx('jongno-1', 'issue', cert(1)).code, null)
  const before = chain.state()
  assert.is(tx('jongno-1', 'issue', cert(1)).code, 'ALREADY_EXISTS')
  assert.is(
    tx('jongno-1', 'issue', { ...cert(2), type: 'citizen-card' }).code,
    'BAD_ARGS',
    'cards go through issueCard',
  )
  assert.is(tx('jongno-1', 'issue', { ...cert(2), type: 'horoscope' }).code, 'BAD_ARGS')
  assert.is(tx('jongno-1', 'issue', { ...cert(2), hash: new Uint8Array(31) }).code, 'BAD_ARGS')
  assert.is(
    tx('jongno-1', 'issue', { ...cert(2), name: 'Hong Gildong' }).code,
    'BAD_ARGS',
    'no extra fields (no personal data)',
  )
  assert.is(
    tx('jongno-1', 'issue', cert(2, 'family-relation', chain.height)).code,
    'BAD_VALIDITY',
    'validUntil not in the future',
  )
  const after = chain.state()
  for (const [k, v] of after) if (k.startsWith('certificates/')) assert.equal(v, before.get(k), k)
})

test('verify: valid only for the right hash, while active and unexpired', () => {
  const { tx, q, chain, key } = setup()
  // Issued in the next block (H) and valid for heights H..H+4.
  assert.is(tx('jongno-1', 'issue', cert(1, 'family-relation', chain.height + 1 + 5)).code, null)
  let v = q('verify', { id: h('id-1'), hash: h('content-1') })
  assert.equal(
    { valid: v.valid, status: v.status, type: v.type, office: v.office, expired: v.expired },
    {
      valid: true,
      status: 'active',
      type: 'family-relation',
      office: 'jongno',
      expired: false,
    },
  )
  assert.is(toHex(v.issuer), toHex(key('jongno-1')))
  assert.is(q('verify', { id: h('id-1'), hash: h('content-2') }).valid, false, 'wrong hash')
  v = q('verify', { id: h('nope'), hash: h('content-1') })
  assert.equal(v, {
    valid: false,
    status: 'unknown',
    type: null,
    issuer: null,
    office: null,
    validUntil: 0,
    expired: false,
  })
  chain.advance(4)
  assert.is(q('verify', { id: h('id-1'), hash: h('content-1') }).valid, true, 'last valid height')
  chain.advance(1)
  v = q('verify', { id: h('id-1'), hash: h('content-1') })
  assert.is(v.valid, false)
  assert.is(v.expired, true)
})

test('status: suspend, reinstate, revoke; revoked never returns', () => {
  const { tx, q } = setup()
  assert.is(tx('jongno-1', 'issue', cert(1)).code, null)
  const id = { id: h('id-1') }
  const valid = () => q('verify', { id: h('id-1'), hash: h('content-1') }).valid
  assert.is(tx('jongno-1', 'reinstate', id).code, 'INVALID_TRANSITION', 'active cannot be reinstated')
  const s = tx('jongno-1', 'suspend', { ...id, reason: h('reason') })
  assert.is(s.code, null)
  assert.equal(
    s.events.map((e) => e.name),
    ['suspended'],
  )
  assert.is(valid(), false)
  assert.is(q('credential', id).status, 'suspended')
  assert.is(tx('jongno-1', 'suspend', id).code, 'INVALID_TRANSITION')
  assert.is(tx('jongno-1', 'reinstate', id).code, null)
  assert.is(valid(), true)
  assert.is(tx('jongno-1', 'suspend', id).code, null)
  assert.is(tx('jongno-1', 'revoke', id).code, null, 'a suspended certificate can be revoked')
  assert.is(valid(), false)
  for (const m of ['reinstate', 'suspend', 'revoke']) assert.is(tx('jongno-1', m, id).code, 'REVOKED', m)
  assert.is(q('credential', id).status, 'revoked')
  assert.is(tx('jongno-1', 'suspend', { id: h('missing') }).code, 'NOT_FOUND')
})

test('status changes: the issuing office, with the role for the type', () => {
  const { tx, q } = setup()
  assert.is(tx('jongno-1', 'issue', cert(1)).code, null)
  assert.is(tx('jongno-1', 'issue', cert(2, 'land-register')).code, null)
  const id = { id: h('id-1') }
  assert.is(tx('mapo-1', 'suspend', id).code, 'NOT_OFFICE', 'same role, other office')
  assert.is(tx('jongno-3', 'suspend', id).code, 'UNAUTHORIZED', 'same office, no role')
  assert.is(tx('nobody', 'revoke', id).code, 'UNAUTHORIZED')
  assert.is(tx('card-1', 'revoke', id).code, 'UNAUTHORIZED', 'card issuer has no say over certificates')
  assert.is(
    tx('jongno-2', 'suspend', { id: h('id-2') }).code,
    'UNAUTHORIZED',
    'role for family-relation only',
  )
  assert.is(tx('jongno-2', 'suspend', id).code, null, 'another key of the issuing office')
  assert.is(tx('jongno-2', 'reinstate', id).code, null)
  assert.is(q('credential', id).status, 'active')
  // An issuer key with no org: only that key acts for its documents.
  assert.is(tx('school', 'issue', cert(3, 'graduation')).code, null)
  assert.is(tx('school-2', 'revoke', { id: h('id-3') }).code, 'NOT_OFFICE')
  assert.is(tx('school', 'revoke', { id: h('id-3') }).code, null)
})

test('status changes stop when the office key is revoked in identity', () => {
  const { tx, chain, k, key } = setup()
  assert.is(tx('jongno-1', 'issue', cert(1)).code, null)
  assert.is(
    chain.tx(k('city'), 'identity', 'revokeKey', { key: key('jongno-1'), fromHeight: chain.height + 1 }).code,
    null,
  )
  assert.is(tx('jongno-1', 'suspend', { id: h('id-1') }).code, 'KEY_REVOKED')
  assert.is(tx('jongno-1', 'issue', cert(2)).code, 'KEY_REVOKED')
  assert.is(tx('jongno-2', 'suspend', { id: h('id-1') }).code, null, 'the office acts with its other key')
})

test('citizen card: one live card per holder, managed by the city', () => {
  const { tx, q } = setup()
  const holder = h('holder-A')
  const card = (n: number) => ({ id: h(`card-${n}`), holder, hash: h(`card-content-${n}`), validUntil: 0 })
  assert.is(tx('jongno-1', 'issueCard', card(1)).code, 'UNAUTHORIZED')
  assert.is(tx('card-1', 'issueCard', card(1)).code, null)
  assert.is(q('credential', { id: h('card-1') }).type, CITIZEN_CARD)
  assert.is(toHex(q('card', { holder }).id), toHex(h('card-1')))
  assert.is(tx('card-1', 'issueCard', card(2)).code, 'CARD_EXISTS')
  assert.is(tx('card-2', 'suspend', { id: h('card-1') }).code, null, 'any card issuer of the city')
  assert.is(q('card', { holder }).status, 'suspended')
  assert.is(tx('card-1', 'issueCard', card(2)).code, 'CARD_EXISTS', 'a suspended card is still live')
  assert.is(
    tx('jongno-1', 'reinstate', { id: h('card-1') }).code,
    'UNAUTHORIZED',
    'certificate issuers cannot touch cards',
  )
  assert.is(tx('card-1', 'reinstate', { id: h('card-1') }).code, null)
  assert.is(q('verify', { id: h('card-1'), hash: h('card-content-1') }).valid, true)
  assert.is(tx('card-1', 'revoke', { id: h('card-1') }).code, null)
  assert.equal(q('card', { holder }), null)
  assert.is(tx('card-1', 'reinstate', { id: h('card-1') }).code, 'REVOKED')
  assert.is(tx('card-1', 'issueCard', card(1)).code, 'ALREADY_EXISTS', 'ids are never reused')
  assert.is(tx('card-1', 'issueCard', card(2)).code, null, 'a replacement after revocation')
  assert.is(toHex(q('card', { holder }).id), toHex(h('card-2')))
  assert.is(q('verify', { id: h('card-1'), hash: h('card-content-1') }).valid, false)
  assert.is(tx('card-1', 'issueCard', { ...card(3), holder: h('holder-B') }).code, null, 'another holder')
})

test('hole: an expired citizen card does not block its renewal', () => {
  const { chain, tx, q } = setup()
  const holder = h('holder-R')
  const until = chain.height + 3
  assert.is(
    tx('card-1', 'issueCard', { id: h('old'), holder, hash: h('old-c'), validUntil: until }).code,
    null,
  )
  const renew = { id: h('new'), holder, hash: h('new-c'), validUntil: 0 }
  assert.is(tx('card-1', 'issueCard', renew).code, 'CARD_EXISTS', 'still valid: no second live card')
  chain.advance(until - chain.height)
  assert.is(q('verify', { id: h('old'), hash: h('old-c') }).expired, true)
  assert.is(tx('card-1', 'issueCard', renew).code, null, 'the expired card is renewed')
  assert.is(toHex(q('card', { holder }).id), toHex(h('new')))
  assert.is(q('verify', { id: h('new'), hash: h('new-c') }).valid, true)
  assert.is(q('verify', { id: h('old'), hash: h('old-c') }).valid, false)
})

test('facilities list what they accept; no visit is recorded', () => {
  const { tx, q, key, chain } = setup()
  assert.is(tx('library', 'setAccepted', { types: [CITIZEN_CARD, 'resident-registration'] }).code, null)
  assert.is(tx('shop', 'setAccepted', { types: [CITIZEN_CARD] }).code, 'UNAUTHORIZED')
  assert.is(tx('pool', 'setAccepted', { types: ['boarding-pass'] }).code, 'BAD_ARGS')
  assert.is(q('accepts', { facility: key('library'), type: CITIZEN_CARD }), true)
  assert.is(q('accepts', { facility: key('library'), type: 'graduation' }), false)
  assert.is(q('accepts', { facility: key('pool'), type: CITIZEN_CARD }), false)
  assert.equal(q('facility', { facility: key('library') }), [CITIZEN_CARD, 'resident-registration'].sort())
  assert.is(
    tx('library', 'setAccepted', { types: ['graduation', 'graduation'] }).code,
    null,
    'replaces the list',
  )
  assert.equal(q('facility', { facility: key('library') }), ['graduation'])
  assert.is(tx('library', 'setAccepted', { types: [] }).code, null)
  assert.equal(q('facility', { facility: key('library') }), [])
  // The service has no method that takes a visit, and its state holds only these prefixes.
  assert.equal(Object.keys(certificates.methods).sort(), [
    'issue',
    'issueCard',
    'reinstate',
    'revoke',
    'setAccepted',
    'suspend',
  ])
  for (const k of chain.state().keys()) {
    if (k.startsWith('certificates/'))
      assert.ok(/^certificates\/(doc|card|facility)\/[0-9a-f]{64}$/.test(k), k)
  }
})

test(`random status walks match a model; revoked is final (seed ${SEED})`, () => {
  const { tx, q } = setup()
  const rng = new Rng(SEED)
  const model = new Map<number, { status: 'active' | 'suspended' | 'revoked'; office: string }>()
  const orgOf: Record<string, string> = { 'jongno-1': 'jongno', 'jongno-2': 'jongno', 'mapo-1': 'mapo' }
  const next = { suspend: 'suspended', reinstate: 'active', revoke: 'revoked' } as const
  const from = { suspend: ['active'], reinstate: ['suspended'], revoke: ['active', 'suspended'] }
  for (let step = 0; step < 300; step++) {
    const n = rng.int(12)
    const who = rng.pick(['jongno-1', 'jongno-2', 'mapo-1', 'nobody'])
    const op = rng.pick(['issue', 'suspend', 'reinstate', 'revoke'] as const)
    const r = op === 'issue' ? tx(who, 'issue', cert(n)) : tx(who, op, { id: h(`id-${n}`) })
    const cur = model.get(n)
    let expect: string | null
    // Existence is public (verify says so), so a missing id is NOT_FOUND for anyone.
    if (op === 'issue') expect = who === 'nobody' ? 'UNAUTHORIZED' : cur ? 'ALREADY_EXISTS' : null
    else if (!cur) expect = 'NOT_FOUND'
    else if (who === 'nobody') expect = 'UNAUTHORIZED'
    else if (orgOf[who] !== cur.office) expect = 'NOT_OFFICE'
    else if (cur.status === 'revoked') expect = 'REVOKED'
    else expect = from[op].includes(cur.status) ? null : 'INVALID_TRANSITION'
    assert.is(
      r.code,
      expect,
      `seed ${SEED} step ${step}: ${who} ${op} #${n} (was ${cur?.status}, office ${cur?.office})`,
    )
    if (r.code !== null) continue
    if (op === 'issue') model.set(n, { status: 'active', office: orgOf[who]! })
    else model.set(n, { ...cur!, status: next[op] })
  }
  for (const [n, m] of model) {
    assert.is(q('credential', { id: h(`id-${n}`) }).status, m.status, `seed ${SEED} #${n}`)
    assert.is(
      q('verify', { id: h(`id-${n}`), hash: h(`content-${n}`) }).valid,
      m.status === 'active',
      `seed ${SEED} #${n}`,
    )
  }
})

test('scenario: a district office issues, a bank verifies, the office revokes; a card at the library', () => {
  const { tx, q, key } = setup()
  // A citizen asks Jongno for a family-relation certificate; only the salted hash goes on chain.
  const content = utf8.encode(JSON.stringify({ salt: 'f00d', doc: 'family relation, page 1' }))
  const commitment = sha256(content)
  assert.is(
    tx('jongno-1', 'issue', {
      id: h('fam-2026-001'),
      type: 'family-relation',
      hash: commitment,
      validUntil: 0,
    }).code,
    null,
  )
  // A bank, given the document off chain, recomputes the hash and checks it against the chain.
  const v = q('verify', { id: h('fam-2026-001'), hash: sha256(content) })
  assert.is(v.valid, true)
  assert.is(v.office, 'jongno')
  // A forged copy fails.
  assert.is(q('verify', { id: h('fam-2026-001'), hash: sha256(utf8.encode('forged')) }).valid, false)
  // The office revokes it (e.g. issued in error); verification now says so.
  assert.is(tx('jongno-2', 'revoke', { id: h('fam-2026-001'), reason: h('issued-in-error') }).code, null)
  assert.is(q('verify', { id: h('fam-2026-001'), hash: commitment }).status, 'revoked')
  // The city issues a card; the library accepts cards; the holder shows it off chain, nothing is logged.
  assert.is(
    tx('card-1', 'issueCard', {
      id: h('card-x'),
      holder: h('pseudonym-x'),
      hash: h('card-x-content'),
      validUntil: 0,
    }).code,
    null,
  )
  assert.is(tx('library', 'setAccepted', { types: [CITIZEN_CARD] }).code, null)
  assert.is(q('accepts', { facility: key('library'), type: CITIZEN_CARD }), true)
  assert.is(q('verify', { id: h('card-x'), hash: h('card-x-content') }).valid, true)
})

test.run()
