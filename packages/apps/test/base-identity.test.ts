import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type KeyPair, type TxContext, type Value, defineService, s, toHex } from '@cityledger/core'
import { Rng, createTestChain, testSeed, type TestCall } from '@cityledger/core/testing'
import { baseServices } from '../src/base/index.ts'
import { MAX_ORG_KEYS, MAX_ROLES_PER_KEY } from '../src/base/identity.ts'
import { pseudonymCommitment, relationshipKey } from '../src/base/pseudonym.ts'
import { baseChain, expectCode, expectCodes, h32, under } from './base-fixtures.ts'

const SEED = testSeed(20261201)

/** A service that calls identity's exports, to test them as other services see them. */
const probe = defineService({
  name: 'probe',
  version: '1.0.0',
  dependencies: ['identity'],
  methods: {
    check: {
      args: s.object({ scope: s.string(), role: s.string() }),
      handler(ctx: TxContext, a: { scope: string; role: string }) {
        const has = ctx.call<boolean>('identity', 'hasRole', {
          scope: a.scope,
          role: a.role,
          key: ctx.signer,
        })
        const org = ctx.call<string | null>('identity', 'orgOf', { key: ctx.signer })
        ctx.emit('result', { has, org })
      },
    },
    require: {
      args: s.object({ scope: s.string(), role: s.string() }),
      handler(ctx: TxContext, a: { scope: string; role: string }) {
        ctx.call('identity', 'requireRole', { scope: a.scope, role: a.role, key: ctx.signer })
        ctx.state.set('ok', true)
      },
    },
    raw: {
      args: s.object({ fn: s.string(), args: s.any() }),
      handler(ctx: TxContext, a: { fn: string; args: Value }) {
        ctx.call('identity', a.fn, a.args)
      },
    },
  },
})

const setup = () => baseChain({ extra: [probe] })

test('genesis sets the first admins, orgs and roles (bytes or hex keys)', () => {
  const c0 = createTestChain({ services: [] })
  const city = c0.keys('city')
  const dh = c0.keys('district-hall')
  const chain = createTestChain({
    services: baseServices,
    genesis: {
      identity: {
        admins: [{ key: toHex(city.publicKey), scopes: ['*', 'token'] }],
        orgs: [{ org: 'district', name: 'District office', keys: [dh.publicKey] }],
        roles: [{ scope: 'registry', role: 'issuer', key: dh.publicKey }],
      },
    },
  })
  assert.is(chain.query('identity', 'hasRole', { scope: '*', role: 'admin', key: city.publicKey }), true)
  assert.is(chain.query('identity', 'hasRole', { scope: 'token', role: 'admin', key: city.publicKey }), true)
  assert.is(
    chain.query('identity', 'hasRole', { scope: 'registry', role: 'admin', key: city.publicKey }),
    false,
  )
  assert.equal(chain.query('identity', 'roles', { key: dh.publicKey }), [
    { scope: 'registry', role: 'issuer' },
  ])
  assert.is(chain.query('identity', 'orgOf', { key: dh.publicKey }), 'district')
  const org = chain.query('identity', 'org', { org: 'district' }) as {
    keys: { key: Uint8Array; revokedFrom: number | null }[]
  }
  assert.is(org.keys.length, 1)
  assert.is(org.keys[0]!.revokedFrom, null)
})

test('a malformed genesis config is refused', () => {
  assert.throws(
    () =>
      createTestChain({
        services: baseServices,
        genesis: { identity: { admins: [{ key: 'zz', scopes: ['*'] }] } },
      }),
    (e: Error) => /GENESIS|admins\[0\]\.key/.test(e.message),
  )
  assert.throws(() =>
    createTestChain({ services: baseServices, genesis: { identity: { admins: 3 } as unknown as Value } }),
  )
})

