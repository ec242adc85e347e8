// Privacy (issue #12; EDPB Guidelines 02/2025: public keys are personal data). A citizen's identifiers
// in two services are unlinkable on chain; S-Coin events are not a log of merchant visits.
import { createHmac } from 'node:crypto'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  type KeyPair,
  type ServiceEvent,
  type Value,
  generateKeyPair,
  sha256,
  toHex,
  utf8,
} from '@cityledger/core'
import { createTestChain, seedFor } from '@cityledger/core/testing'
import { allServices } from '../src/all.ts'
import { hmacSha256, pseudonymCommitment, relationshipKey, vehicleIdOf } from '../src/base/pseudonym.ts'

const k = (label: string): KeyPair => generateKeyPair(seedFor(`privacy/${label}`))
const key = (label: string) => k(label).publicKey
const h = (label: string) => sha256(utf8.encode(`privacy/${label}`))

test('hmacSha256 is HMAC-SHA-256 (RFC 2104), for short, block-sized and long keys', () => {
  for (const [key, msg] of [
    [new Uint8Array(0), ''],
    [utf8.encode('key'), 'The quick brown fox jumps over the lazy dog'],
    [new Uint8Array(64).fill(7), 'x'.repeat(200)],
    [new Uint8Array(131).fill(0xaa), 'Test Using Larger Than Block-Size Key - Hash Key First'],
  ] as const) {
    const want = createHmac('sha256', key).update(msg).digest()
    assert.is(toHex(hmacSha256(key, utf8.encode(msg))), toHex(want))
  }
})

test('commitments and vehicle ids: one per citizen and scope (or VIN), and keyed', () => {
  const secret = h('agency secret')
  const a = pseudonymCommitment(secret, 'voting', 'resident-1')
  assert.equal(pseudonymCommitment(secret, 'voting', 'resident-1'), a, 'deterministic')
  assert.not.equal(pseudonymCommitment(secret, 'scoin', 'resident-1'), a, 'another scope')
  assert.not.equal(pseudonymCommitment(h('other agency'), 'voting', 'resident-1'), a, 'another key')
  assert.not.equal(pseudonymCommitment(secret, 'voting', 'resident-2'), a, 'another citizen')
  assert.not.equal(
    relationshipKey(h('seed'), 'voting').publicKey,
    relationshipKey(h('seed'), 'scoin').publicKey,
  )
  assert.equal(vehicleIdOf(secret, 'kmh 1'), vehicleIdOf(secret, ' KMH 1 '))
  assert.not.equal(vehicleIdOf(secret, 'KMH1'), vehicleIdOf(h('x'), 'KMH1'))
})

/** All byte strings of >= 16 bytes inside a value, as hex. */
function bytesIn(v: Value | undefined, out = new Set<string>()): Set<string> {
  if (v instanceof Uint8Array) {
    if (v.length >= 16) out.add(toHex(v))
  } else if (Array.isArray(v)) for (const x of v) bytesIn(x, out)
  else if (v && typeof v === 'object') for (const x of Object.values(v)) bytesIn(x as Value, out)
  return out
}

