import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type Value, toHex } from '@cityledger/core'
import { Rng, testSeed, type TestCall } from '@cityledger/core/testing'
import { type AccessEntry, type GrantRecord, grantActiveAt } from '../src/base/consent.ts'
import { baseChain, expectCode, expectCodes, exportCaller, h32, under } from './base-fixtures.ts'

const SEED = testSeed(20261204)

/** A service that records access through consent's exports (like smart healthcare). */
const health = exportCaller('health', 'consent')

function setup() {
  const base = baseChain({
    extra: [health],
    genesis: { consent: { purposes: ['treatment', 'research', 'billing', 'marketing', 'p', 'q', 'er'] } },
  })
  const { chain, city, key } = base
  const medic = key('medic')
  expectCode(
    chain.tx(city, 'identity', 'grantRole', { scope: 'consent', role: 'emergency', key: medic.publicKey }),
    null,
    'emergency role',
  )
  return { ...base, medic, subject: key('subject'), doctor: key('doctor') }
}

test('grant: GRANT_EXISTS; BAD_EXPIRY; BAD_ARGS', () => {
  const { chain, subject, doctor } = setup()
  const g = { grantId: h32('g1'), grantee: doctor.publicKey, purpose: 'treatment', expiry: chain.height + 10 }
  expectCode(chain.tx(subject, 'consent', 'grant', g), null, 'grant')
  expectCode(chain.tx(subject, 'consent', 'grant', g), 'GRANT_EXISTS', 'dup')
  expectCode(
    chain.tx(subject, 'consent', 'grant', { ...g, grantId: h32('g2'), expiry: chain.height + 1 }),
    'BAD_EXPIRY',
    'expiry now',
  )
  expectCode(
    chain.tx(subject, 'consent', 'grant', { ...g, grantId: h32('g2'), purpose: '' }),
    'BAD_ARGS',
    'empty purpose',
  )
  const rec = chain.query('consent', 'grant', { grantId: h32('g1') }) as {
    active: boolean
    subject: Uint8Array
  }
  assert.is(rec.active, true)
  assert.equal(rec.subject, subject.publicKey)
})

test('logAccess: grantee, purpose, active grant; expiry; errors', () => {
  const { chain, subject, doctor, key } = setup()
  const grantId = h32('g1')
  const expiry = chain.height + 8
  expectCode(
    chain.tx(subject, 'consent', 'grant', {
      grantId,
      grantee: doctor.publicKey,
      purpose: 'treatment',
      expiry,
    }),
    null,
    'grant',
  )
  expectCode(chain.tx(doctor, 'consent', 'logAccess', { grantId, purpose: 'treatment' }), null, 'access')
  expectCode(
    chain.tx(key('nurse'), 'consent', 'logAccess', { grantId, purpose: 'treatment' }),
    'NOT_GRANTEE',
    'other grantee',
  )
  expectCode(
    chain.tx(doctor, 'consent', 'logAccess', { grantId, purpose: 'marketing' }),
    'PURPOSE_MISMATCH',
    'purpose',
  )
  expectCode(
    chain.tx(doctor, 'consent', 'logAccess', { grantId: h32('none'), purpose: 'treatment' }),
    'NO_SUCH_GRANT',
    'none',
  )
  chain.advance(expiry - 2 - chain.height)
  expectCode(
    chain.tx(doctor, 'consent', 'logAccess', { grantId, purpose: 'treatment' }),
    null,
    'active at expiry - 1',
  )
  expectCode(
    chain.tx(doctor, 'consent', 'logAccess', { grantId, purpose: 'treatment' }),
    'GRANT_INACTIVE',
    'expired at its expiry height',
  )
  const log = chain.query('consent', 'accessLog', { subject: subject.publicKey }) as unknown as AccessEntry[]
  assert.is(log.length, 2)
  assert.equal(log[0]!.grantId, grantId)
  assert.is(log[0]!.emergency, false)
})

test('revoke: subject only, once; effective from the next height', () => {
  const { chain, subject, doctor } = setup()
  const grantId = h32('g1')
  expectCode(
    chain.tx(subject, 'consent', 'grant', { grantId, grantee: doctor.publicKey, purpose: 'p', expiry: 1000 }),
    null,
    'grant',
  )
  expectCode(chain.tx(doctor, 'consent', 'revoke', { grantId }), 'UNAUTHORIZED', 'grantee cannot revoke')
  expectCode(chain.tx(subject, 'consent', 'revoke', { grantId: h32('x') }), 'NO_SUCH_GRANT', 'none')
  const [rev, sameBlock] = chain.block([
    { key: subject, service: 'consent', method: 'revoke', args: { grantId } },
    { key: doctor, service: 'consent', method: 'logAccess', args: { grantId, purpose: 'p' } },
  ])
  expectCode(rev!, null, 'revoke')
  expectCode(sameBlock!, null, 'still active in the revoking block')
  expectCode(
    chain.tx(doctor, 'consent', 'logAccess', { grantId, purpose: 'p' }),
    'GRANT_INACTIVE',
    'next height',
  )
  expectCode(chain.tx(subject, 'consent', 'revoke', { grantId }), 'ALREADY_REVOKED', 'twice')
})

