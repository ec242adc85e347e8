import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type TxContext, type Value, defineService, s, toHex } from '@cityledger/core'
import { Rng, testSeed, type TestCall } from '@cityledger/core/testing'
import { baseChain, expectCode, expectCodes, h32, under } from './base-fixtures.ts'

const SEED = testSeed(20261203)

/** A service that issues documents through registry's exports (like the certificates service). */
const caller = (svcName: string) =>
  defineService({
    name: svcName,
    version: '1.0.0',
    dependencies: ['registry'],
    methods: {
      issue: { args: s.any(), handler: (ctx: TxContext, a: Value) => void ctx.call('registry', 'issue', a) },
      setStatus: {
        args: s.any(),
        handler: (ctx: TxContext, a: Value) => void ctx.call('registry', 'setStatus', a),
      },
      get: {
        args: s.any(),
        handler: (ctx: TxContext, a: Value) => ctx.emit('doc', ctx.call('registry', 'get', a)),
      },
    },
  })

function setup() {
  const base = baseChain({ extra: [caller('certs'), caller('other')] })
  const { chain, city, key } = base
  const office = key('office')
  expectCode(
    chain.tx(city, 'identity', 'grantRole', { scope: 'registry', role: 'issuer', key: office.publicKey }),
    null,
    'issuer role',
  )
  return { ...base, office }
}

test('issue: issuer role; DOC_EXISTS; BAD_VALIDITY; BAD_ARGS', () => {
  const { chain, office, key } = setup()
  const doc = { docId: h32('d1'), type: 'residence', commitment: h32('c1'), validUntil: 0 }
  expectCode(chain.tx(key('random'), 'registry', 'issue', doc), 'UNAUTHORIZED', 'no role')
  expectCode(chain.tx(office, 'registry', 'issue', doc), null, 'issue')
  expectCode(chain.tx(office, 'registry', 'issue', doc), 'DOC_EXISTS', 'dup')
  expectCode(
    chain.tx(office, 'registry', 'issue', { ...doc, docId: h32('d2'), validUntil: 1 }),
    'BAD_VALIDITY',
    'past validity',
  )
  expectCode(
    chain.tx(office, 'registry', 'issue', { ...doc, docId: h32('d2'), commitment: new Uint8Array(8) }),
    'BAD_ARGS',
    'not a hash',
  )
  expectCode(
    chain.tx(office, 'registry', 'issue', { ...doc, docId: h32('d2'), name: 'Kim' }),
    'BAD_ARGS',
    'no extra fields (no personal data)',
  )
  const rec = chain.query('registry', 'doc', { docId: h32('d1') }) as {
    status: string
    issuer: Uint8Array
    scope: string
  }
  assert.is(rec.status, 'active')
  assert.is(rec.scope, 'registry')
  assert.equal(rec.issuer, office.publicKey)
})

test('status: issuer only; suspend / reinstate / revoke; revoked is final; errors', () => {
  const { chain, office, key } = setup()
  const docId = h32('d1')
  expectCode(
    chain.tx(office, 'registry', 'issue', { docId, type: 'tax', commitment: h32('c'), validUntil: 0 }),
    null,
    'issue',
  )
  expectCode(chain.tx(key('other'), 'registry', 'suspend', { docId }), 'UNAUTHORIZED', 'not the issuer')
  expectCode(chain.tx(office, 'registry', 'reinstate', { docId }), 'BAD_TRANSITION', 'already active')
  expectCode(chain.tx(office, 'registry', 'suspend', { docId }), null, 'suspend')
  expectCode(chain.tx(office, 'registry', 'suspend', { docId }), 'BAD_TRANSITION', 'already suspended')
  assert.is(
    (chain.query('registry', 'verify', { docId, commitment: h32('c') }) as { valid: boolean }).valid,
    false,
  )
  expectCode(chain.tx(office, 'registry', 'reinstate', { docId }), null, 'reinstate')
  expectCode(chain.tx(office, 'registry', 'revoke', { docId }), null, 'revoke')
  for (const m of ['suspend', 'reinstate', 'revoke'])
    expectCode(chain.tx(office, 'registry', m, { docId }), 'REVOKED_FINAL', m)
  expectCode(chain.tx(office, 'registry', 'revoke', { docId: h32('none') }), 'NO_SUCH_DOC', 'no doc')
})

test('verify: valid, wrong commitment, expired, missing', () => {
  const { chain, office } = setup()
  const docId = h32('d1')
  const until = chain.height + 3
  expectCode(
    chain.tx(office, 'registry', 'issue', { docId, type: 'tax', commitment: h32('c'), validUntil: until }),
    null,
    'issue',
  )
  assert.equal(chain.query('registry', 'verify', { docId, commitment: h32('c') }), {
    valid: true,
    issuer: office.publicKey,
    status: 'active',
    type: 'tax',
    validUntil: until,
  })
  assert.is(
    (chain.query('registry', 'verify', { docId, commitment: h32('x') }) as { valid: boolean }).valid,
    false,
  )
  chain.advance(until - chain.height)
  assert.is(
    (chain.query('registry', 'verify', { docId, commitment: h32('c') }) as { valid: boolean }).valid,
    true,
    'valid at validUntil',
  )
  chain.advance(1)
  assert.is(
    (chain.query('registry', 'verify', { docId, commitment: h32('c') }) as { valid: boolean }).valid,
    false,
    'expired after',
  )
  assert.equal(chain.query('registry', 'verify', { docId: h32('zz'), commitment: h32('c') }), {
    valid: false,
    issuer: null,
    status: null,
    type: null,
    validUntil: null,
  })
})