test("a citizen's voting and S-Coin records share no key and no commitment on chain; spent events name no one", () => {
  const chain = createTestChain({
    services: allServices,
    genesis: {
      identity: {
        admins: [{ key: key('city'), scopes: ['*'] }],
        roles: [
          { scope: 'token', role: 'admin', key: key('city') },
          { scope: 'scoin', role: 'admin', key: key('city') },
          { scope: 'scoin', role: 'operator', key: key('mileage') },
          { scope: 'scoin', role: 'enroller', key: key('mileage') },
          { scope: 'voting', role: 'enroller', key: key('democracy') },
          { scope: 'voting', role: 'organizer', key: key('democracy') },
        ],
      },
    },
  })
  const events: ServiceEvent[] = []
  const ok = (who: KeyPair, service: string, method: string, args: Value) => {
    const r = chain.tx(who, service, method, args)
    assert.is(r.code, null, `${service}.${method}: ${r.code} ${r.message ?? ''}`)
    events.push(...r.events)
    return r
  }
  // One citizen, known to both agencies as resident-7; the wallet derives one key per service.
  const seed = h('citizen wallet seed')
  const vKey = relationshipKey(seed, 'voting')
  const sKey = relationshipKey(seed, 'scoin')
  const vCommit = pseudonymCommitment(h('democracy secret'), 'voting', 'resident-7')
  const sCommit = pseudonymCommitment(h('mileage secret'), 'scoin', 'resident-7')
  ok(k('democracy'), 'identity', 'enrol', { scope: 'voting', key: vKey.publicKey, commitment: vCommit })
  ok(k('mileage'), 'identity', 'enrol', { scope: 'scoin', key: sKey.publicKey, commitment: sCommit })
  assert.is(
    chain.tx(k('mileage'), 'identity', 'enrol', { scope: 'scoin', key: vKey.publicKey, commitment: h('c') })
      .code,
    'KEY_IN_USE',
    'the voting key cannot serve S-Coin too',
  )
  ok(k('city'), 'token', 'createAsset', {
    asset: 'SCOIN',
    decimals: 0,
    policy: 'controlled',
    controllers: ['scoin'],
    budgetPerPeriod: 0,
    periodBlocks: 1,
  })
  ok(k('city'), 'scoin', 'createProgram', {
    program: 'recycling',
    operators: [key('mileage')],
    budget: 1000,
    expiryBlocks: 500,
  })
  ok(k('city'), 'scoin', 'setPlace', { key: key('bakery'), kind: 'merchant' })
  ok(k('city'), 'scoin', 'setPlace', { key: key('campaign'), kind: 'campaign' })
  ok(k('mileage'), 'scoin', 'award', { program: 'recycling', to: sKey.publicKey, amount: 50 })
  const openAt = chain.height + 2
  ok(k('democracy'), 'voting', 'createPoll', {
    pollId: 'library-hours',
    mode: 'poll',
    title: 'Longer library hours?',
    question: h('q'),
    options: ['yes', 'no'],
    electorate: { enrolled: true },
    openAt,
    closeAt: openAt + 20,
  })
  chain.advance(1)
  ok(vKey, 'voting', 'vote', { pollId: 'library-hours', option: 0 })
  const spend = ok(sKey, 'scoin', 'spend', { to: key('bakery'), amount: 20 })
  const donate = ok(sKey, 'scoin', 'donate', { to: key('campaign'), amount: 5 })

  // The spend's events carry the amount and the kind of place, not the payer or the merchant.
  for (const r of [spend, donate]) {
    for (const e of r.events) {
      const found = bytesIn(e.data)
      assert.ok(!found.has(toHex(sKey.publicKey)), `${e.service}.${e.name} names the payer`)
      assert.ok(
        !found.has(toHex(key('bakery'))) && !found.has(toHex(key('campaign'))),
        `${e.service}.${e.name} names the place`,
      )
    }
  }
  assert.equal(spend.events.find((e) => e.name === 'spent')?.data, { kind: 'merchant', amount: 20 })

  // Unlinkable: what the chain holds about the voting relationship never contains the S-Coin key or
  // commitment, and the other way round. The only common thing is nothing at all.
  const state = chain.state()
  const side = (prefixes: string[]) => {
    const out = new Set<string>()
    for (const [k2, v] of state) {
      if (!prefixes.some((p) => k2.startsWith(p))) continue
      bytesIn(v, out)
      for (const m of k2.matchAll(/[0-9a-f]{64}/g)) out.add(m[0])
    }
    return out
  }
  const voting = side(['voting/', 'identity/pseud/voting/', 'identity/pcommit/voting/'])
  const scoin = side(['scoin/', 'token/bal/SCOIN/', 'identity/pseud/scoin/', 'identity/pcommit/scoin/'])
  // (The sides do hold their own identifiers, so the checks below look in the right places.)
  assert.ok(voting.has(toHex(vKey.publicKey)) && voting.has(toHex(vCommit)))
  assert.ok(scoin.has(toHex(sKey.publicKey)) && scoin.has(toHex(sCommit)))
  for (const x of [toHex(sKey.publicKey), toHex(sCommit)])
    assert.ok(!voting.has(x), 'S-Coin identifier in voting records')
  for (const x of [toHex(vKey.publicKey), toHex(vCommit)])
    assert.ok(!scoin.has(x), 'voting identifier in S-Coin records')
  // And no single state entry or event anywhere holds both identities.
  const vIds = [toHex(vKey.publicKey), toHex(vCommit)]
  const sIds = [toHex(sKey.publicKey), toHex(sCommit)]
  const both = (s: Set<string>) => vIds.some((x) => s.has(x)) && sIds.some((x) => s.has(x))
  for (const [k2, v] of state) {
    const s = bytesIn(v)
    for (const m of k2.matchAll(/[0-9a-f]{64}/g)) s.add(m[0])
    assert.ok(!both(s), `${k2} links the two relationships`)
  }
  for (const e of events)
    assert.ok(!both(bytesIn(e.data)), `${e.service}.${e.name} links the two relationships`)
})

test.run()