test('registerOrg: registrar or city; ORG_EXISTS; KEY_IN_USE; UNAUTHORIZED', () => {
  const { chain, city, key } = setup()
  const reg = key('registrar')
  expectCode(
    chain.tx(city, 'identity', 'grantRole', { scope: 'identity', role: 'registrar', key: reg.publicKey }),
    null,
    'grant registrar',
  )
  expectCode(
    chain.tx(key('nobody'), 'identity', 'registerOrg', { org: 'x', name: 'X' }),
    'UNAUTHORIZED',
    'nobody',
  )
  expectCode(
    chain.tx(reg, 'identity', 'registerOrg', { org: 'hospital', name: 'Hospital federation' }),
    null,
    'registrar',
  )
  assert.is(chain.query('identity', 'orgOf', { key: reg.publicKey }), 'hospital')
  expectCode(
    chain.tx(city, 'identity', 'registerOrg', { org: 'hospital', name: 'again' }),
    'ORG_EXISTS',
    'dup',
  )
  expectCode(
    chain.tx(reg, 'identity', 'registerOrg', { org: 'other', name: 'Other' }),
    'KEY_IN_USE',
    'key in use',
  )
  expectCode(chain.tx(city, 'identity', 'registerOrg', { org: 'city-hall', name: 'City hall' }), null, 'city')
  expectCode(
    chain.tx(city, 'identity', 'registerOrg', { org: 'bad/name', name: 'x' }),
    'BAD_ARGS',
    'bad name',
  )
})

test('addOrgKey: org key, registrar or city; NO_SUCH_ORG; KEY_IN_USE; KEY_REVOKED; LIMIT', () => {
  const { chain, city, key } = setup()
  expectCode(chain.tx(city, 'identity', 'registerOrg', { org: 'city-hall', name: 'City hall' }), null, 'org')
  const k2 = key('k2')
  expectCode(
    chain.tx(key('outsider'), 'identity', 'addOrgKey', { org: 'city-hall', key: k2.publicKey }),
    'UNAUTHORIZED',
    'outsider',
  )
  expectCode(
    chain.tx(city, 'identity', 'addOrgKey', { org: 'city-hall', key: k2.publicKey }),
    null,
    'city adds',
  )
  expectCode(
    chain.tx(k2, 'identity', 'addOrgKey', { org: 'city-hall', key: key('k3').publicKey }),
    null,
    'member adds',
  )
  expectCode(
    chain.tx(city, 'identity', 'addOrgKey', { org: 'nope', key: key('k4').publicKey }),
    'NO_SUCH_ORG',
    'no org',
  )
  expectCode(
    chain.tx(city, 'identity', 'addOrgKey', { org: 'city-hall', key: k2.publicKey }),
    'KEY_IN_USE',
    'dup key',
  )
  const dead = key('dead')
  expectCode(
    chain.tx(dead, 'identity', 'revokeKey', { key: dead.publicKey, fromHeight: chain.height + 1 }),
    null,
    'self revoke',
  )
  expectCode(
    chain.tx(city, 'identity', 'addOrgKey', { org: 'city-hall', key: dead.publicKey }),
    'KEY_REVOKED',
    'revoked key',
  )
  for (let i = 3; i < MAX_ORG_KEYS; i++)
    expectCode(
      chain.tx(city, 'identity', 'addOrgKey', { org: 'city-hall', key: key(`m${i}`).publicKey }),
      null,
      `add ${i}`,
    )
  expectCode(
    chain.tx(city, 'identity', 'addOrgKey', { org: 'city-hall', key: key('one-too-many').publicKey }),
    'LIMIT',
    'limit',
  )
})