test('exports: the caller is the scope; only its scope and its issuer change status', () => {
  const { chain, office, key } = setup()
  const clerk = key('clerk')
  const docId = h32('svc-doc')
  const args = {
    docId,
    type: 'birth',
    commitment: h32('c'),
    issuer: office.publicKey,
    validUntil: 0,
    holder: h32('holder'),
  }
  expectCode(chain.tx(clerk, 'certs', 'issue', args), null, 'issue via certs')
  expectCode(chain.tx(clerk, 'certs', 'issue', args), 'DOC_EXISTS', 'dup via export')
  const r = chain.tx(clerk, 'certs', 'get', { docId })
  assert.is((r.events[0]!.data as { scope: string }).scope, 'certs')
  expectCode(
    chain.tx(office, 'registry', 'suspend', { docId }),
    'WRONG_SCOPE',
    'method on a service document',
  )
  expectCode(
    chain.tx(office, 'other', 'setStatus', { docId, status: 'revoked', by: office.publicKey }),
    'WRONG_SCOPE',
    'other service',
  )
  expectCode(
    chain.tx(clerk, 'certs', 'setStatus', { docId, status: 'revoked', by: clerk.publicKey }),
    'UNAUTHORIZED',
    'not the issuer',
  )
  expectCode(
    chain.tx(clerk, 'certs', 'setStatus', { docId, status: 'revoked', by: office.publicKey }),
    null,
    'revoke',
  )
  expectCode(
    chain.tx(clerk, 'certs', 'setStatus', { docId, status: 'active', by: office.publicKey }),
    'REVOKED_FINAL',
    'final',
  )
  expectCode(
    chain.tx(clerk, 'certs', 'setStatus', { docId, status: 'gone', by: office.publicKey }),
    'BAD_ARGS',
    'bad status',
  )
})

test("hole: status changes need the issuing office's current authority, not the old key", () => {
  const { chain, city, key } = setup()
  const [k1, k2, k3] = [key('archive-1'), key('archive-2'), key('archive-3')]
  const ok = (r: ReturnType<typeof chain.tx>, what: string) => expectCode(r, null, what)
  ok(
    chain.tx(city, 'identity', 'grantRole', { scope: 'identity', role: 'registrar', key: k1.publicKey }),
    'registrar',
  )
  ok(chain.tx(k1, 'identity', 'registerOrg', { org: 'archive', name: 'City archive' }), 'org')
  for (const k of [k2, k3])
    ok(chain.tx(k1, 'identity', 'addOrgKey', { org: 'archive', key: k.publicKey }), 'key')
  for (const k of [k1, k2, k3])
    ok(
      chain.tx(city, 'identity', 'grantRole', {
        scope: 'registry',
        role: 'issuer',
        key: k.publicKey,
        org: 'archive',
      }),
      'issuer',
    )
  const doc = (label: string) => ({
    docId: h32(label),
    type: 'permit',
    commitment: h32(`c-${label}`),
    validUntil: 0,
  })
  ok(chain.tx(k1, 'registry', 'issue', doc('d1')), 'issue d1')
  ok(chain.tx(k3, 'registry', 'issue', doc('d3')), 'issue d3')
  ok(chain.tx(k1, 'registry', 'suspend', { docId: h32('d1') }), 'suspend d1')
  // k1 loses its issuer role: it may no longer reinstate what it issued; the office's other key may revoke it.
  ok(
    chain.tx(city, 'identity', 'revokeRole', { scope: 'registry', role: 'issuer', key: k1.publicKey }),
    'unrole',
  )
  expectCode(
    chain.tx(k1, 'registry', 'reinstate', { docId: h32('d1') }),
    'UNAUTHORIZED',
    'removed key reinstates',
  )
  ok(chain.tx(k2, 'registry', 'revoke', { docId: h32('d1') }), "the office's other key revokes")
  // k3's key is revoked: same.
  ok(chain.tx(k3, 'identity', 'revokeKey', { key: k3.publicKey, fromHeight: chain.height + 1 }), 'revokeKey')
  expectCode(chain.tx(k3, 'registry', 'suspend', { docId: h32('d3') }), 'KEY_REVOKED', 'revoked key suspends')
  ok(chain.tx(k2, 'registry', 'suspend', { docId: h32('d3') }), "the office's current key suspends")
  // A key of another office with the issuer role does not.
  const stranger = key('stranger')
  ok(
    chain.tx(city, 'identity', 'grantRole', { scope: 'registry', role: 'issuer', key: stranger.publicKey }),
    'role',
  )
  expectCode(
    chain.tx(stranger, 'registry', 'reinstate', { docId: h32('d3') }),
    'UNAUTHORIZED',
    'other office',
  )
  assert.is((chain.query('registry', 'doc', { docId: h32('d3') }) as { status: string }).status, 'suspended')
})

