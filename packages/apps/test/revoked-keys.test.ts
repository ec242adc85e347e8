// A revoked key signs nothing that takes effect, in any service: not only roles die with it, but also
// spending, voting, consent and every other power a key has by itself (issue #12, "Identity").
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type KeyPair, type TxContext, type Value, generateKeyPair, sha256, utf8 } from '@cityledger/core'
import { createTestChain, seedFor } from '@cityledger/core/testing'
import { allServices } from '../src/all.ts'

const k = (label: string): KeyPair => generateKeyPair(seedFor(`revoked/${label}`))
const key = (label: string) => k(label).publicKey
const h = (label: string) => sha256(utf8.encode(`revoked/${label}`))

function setup() {
  const chain = createTestChain({
    services: allServices,
    genesis: {
      identity: {
        admins: [{ key: key('city'), scopes: ['*'] }],
        roles: [
          { scope: 'token', role: 'admin', key: key('city') },
          { scope: 'token', role: 'issuer:KRW', key: key('treasury') },
          { scope: 'scoin', role: 'admin', key: key('city') },
          { scope: 'scoin', role: 'operator', key: key('mileage') },
          { scope: 'voting', role: 'organizer', key: key('democracy') },
        ],
      },
    },
  })
  const ok = (who: string, service: string, method: string, args: Value) => {
    const r = chain.tx(k(who), service, method, args)
    assert.is(r.code, null, `${who} ${service}.${method}: ${r.code} ${r.message ?? ''}`)
  }
  const asset = (name: string, policy: string, controllers: string[]) =>
    ok('city', 'token', 'createAsset', {
      asset: name,
      decimals: 0,
      policy,
      controllers,
      budgetPerPeriod: 0,
      periodBlocks: 1,
    })
  asset('KRW', 'open', ['agreement'])
  asset('SCOIN', 'controlled', ['scoin'])
  ok('treasury', 'token', 'mint', { asset: 'KRW', to: key('citizen'), amount: 1000 })
  ok('city', 'scoin', 'createProgram', {
    program: 'green',
    operators: [key('mileage')],
    budget: 1000,
    expiryBlocks: 1000,
  })
  ok('city', 'scoin', 'setPlace', { key: key('shop'), kind: 'merchant' })
  ok('mileage', 'scoin', 'award', { program: 'green', to: key('citizen'), amount: 100 })
  ok('citizen', 'consent', 'grant', {
    grantId: h('g1'),
    grantee: key('hospital'),
    purpose: 'health-care',
    expiry: 1000,
  })
  ok('citizen', 'consent', 'grant', {
    grantId: h('g3'),
    grantee: key('clinic'),
    purpose: 'health-care',
    expiry: 1000,
  })
  const openAt = chain.height + 2
  ok('democracy', 'voting', 'createPoll', {
    pollId: 'park',
    mode: 'poll',
    title: 'A new park?',
    question: h('q'),
    options: ['yes', 'no'],
    electorate: { voters: [key('citizen')] },
    openAt,
    closeAt: openAt + 100,
  })
  return { chain, ok }
}

test('a revoked key spends, votes, consents and logs access no more (KEY_REVOKED)', () => {
  const { chain, ok } = setup()
  for (const who of ['citizen', 'hospital'])
    ok(who, 'identity', 'revokeKey', { key: key(who), fromHeight: chain.height + 1 })
  const code = (who: string, service: string, method: string, args: Value) =>
    chain.tx(k(who), service, method, args).code
  assert.is(
    code('citizen', 'token', 'transfer', { asset: 'KRW', to: key('other'), amount: 1 }),
    'KEY_REVOKED',
  )
  assert.is(code('citizen', 'scoin', 'spend', { to: key('shop'), amount: 1 }), 'KEY_REVOKED')
  assert.is(code('citizen', 'voting', 'vote', { pollId: 'park', option: 0 }), 'KEY_REVOKED')
  assert.is(
    code('citizen', 'consent', 'grant', {
      grantId: h('g2'),
      grantee: key('hospital'),
      purpose: 'health-care',
      expiry: 1000,
    }),
    'KEY_REVOKED',
  )
  assert.is(
    code('hospital', 'consent', 'logAccess', { grantId: h('g1'), purpose: 'health-care' }),
    'KEY_REVOKED',
  )
  assert.is(code('citizen', 'identity', 'registerSubject', { subject: h('s') }), 'KEY_REVOKED')
  // A grant whose subject's key is revoked is no longer consent: the stolen key cannot be the subject's
  // voice, and the subject can no longer revoke with it.
  assert.is(
    code('clinic', 'consent', 'logAccess', { grantId: h('g3'), purpose: 'health-care' }),
    'GRANT_INACTIVE',
  )
  assert.is((chain.query('consent', 'grant', { grantId: h('g3') }) as { active: boolean }).active, false)
  assert.is(chain.query('token', 'balance', { asset: 'KRW', owner: key('citizen') }), 1000)
  assert.is(chain.query('consent', 'accessCount', { subject: key('citizen') }), 0)
})

test('every method of every service refuses a revoked signer before its own rule', () => {
  const signer = key('revoked')
  for (const svc of allServices) {
    if (svc.name === 'identity') continue // identity checks its own state (tested above and in base-identity)
    for (const [name, m] of Object.entries(svc.methods)) {
      const ctx = {
        signer,
        call(service: string, fn: string) {
          if (service === 'identity' && fn === 'isRevoked') return true
          throw new Error(
            `${svc.name}.${name}: the revocation check must come first (called ${service}.${fn})`,
          )
        },
      } as unknown as TxContext
      assert.ok(m.auth, `${svc.name}.${name} has an auth rule`)
      assert.throws(
        () => m.auth!(ctx, {} as never),
        (e: { code?: string }) => e.code === 'KEY_REVOKED',
        `${svc.name}.${name} refuses a revoked signer`,
      )
    }
  }
})

test.run()