test('revokeKey: effective from its height; who may; BAD_HEIGHT; KEY_REVOKED; only brought forward', () => {
  const { chain, city, key } = setup()
  const a = key('a')
  const b = key('b')
  expectCode(
    chain.tx(a, 'identity', 'registerOrg', { org: 'o', name: 'O' }),
    'UNAUTHORIZED',
    'a not registrar',
  )
  expectCode(chain.tx(city, 'identity', 'registerOrg', { org: 'o', name: 'O' }), null, 'org')
  expectCode(chain.tx(city, 'identity', 'addOrgKey', { org: 'o', key: a.publicKey }), null, 'a')
  expectCode(chain.tx(city, 'identity', 'addOrgKey', { org: 'o', key: b.publicKey }), null, 'b')
  expectCode(
    chain.tx(city, 'identity', 'grantRole', {
      scope: 'consent',
      role: 'emergency',
      key: a.publicKey,
      org: 'o',
    }),
    null,
    'grant',
  )
  expectCode(
    chain.tx(key('stranger'), 'identity', 'revokeKey', { key: a.publicKey, fromHeight: 100 }),
    'UNAUTHORIZED',
    'stranger',
  )
  expectCode(chain.tx(b, 'identity', 'revokeKey', { key: a.publicKey, fromHeight: 1 }), 'BAD_HEIGHT', 'past')
  const at = chain.height + 5
  expectCode(
    chain.tx(b, 'identity', 'revokeKey', { key: a.publicKey, fromHeight: at + 10 }),
    null,
    'peer revokes later',
  )
  expectCode(
    chain.tx(a, 'identity', 'revokeKey', { key: a.publicKey, fromHeight: at }),
    null,
    'brought forward',
  )
  expectCode(
    chain.tx(b, 'identity', 'revokeKey', { key: a.publicKey, fromHeight: at + 20 }),
    null,
    'pushing back is a no-op',
  )
  assert.equal(chain.query('identity', 'key', { key: a.publicKey }), { org: 'o', revokedFrom: at })
  while (chain.height < at - 1) {
    const r = chain.tx(a, 'probe', 'check', { scope: 'consent', role: 'emergency' })
    assert.equal(r.events[0]!.data, { has: true, org: 'o' }, `before ${at}`)
  }
  assert.is(chain.height, at - 1)
  const r = chain.tx(a, 'probe', 'check', { scope: 'consent', role: 'emergency' }) // executes at `at`
  assert.equal(r.events[0]!.data, { has: false, org: null }, 'revoked from its height on')
  assert.equal(chain.query('identity', 'roles', { key: a.publicKey }), [])
  expectCode(
    chain.tx(b, 'identity', 'revokeKey', { key: a.publicKey, fromHeight: chain.height + 1 }),
    'KEY_REVOKED',
    'twice',
  )
  expectCode(
    chain.tx(a, 'identity', 'addOrgKey', { org: 'o', key: key('new').publicKey }),
    'UNAUTHORIZED',
    'revoked key cannot sign for its org',
  )
  expectCode(
    chain.tx(city, 'identity', 'grantRole', { scope: 'token', role: 'x', key: a.publicKey }),
    'KEY_REVOKED',
    'no new roles',
  )
  expectCode(
    chain.tx(city, 'identity', 'revokeKey', { key: b.publicKey, fromHeight: chain.height + 1 }),
    null,
    'identity admin revokes',
  )
})

test('grantRole / revokeRole: only the scope admin or the city; errors', () => {
  const { chain, city, key } = setup()
  const tokenAdmin = key('token-admin')
  const k = key('k')
  expectCode(
    chain.tx(city, 'identity', 'grantRole', { scope: 'token', role: 'admin', key: tokenAdmin.publicKey }),
    null,
    'city makes a scope admin',
  )
  expectCode(
    chain.tx(tokenAdmin, 'identity', 'grantRole', { scope: 'token', role: 'issuer:KRW', key: k.publicKey }),
    null,
    'scope admin grants',
  )
  expectCode(
    chain.tx(tokenAdmin, 'identity', 'grantRole', { scope: 'registry', role: 'issuer', key: k.publicKey }),
    'UNAUTHORIZED',
    'other scope',
  )
  expectCode(
    chain.tx(tokenAdmin, 'identity', 'grantRole', { scope: '*', role: 'admin', key: k.publicKey }),
    'UNAUTHORIZED',
    'city scope',
  )
  expectCode(
    chain.tx(k, 'identity', 'grantRole', { scope: 'token', role: 'issuer:X', key: k.publicKey }),
    'UNAUTHORIZED',
    'self grant',
  )
  expectCode(
    chain.tx(tokenAdmin, 'identity', 'grantRole', { scope: 'token', role: 'issuer:KRW', key: k.publicKey }),
    'ROLE_EXISTS',
    'dup',
  )
  expectCode(
    chain.tx(tokenAdmin, 'identity', 'grantRole', {
      scope: 'token',
      role: 'r',
      key: k.publicKey,
      org: 'nope',
    }),
    'NO_SUCH_ORG',
    'no org',
  )
  expectCode(chain.tx(city, 'identity', 'registerOrg', { org: 'o', name: 'O' }), null, 'org')
  expectCode(
    chain.tx(tokenAdmin, 'identity', 'grantRole', { scope: 'token', role: 'r', key: k.publicKey, org: 'o' }),
    'NOT_IN_ORG',
    'not in org',
  )
  expectCode(
    chain.tx(tokenAdmin, 'identity', 'grantRole', { scope: 'token', role: 'bad role', key: k.publicKey }),
    'BAD_ARGS',
    'bad role',
  )
  expectCode(chain.tx(k, 'probe', 'require', { scope: 'token', role: 'issuer:KRW' }), null, 'requireRole ok')
  expectCode(
    chain.tx(k, 'identity', 'revokeRole', { scope: 'token', role: 'issuer:KRW', key: k.publicKey }),
    'UNAUTHORIZED',
    'holder cannot revoke',
  )
  expectCode(
    chain.tx(tokenAdmin, 'identity', 'revokeRole', { scope: 'token', role: 'issuer:KRW', key: k.publicKey }),
    null,
    'revoke',
  )
  expectCode(
    chain.tx(tokenAdmin, 'identity', 'revokeRole', { scope: 'token', role: 'issuer:KRW', key: k.publicKey }),
    'NO_SUCH_ROLE',
    'twice',
  )
  expectCode(
    chain.tx(k, 'probe', 'require', { scope: 'token', role: 'issuer:KRW' }),
    'UNAUTHORIZED',
    'requireRole refuses',
  )
  for (let i = 0; i < MAX_ROLES_PER_KEY; i++)
    expectCode(
      chain.tx(tokenAdmin, 'identity', 'grantRole', { scope: 'token', role: `r${i}`, key: k.publicKey }),
      null,
      `r${i}`,
    )
  expectCode(
    chain.tx(tokenAdmin, 'identity', 'grantRole', { scope: 'token', role: 'more', key: k.publicKey }),
    'LIMIT',
    'limit',
  )
  assert.is((chain.query('identity', 'roles', { key: k.publicKey }) as Value[]).length, MAX_ROLES_PER_KEY)
})