// ---- property test ----

test(`property: status follows the rules and revoked never returns over random txs (seed ${SEED})`, () => {
  const rng = new Rng(SEED)
  const { chain, office, city, key } = setup()
  const office2 = key('office2')
  expectCode(
    chain.tx(city, 'identity', 'grantRole', { scope: 'registry', role: 'issuer', key: office2.publicKey }),
    null,
    'issuer 2',
  )
  const signers = [office, office2, key('citizen'), city]
  const issuers = new Set([toHex(office.publicKey), toHex(office2.publicKey)])
  const docs = new Map<
    string,
    { issuer: string; status: string; scope: string; validUntil: number; commitment: Uint8Array }
  >()
  const everRevoked = new Set<string>()
  let seq = 0
  let txs = 0
  let ok = 0
  for (let b = 0; b < 350; b++) {
    const height = chain.height + 1
    const calls: TestCall[] = []
    const expected: (string | null)[] = []
    for (let n = rng.range(1, 8); n > 0; n--) {
      const signer = rng.pick(signers)
      const sh = toHex(signer.publicKey)
      const op = rng.int(10)
      const existing = seq > 0 && rng.chance(0.9) ? `d${rng.int(seq)}` : `d${seq}`
      let code: string | null = null
      if (op < 3) {
        const id = rng.chance(0.05) && seq > 0 ? existing : `d${seq++}`
        const viaService = rng.chance(0.3)
        const validUntil = rng.chance(0.5) ? 0 : height + rng.int(20) - 2
        const commitment = h32(`c${id}`)
        const d = { docId: h32(id), type: 'cert', commitment, validUntil }
        if (viaService)
          calls.push({
            key: signer,
            service: 'certs',
            method: 'issue',
            args: { ...d, issuer: signer.publicKey },
          })
        else calls.push({ key: signer, service: 'registry', method: 'issue', args: d })
        if (!viaService && !issuers.has(sh)) code = 'UNAUTHORIZED'
        else if (docs.has(id)) code = 'DOC_EXISTS'
        else if (validUntil !== 0 && validUntil < height) code = 'BAD_VALIDITY'
        else
          docs.set(id, {
            issuer: sh,
            status: 'active',
            scope: viaService ? 'certs' : 'registry',
            validUntil,
            commitment,
          })
      } else {
        const status = rng.pick(['active', 'suspended', 'revoked'])
        const viaService = rng.chance(0.3)
        const docId = h32(existing)
        if (viaService)
          calls.push({
            key: signer,
            service: rng.chance(0.8) ? 'certs' : 'other',
            method: 'setStatus',
            args: { docId, status, by: signer.publicKey },
          })
        else
          calls.push({
            key: signer,
            service: 'registry',
            method: { active: 'reinstate', suspended: 'suspend', revoked: 'revoke' }[status]!,
            args: { docId },
          })
        const d = docs.get(existing)
        const scope = viaService ? calls.at(-1)!.service : 'registry'
        // The methods need the issuer role first (the issuers here have no office: the issuer's own key).
        if (!viaService && !issuers.has(sh)) code = 'UNAUTHORIZED'
        else if (!d) code = 'NO_SUCH_DOC'
        else if (d.scope !== scope) code = 'WRONG_SCOPE'
        else if (d.issuer !== sh) code = 'UNAUTHORIZED'
        else if (d.status === 'revoked') code = 'REVOKED_FINAL'
        else if (d.status === status) code = 'BAD_TRANSITION'
        else d.status = status
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
    const state = chain.state()
    const stored = under(state, 'registry/doc/')
    assert.is(stored.length, docs.size, `seed ${SEED}: documents are never deleted`)
    for (const [id, d] of docs) {
      const rec = state.get(`registry/doc/${toHex(h32(id))}`) as {
        status: string
        issuer: Uint8Array
        scope: string
      }
      assert.is(rec.status, d.status, `seed ${SEED} height ${height}: ${id} status`)
      assert.is(toHex(rec.issuer), d.issuer)
      assert.is(rec.scope, d.scope)
      if (everRevoked.has(id)) assert.is(rec.status, 'revoked', `seed ${SEED}: ${id} came back from revoked`)
      if (rec.status === 'revoked') everRevoked.add(id)
    }
    if (b % 25 === 0) {
      for (const [id, d] of [...docs].slice(-20)) {
        const v = chain.query('registry', 'verify', { docId: h32(id), commitment: d.commitment }) as {
          valid: boolean
        }
        assert.is(
          v.valid,
          d.status === 'active' && (d.validUntil === 0 || chain.height <= d.validUntil),
          `seed ${SEED}: verify ${id}`,
        )
      }
    }
  }
  assert.ok(everRevoked.size > 0 && txs >= 1500, `enough txs (${txs}) and revocations (${everRevoked.size})`)
  assert.ok(ok > txs / 5 && ok < txs, `a mix of accepted and refused txs (${ok}/${txs})`)
})

test.run()