test('emergencyAccess: role required; the entry is flagged with its reason', () => {
  const { chain, subject, medic, doctor } = setup()
  const args = { subject: subject.publicKey, purpose: 'er', reason: h32('unconscious') }
  expectCode(chain.tx(doctor, 'consent', 'emergencyAccess', args), 'UNAUTHORIZED', 'no role')
  expectCode(chain.tx(medic, 'consent', 'emergencyAccess', args), null, 'medic')
  const [e] = chain.query('consent', 'accessLog', { subject: subject.publicKey }) as unknown as AccessEntry[]
  assert.is(e!.emergency, true)
  assert.is(e!.grantId, null)
  assert.equal(e!.reason, h32('unconscious'))
  assert.equal(e!.grantee, medic.publicKey)
})

test('exports: isActive, requireActive, recordAccess, recordEmergency', () => {
  const { chain, city, subject, doctor, key } = setup()
  const grantId = h32('g1')
  expectCode(
    chain.tx(subject, 'consent', 'grant', { grantId, grantee: doctor.publicKey, purpose: 'p', expiry: 1000 }),
    null,
    'grant',
  )
  const chk = { grantId, grantee: doctor.publicKey, purpose: 'p' }
  assert.is(chain.tx(doctor, 'health', 'call', { fn: 'isActive', args: chk }).events[0]!.data, true)
  assert.is(
    chain.tx(doctor, 'health', 'call', { fn: 'isActive', args: { ...chk, purpose: 'q' } }).events[0]!.data,
    false,
  )
  expectCode(chain.tx(doctor, 'health', 'call', { fn: 'requireActive', args: chk }), null, 'requireActive')
  expectCode(
    chain.tx(doctor, 'health', 'call', { fn: 'requireActive', args: { ...chk, grantee: subject.publicKey } }),
    'NOT_GRANTEE',
    'requireActive refuses',
  )
  const r = chain.tx(doctor, 'health', 'call', { fn: 'recordAccess', args: chk })
  expectCode(r, null, 'recordAccess')
  assert.is(r.events.find((e) => e.name === 'out')!.data, 0)
  const er = key('er-doctor')
  const em = { subject: subject.publicKey, grantee: er.publicKey, purpose: 'er', reason: h32('r') }
  expectCode(
    chain.tx(er, 'health', 'call', { fn: 'recordEmergency', args: em }),
    'UNAUTHORIZED',
    'no emergency role',
  )
  expectCode(
    chain.tx(city, 'identity', 'grantRole', { scope: 'health', role: 'emergency', key: er.publicKey }),
    null,
    'health emergency role',
  )
  expectCode(chain.tx(er, 'health', 'call', { fn: 'recordEmergency', args: em }), null, 'recordEmergency')
  expectCode(chain.tx(er, 'health', 'call', { fn: 'recordAccess', args: 5 }), 'BAD_ARGS', 'bad args')
  const log = chain.query('consent', 'accessLog', { subject: subject.publicKey }) as unknown as AccessEntry[]
  assert.equal(
    log.map((e) => [e.via, e.emergency]),
    [
      ['health', false],
      ['health', true],
    ],
  )
  assert.is(chain.query('consent', 'accessCount', { subject: subject.publicKey }), 2)
  assert.is(
    (chain.query('consent', 'accessLog', { subject: subject.publicKey, from: 1, limit: 5 }) as Value[])
      .length,
    1,
  )
})

// ---- property test ----