test('registerSubject: a commitment, once', () => {
  const { chain, key } = setup()
  const subject = h32('subject-1')
  expectCode(chain.tx(key('anyone'), 'identity', 'registerSubject', { subject }), null, 'register')
  expectCode(chain.tx(key('other'), 'identity', 'registerSubject', { subject }), 'SUBJECT_EXISTS', 'dup')
  expectCode(
    chain.tx(key('other'), 'identity', 'registerSubject', { subject: new Uint8Array(31) }),
    'BAD_ARGS',
    'not a hash',
  )
  assert.ok(chain.query('identity', 'subject', { subject }))
})

test('exports refuse malformed args with BAD_ARGS (no crash)', () => {
  const { chain, key } = setup()
  expectCode(
    chain.tx(key('x'), 'probe', 'raw', { fn: 'hasRole', args: { scope: 'a', role: 'b', key: 'nope' } }),
    'BAD_ARGS',
    'hasRole',
  )
  expectCode(chain.tx(key('x'), 'probe', 'raw', { fn: 'orgOf', args: 7 }), 'BAD_ARGS', 'orgOf')
})

// ---- property test: random grants, revocations and org changes against a model ----

interface Model {
  roles: Set<string> // scope|role|hex
  revoked: Map<string, number>
  keyOrg: Map<string, string>
  orgKeys: Map<string, string[]>
}