test(`property: every log entry points to a grant active at its height, or a flagged emergency role (seed ${SEED})`, () => {
  const rng = new Rng(SEED)
  const { chain, city, medic, key } = setup()
  const subjects = Array.from({ length: 4 }, (_, i) => key(`s${i}`))
  const grantees = Array.from({ length: 4 }, (_, i) => key(`g${i}`))
  const signers = [...subjects, ...grantees, medic]
  const purposes = ['treatment', 'research', 'billing']
  const grants = new Map<
    string,
    {
      subject: string
      grantee: string
      purpose: string
      expiry: number
      grantedAt: number
      revokedFrom: number | null
    }
  >()
  const emergency = new Set([toHex(medic.publicKey)])
  /** Heights at which each key held the emergency role (for the flagged entries). */
  const emergencyAt = new Map<string, Set<number>>()
  const logCount = new Map<string, number>()
  const active = (g: { grantedAt: number; expiry: number; revokedFrom: number | null }, h: number) =>
    g.grantedAt <= h && h < g.expiry && (g.revokedFrom === null || h < g.revokedFrom)
  let seq = 0
  let txs = 0
  let ok = 0
  let logged = 0
  for (let b = 0; b < 400; b++) {
    const height = chain.height + 1
    const calls: TestCall[] = []
    const expected: (string | null)[] = []
    for (let n = rng.range(1, 7); n > 0; n--) {
      const op = rng.int(10)
      let code: string | null = null
      const pickGrant = () => (seq > 0 && rng.chance(0.95) ? `g${rng.int(seq)}` : `g${seq}`)
      if (op < 3) {
        const subject = rng.pick(subjects)
        const id = `g${seq++}`
        const expiry = height + rng.int(25) - 1
        const grantee = rng.pick(grantees)
        const purpose = rng.pick(purposes)
        calls.push({
          key: subject,
          service: 'consent',
          method: 'grant',
          args: { grantId: h32(id), grantee: grantee.publicKey, purpose, expiry },
        })
        if (expiry <= height) code = 'BAD_EXPIRY'
        else
          grants.set(id, {
            subject: toHex(subject.publicKey),
            grantee: toHex(grantee.publicKey),
            purpose,
            expiry,
            grantedAt: height,
            revokedFrom: null,
          })
      } else if (op === 3) {
        const id = pickGrant()
        const g = grants.get(id)
        const signer =
          g && rng.chance(0.8) ? subjects.find((s) => toHex(s.publicKey) === g.subject)! : rng.pick(signers)
        calls.push({ key: signer, service: 'consent', method: 'revoke', args: { grantId: h32(id) } })
        if (!g) code = 'NO_SUCH_GRANT'
        else if (g.subject !== toHex(signer.publicKey)) code = 'UNAUTHORIZED'
        else if (g.revokedFrom !== null) code = 'ALREADY_REVOKED'
        else g.revokedFrom = height + 1
      } else if (op < 8) {
        const id = pickGrant()
        const g = grants.get(id)
        const signer =
          g && rng.chance(0.8) ? grantees.find((s) => toHex(s.publicKey) === g.grantee)! : rng.pick(signers)
        const purpose = g && rng.chance(0.85) ? g.purpose : rng.pick(purposes)
        const viaExport = rng.chance(0.3)
        if (viaExport)
          calls.push({
            key: signer,
            service: 'health',
            method: 'call',
            args: { fn: 'recordAccess', args: { grantId: h32(id), grantee: signer.publicKey, purpose } },
          })
        else
          calls.push({
            key: signer,
            service: 'consent',
            method: 'logAccess',
            args: { grantId: h32(id), purpose },
          })
        if (!g) code = 'NO_SUCH_GRANT'
        else if (g.grantee !== toHex(signer.publicKey)) code = 'NOT_GRANTEE'
        else if (g.purpose !== purpose) code = 'PURPOSE_MISMATCH'
        else if (!active(g, height)) code = 'GRANT_INACTIVE'
        else logCount.set(g.subject, (logCount.get(g.subject) ?? 0) + 1)
      } else if (op === 8) {
        const signer = rng.chance(0.5) ? medic : rng.pick(signers)
        const subject = rng.pick(subjects)
        calls.push({
          key: signer,
          service: 'consent',
          method: 'emergencyAccess',
          args: { subject: subject.publicKey, purpose: 'er', reason: h32(`r${b}`) },
        })
        const sh = toHex(signer.publicKey)
        if (!emergency.has(sh)) code = 'UNAUTHORIZED'
        else {
          const sub = toHex(subject.publicKey)
          logCount.set(sub, (logCount.get(sub) ?? 0) + 1)
          if (!emergencyAt.has(sh)) emergencyAt.set(sh, new Set())
          emergencyAt.get(sh)!.add(height)
        }
      } else {
        // The city moves the emergency role around.
        const who = rng.pick([medic, ...grantees])
        const wh = toHex(who.publicKey)
        const grant = !emergency.has(wh)
        calls.push({
          key: city,
          service: 'identity',
          method: grant ? 'grantRole' : 'revokeRole',
          args: { scope: 'consent', role: 'emergency', key: who.publicKey },
        })
        if (grant) emergency.add(wh)
        else emergency.delete(wh)
      }
      expected.push(code)
    }
    const results = chain.block(calls)
    txs += results.length
    ok += expectCodes(
      results,
      expected,
      (i) => `seed ${SEED} height ${height} tx ${i} ${calls[i]!.service}.${calls[i]!.method}`,
    )
    if (rng.chance(0.2)) chain.advance(rng.range(1, 5))
    // Invariant on the raw state: every entry is justified at its own height.
    const state = chain.state()
    const grantOf = (id: Uint8Array) =>
      state.get(`consent/grant/${toHex(id)}`) as unknown as GrantRecord | undefined
    for (const [k, v] of under(state, 'consent/log/')) {
      if (k.endsWith('/n')) {
        assert.is(v, logCount.get(k.split('/')[2]!), `seed ${SEED}: log size of ${k}`)
        continue
      }
      const e = v as unknown as AccessEntry
      if (e.emergency) {
        assert.is(e.grantId, null)
        assert.ok(
          emergencyAt.get(toHex(e.grantee))?.has(e.height),
          `seed ${SEED}: flagged entry ${k} by a key without the emergency role at ${e.height}`,
        )
      } else {
        const g = grantOf(e.grantId!)
        assert.ok(g, `seed ${SEED}: entry ${k} points to no grant`)
        assert.equal(g.grantee, e.grantee, `seed ${SEED}: entry ${k} grantee`)
        assert.is(g.purpose, e.purpose, `seed ${SEED}: entry ${k} purpose`)
        assert.equal(toHex(g.subject), k.split('/')[2], `seed ${SEED}: entry ${k} is in its subject's log`)
        assert.ok(
          grantActiveAt(g, e.height),
          `seed ${SEED}: entry ${k} at ${e.height}: grant not active then`,
        )
      }
      logged++
    }
    for (const [id, g] of grants)
      assert.is(
        (grantOf(h32(id)) as GrantRecord).revokedFrom,
        g.revokedFrom,
        `seed ${SEED}: ${id} revokedFrom`,
      )
  }
  assert.ok(txs >= 1500 && logged > 0, `enough txs (${txs})`)
  assert.ok(ok > txs / 4 && ok < txs, `a mix of accepted and refused txs (${ok}/${txs})`)
})