test('enrol: one relationship key per citizen and scope, one scope per key, by the enroller; unenrol', () => {
  const { chain, city, key } = setup()
  const office = key('democracy-office')
  const secret = h32('agency secret')
  const seed = h32('citizen master seed')
  const [kv1, kv2] = [relationshipKey(seed, 'voting'), relationshipKey(h32('new phone'), 'voting')]
  const ks = relationshipKey(seed, 'scoin')
  const cv = pseudonymCommitment(secret, 'voting', 'resident-1')
  const enrol = (by: KeyPair, scope: string, k: KeyPair, commitment: Uint8Array) =>
    chain.tx(by, 'identity', 'enrol', { scope, key: k.publicKey, commitment })
  expectCode(enrol(office, 'voting', kv1, cv), 'UNAUTHORIZED', 'no enroller role')
  expectCode(
    chain.tx(city, 'identity', 'grantRole', { scope: 'voting', role: 'enroller', key: office.publicKey }),
    null,
    'enroller',
  )
  expectCode(enrol(office, 'voting', kv1, cv), null, 'enrol')
  expectCode(enrol(office, 'voting', kv2, cv), 'ALREADY_ENROLLED', 'the same citizen twice')
  expectCode(
    enrol(office, 'scoin', ks, pseudonymCommitment(secret, 'scoin', 'resident-1')),
    'UNAUTHORIZED',
    'other scope',
  )
  expectCode(enrol(city, 'scoin', kv1, h32('x')), 'KEY_IN_USE', 'a key serves one relationship')
  expectCode(
    enrol(city, 'scoin', ks, pseudonymCommitment(secret, 'scoin', 'resident-1')),
    null,
    'city enrols',
  )
  const rec = chain.query('identity', 'pseudonym', { scope: 'voting', key: kv1.publicKey }) as {
    commitment: Uint8Array
    org: string | null
  }
  assert.equal([rec.commitment, rec.org], [cv, null])
  assert.is(chain.query('identity', 'enrolled', { scope: 'voting', key: kv1.publicKey }), true)
  assert.is(chain.query('identity', 'enrolled', { scope: 'scoin', key: kv1.publicKey }), false)
  // A lost phone: the old key leaves, the new one takes the citizen's place; the old key never serves again.
  expectCode(
    chain.tx(office, 'identity', 'unenrol', { scope: 'voting', key: kv1.publicKey }),
    null,
    'unenrol',
  )
  expectCode(
    chain.tx(office, 'identity', 'unenrol', { scope: 'voting', key: kv1.publicKey }),
    'NOT_ENROLLED',
    'twice',
  )
  expectCode(enrol(office, 'voting', kv2, cv), null, 'the new key')
  expectCode(enrol(office, 'voting', kv1, h32('y')), 'KEY_IN_USE', 'the old key is retired')
  // Org keys are agencies, not citizens; revoked keys are dead.
  expectCode(
    chain.tx(city, 'identity', 'revokeKey', { key: key('dead').publicKey, fromHeight: chain.height + 1 }),
    null,
    'revoke',
  )
  expectCode(enrol(office, 'voting', key('dead'), h32('z')), 'KEY_REVOKED', 'revoked key')
})