test('privacy: purposes are codes from a fixed table, never free text', () => {
  const { chain, city, subject, doctor } = setup()
  const g = (n: number, purpose: string) => ({
    grantId: h32(`pc${n}`),
    grantee: doctor.publicKey,
    purpose,
    expiry: chain.height + 10,
  })
  expectCode(chain.tx(subject, 'consent', 'grant', g(1, 'HIV test follow-up')), 'BAD_ARGS', 'free text')
  expectCode(chain.tx(subject, 'consent', 'grant', g(2, 'oncology')), 'UNKNOWN_PURPOSE', 'not in the table')
  expectCode(chain.tx(subject, 'consent', 'definePurpose', { code: 'oncology' }), 'UNAUTHORIZED', 'not admin')
  expectCode(chain.tx(city, 'consent', 'definePurpose', { code: 'oncology' }), null, 'define')
  expectCode(chain.tx(city, 'consent', 'definePurpose', { code: 'oncology' }), 'PURPOSE_EXISTS', 'twice')
  expectCode(
    chain.tx(city, 'consent', 'definePurpose', { code: 'health:x' }),
    'BAD_ARGS',
    "':' codes are a service's",
  )
  expectCode(chain.tx(subject, 'consent', 'grant', g(3, 'oncology')), null, 'a defined code')
  // A service defines codes under its own name only.
  expectCode(
    chain.tx(doctor, 'health', 'call', { fn: 'definePurpose', args: { code: 'health:records' } }),
    null,
    'own prefix',
  )
  expectCode(
    chain.tx(doctor, 'health', 'call', { fn: 'definePurpose', args: { code: 'qualification:x' } }),
    'UNAUTHORIZED',
    "another service's prefix",
  )
  expectCode(chain.tx(subject, 'consent', 'grant', g(4, 'health:records')), null, "a service's code")
  expectCode(
    chain.tx(doctor, 'consent', 'emergencyAccess', {
      subject: subject.publicKey,
      purpose: 'made-up',
      reason: h32('r'),
    }),
    'UNAUTHORIZED',
    'emergency needs the role first',
  )
  // The default table of a chain whose genesis names none.
  const plain = baseChain()
  assert.ok(plain.chain.query('consent', 'purpose', { code: 'health-care' }))
  assert.is(plain.chain.query('consent', 'purpose', { code: 'treatment' }), null)
})

test.run()