test(`property: identity state matches a model over random txs (seed ${SEED})`, () => {
  const rng = new Rng(SEED)
  const { chain, city, key } = setup()
  const people: KeyPair[] = [city, ...Array.from({ length: 24 }, (_, i) => key(`p${i}`))]
  const hexOf = (k: KeyPair) => toHex(k.publicKey)
  const m: Model = { roles: new Set(), revoked: new Map(), keyOrg: new Map(), orgKeys: new Map() }
  for (const sc of ['*', 'identity', 'token', 'registry', 'consent'])
    m.roles.add(`${sc}|admin|${hexOf(city)}`)
  const scopes = ['*', 'identity', 'token', 'registry']
  const roleNames = ['admin', 'registrar', 'issuer', 'clerk']
  const orgs = Array.from({ length: 12 }, (_, i) => `o${i}`)
  let height = chain.height
  const dead = (h: string) => m.revoked.has(h) && m.revoked.get(h)! <= height
  const has = (sc: string, r: string, h: string) => !dead(h) && m.roles.has(`${sc}|${r}|${h}`)
  const scopeAdmin = (sc: string, h: string) => has(sc, 'admin', h) || has('*', 'admin', h)
  const activeOrg = (h: string) => (dead(h) ? undefined : m.keyOrg.get(h))
  let txs = 0
  let ok = 0

  for (let b = 0; b < 500; b++) {
    height = chain.height + 1
    const calls: TestCall[] = []
    const expected: (string | null)[] = []
    for (let n = rng.range(1, 6); n > 0; n--) {
      const signer = rng.chance(0.35) ? city : rng.pick(people)
      const sh = hexOf(signer)
      const target = rng.pick(people)
      const th = hexOf(target)
      const op = [0, 0, 1, 1, 2, 3, 4, 4, 0, 1, 2, 3, 4, 0, 1, 5][rng.int(16)]!
      let method: string
      let args: Value
      let code: string | null = null
      if (op <= 1) {
        const scope = rng.pick(scopes)
        const role = rng.pick(roleNames)
        method = 'grantRole'
        args = { scope, role, key: target.publicKey }
        if (!scopeAdmin(scope, sh)) code = 'UNAUTHORIZED'
        else if (dead(th)) code = 'KEY_REVOKED'
        else if (m.roles.has(`${scope}|${role}|${th}`)) code = 'ROLE_EXISTS'
        else m.roles.add(`${scope}|${role}|${th}`)
      } else if (op === 2) {
        const scope = rng.pick(scopes)
        const role = rng.pick(roleNames)
        method = 'revokeRole'
        args = { scope, role, key: target.publicKey }
        if (!scopeAdmin(scope, sh)) code = 'UNAUTHORIZED'
        else if (!m.roles.has(`${scope}|${role}|${th}`)) code = 'NO_SUCH_ROLE'
        else m.roles.delete(`${scope}|${role}|${th}`)
      } else if (op === 3) {
        const org = rng.pick(orgs)
        method = 'registerOrg'
        args = { org, name: org.toUpperCase() }
        if (!has('identity', 'registrar', sh) && !has('*', 'admin', sh)) code = 'UNAUTHORIZED'
        else if (m.orgKeys.has(org)) code = 'ORG_EXISTS'
        else if (m.keyOrg.has(sh)) code = 'KEY_IN_USE'
        else {
          m.orgKeys.set(org, [sh])
          m.keyOrg.set(sh, org)
        }
      } else if (op === 4) {
        const org = rng.pick(orgs)
        method = 'addOrgKey'
        args = { org, key: target.publicKey }
        if (activeOrg(sh) !== org && !has('identity', 'registrar', sh) && !has('*', 'admin', sh))
          code = 'UNAUTHORIZED'
        else if (!m.orgKeys.has(org)) code = 'NO_SUCH_ORG'
        else if (m.keyOrg.has(th)) code = 'KEY_IN_USE'
        else if (m.revoked.has(th)) code = 'KEY_REVOKED'
        else {
          m.orgKeys.get(org)!.push(th)
          m.keyOrg.set(th, org)
        }
      } else {
        // The city key stays, so the run keeps a live admin throughout.
        if (target === city || rng.chance(0.5)) continue
        const from = height + rng.int(4) - (rng.chance(0.1) ? 2 : 0)
        method = 'revokeKey'
        args = { key: target.publicKey, fromHeight: from }
        const org = m.keyOrg.get(th)
        const may = sh === th || (org !== undefined && activeOrg(sh) === org) || scopeAdmin('identity', sh)
        const prev = m.revoked.get(th)
        if (!may) code = 'UNAUTHORIZED'
        else if (from < height) code = 'BAD_HEIGHT'
        else if (prev !== undefined && prev <= height) code = 'KEY_REVOKED'
        else m.revoked.set(th, prev === undefined ? from : Math.min(prev, from))
      }
      calls.push({ key: signer, service: 'identity', method, args })
      expected.push(code)
    }
    const results = chain.block(calls)
    txs += results.length
    ok += expectCodes(results, expected, (i) => `seed ${SEED} block ${height} tx ${i} ${calls[i]!.method}`)
    // Invariants on the whole state, after each block.
    const state = chain.state()
    const roleKeys = new Set(
      under(state, 'identity/role/').map(([k]) => k.slice('identity/role/'.length).replaceAll('/', '|')),
    )
    assert.equal(roleKeys, m.roles, `seed ${SEED} height ${height}: role grants`)
    for (const [k, v] of under(state, 'identity/roles/')) {
      const h = k.slice('identity/roles/'.length)
      for (const [sc, r] of v as string[][])
        assert.ok(m.roles.has(`${sc}|${r}|${h}`), `seed ${SEED}: index lists a role not held`)
      assert.ok((v as Value[]).length <= MAX_ROLES_PER_KEY)
    }
    for (const g of m.roles) {
      const [sc, r, h] = g.split('|')
      assert.ok(
        ((state.get(`identity/roles/${h}`) ?? []) as string[][]).some(([a, c]) => a === sc && c === r),
        `seed ${SEED}: index misses ${g}`,
      )
    }
    for (const [k, v] of under(state, 'identity/revoked/'))
      assert.is(v, m.revoked.get(k.slice('identity/revoked/'.length)))
    assert.is(under(state, 'identity/revoked/').length, m.revoked.size)
    for (const [org, keys] of m.orgKeys) {
      const rec = state.get(`identity/org/${org}`) as { keys: Uint8Array[] }
      assert.equal(rec.keys.map(toHex), keys, `seed ${SEED}: org ${org} keys`)
      for (const k of keys) assert.is(state.get(`identity/keyorg/${k}`), org)
    }
  }
  assert.ok(txs >= 1500, `enough txs (${txs})`)
  assert.ok(ok > txs / 10 && ok < txs, `a mix of accepted and refused txs (${ok}/${txs})`)
})

test.run()
