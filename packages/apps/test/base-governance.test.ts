// governance: the rules of test/../src/base/governance.ts, each refusal with its error code.
import { type TxContext, type TxResult, type Value, createRuntime, signTx, toHex } from '@cityledger/core'
import { createTestChain } from '@cityledger/core/testing'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { baseServices, governance } from '../src/base/index.ts'
import { baseChain, expectCode, exportCaller, h32 } from './base-fixtures.ts'

const DELAY = 5
const LIFETIME = 100

function setup(opts: { threshold?: number; validators?: number; noAuthority?: boolean } = {}) {
  const probe = createTestChain({ services: [] })
  const members = ['a', 'b', 'c'].map((l) => probe.keys(`member-${l}`))
  const validators = Array.from({ length: opts.validators ?? 5 }, (_, i) => probe.keys(`validator-${i}`))
  const base = baseChain({
    extra: [exportCaller('reader', 'governance')],
    genesis: {
      governance: {
        members: members.map((m) => m.publicKey),
        threshold: opts.threshold ?? 2,
        validators: validators.map((v) => toHex(v.publicKey)),
        parameters: { 'governance.minActivationDelay': DELAY, 'governance.maxProposalLifetime': LIFETIME },
      },
      // Executed upgrade and validator proposals schedule the runtime's upgrades and validator sets
      // (ctx.scheduleUpgrade, ctx.scheduleValidators).
      ...(opts.noAuthority
        ? {}
        : { _sys: { upgradeAuthority: 'governance', validatorAuthority: 'governance' } }),
    },
  })
  const { chain } = base
  const [a, b, c] = members as [(typeof members)[0], (typeof members)[0], (typeof members)[0]]
  const vk = validators.map((v) => v.publicKey)
  /** A proposal expiring in 10 blocks, activating right after the delay. */
  const propose = (by = a, kind: string, payload: Value, extra: Record<string, Value> = {}) => {
    const expiresAt = chain.height + 10
    return chain.tx(by, 'governance', 'propose', {
      kind,
      payload,
      expiresAt,
      ...(kind === 'governance' ? {} : { activationHeight: expiresAt + DELAY }),
      ...extra,
    })
  }
  const approve = (by: typeof a, id: number) => chain.tx(by, 'governance', 'approve', { id })
  const proposal = (id: number) => chain.query('governance', 'proposal', { id }) as Record<string, Value>
  const setAt = (height: number) =>
    (chain.query('governance', 'validatorSetAt', { height }) as Uint8Array[]).map((k) => toHex(k))
  return { ...base, a, b, c, vk, propose, approve, proposal, setAt }
}

const idOf = (r: TxResult) => r.events.find((e) => e.name === 'created')!.data as { id: number }
const names = (r: TxResult) => r.events.map((e) => e.name)

test('genesis: members, k of n, validators and parameters are checked; no section leaves it dormant', () => {
  const k = (l: string) => createTestChain({ services: [] }).keys(l).publicKey
  const chainWith = (g: Value) => createTestChain({ services: baseServices, genesis: { governance: g } })
  const refused = (g: Value, text: string) =>
    assert.throws(
      () => chainWith(g),
      (e: Error) => e.message.includes('genesis of governance failed') && e.message.includes(text),
      text,
    )
  refused({ members: [k('x'), k('x')], threshold: 1 }, 'DUPLICATE_MEMBER')
  refused({ members: [k('x'), k('y')], threshold: 3 }, 'BAD_THRESHOLD')
  refused({ members: [k('x')], threshold: 0 }, 'BAD_THRESHOLD')
  refused({ members: [], threshold: 1 }, 'at least one member')
  refused({ members: [k('x')] }, 'threshold: expected an integer')
  refused({ members: [new Uint8Array(31)], threshold: 1 }, 'members[0]: expected a 32-byte key')
  refused({ members: [k('x')], threshold: 1, validators: [k('v'), k('v')] }, 'listed twice')
  refused({ members: [k('x')], threshold: 1, parameters: { 'no.such': 1 } }, 'UNKNOWN_PARAMETER')
  refused(
    { members: [k('x')], threshold: 1, parameters: { 'consensus.maxBlockTxs': 0 } },
    'PARAMETER_OUT_OF_RANGE',
  )
  refused({ members: [k('x')], threshold: 1, quorum: 2 }, 'unknown field quorum')
  // Without a section nobody is a member.
  const dormant = createTestChain({ services: baseServices })
  assert.equal(dormant.query('governance', 'membership', {}), {
    epoch: 0,
    members: [],
    threshold: 0,
    open: 0,
  })
  const r = dormant.tx(dormant.keys('x'), 'governance', 'approve', { id: 0 })
  expectCode(r, 'NOT_MEMBER', 'dormant')
})

test('only members propose and approve; the proposer approves; one approval each; k reached executes once', () => {
  const { chain, a, b, c, key, vk, propose, approve, proposal } = setup()
  const payload = { changes: [{ op: 'add', key: h32('v-new') }] }
  expectCode(propose(key('outsider'), 'validators', payload), 'NOT_MEMBER', 'outsider proposes')
  const r = propose(a, 'validators', payload)
  expectCode(r, null, 'propose')
  assert.equal(names(r), ['created', 'approved'])
  const { id } = idOf(r)
  expectCode(approve(key('outsider'), id), 'NOT_MEMBER', 'outsider approves')
  expectCode(approve(a, id), 'ALREADY_APPROVED', 'proposer again')
  expectCode(approve(a, 99), 'NO_SUCH_PROPOSAL', 'unknown id')
  const done = approve(b, id)
  expectCode(done, null, 'second approval')
  assert.equal(names(done), ['approved', 'executed'])
  assert.is(proposal(id).status, 'executed')
  assert.is(proposal(id).closedAt, chain.height)
  expectCode(approve(c, id), 'PROPOSAL_EXECUTED', 'after execution')
  assert.is(
    (chain.query('governance', 'validatorSetAt', { height: chain.height + 1000 }) as Value[]).length,
    vk.length + 1,
  )
})

test('expiry: a window of (height, height + maxProposalLifetime]; approvals after it refused; the hook emits expired', () => {
  const { chain, a, b, propose, approve, proposal } = setup()
  const payload = { changes: [{ op: 'add', key: h32('late') }] }
  chain.advance(3)
  const h = chain.height
  expectCode(propose(a, 'validators', payload, { expiresAt: h + 1 - 1 }), 'BAD_EXPIRY', 'in the past')
  expectCode(propose(a, 'validators', payload, { expiresAt: chain.height + 1 }), 'BAD_EXPIRY', 'this block')
  expectCode(
    propose(a, 'validators', payload, { expiresAt: chain.height + LIFETIME + 2, activationHeight: h + 1000 }),
    'BAD_EXPIRY',
    'too far',
  )
  const r = propose(a, 'validators', payload, { expiresAt: chain.height + 3, activationHeight: 100 })
  expectCode(r, null, 'propose')
  const { id } = idOf(r)
  const expiresAt = proposal(id).expiresAt as number
  chain.advance(expiresAt - chain.height - 1)
  assert.is(proposal(id).status, 'open')
  const events = chain.advance(1) // the block at expiresAt: approvals still counted in it, then expired
  assert.equal(
    events.filter((e) => e.service === 'governance').map((e) => [e.name, (e.data as { id: number }).id]),
    [['expired', id]],
  )
  assert.is(proposal(id).status, 'expired')
  expectCode(approve(b, id), 'PROPOSAL_EXPIRED', 'after expiry')
  assert.is((chain.query('governance', 'membership', {}) as { open: number }).open, 0)
})

test('an approval in the block at expiresAt still executes', () => {
  const { chain, a, b, propose, approve, proposal } = setup()
  const r = propose(a, 'validators', { changes: [{ op: 'add', key: h32('edge') }] })
  const { id } = idOf(r)
  chain.advance((proposal(id).expiresAt as number) - chain.height - 1)
  expectCode(approve(b, id), null, 'approval at expiresAt')
  assert.is(proposal(id).status, 'executed')
  assert.equal(
    chain.advance(1).filter((e) => e.name === 'expired'),
    [],
  )
})

test('activation: required, at least expiresAt + minActivationDelay; none for a membership change', () => {
  const { chain, a, propose } = setup()
  const payload = { changes: [{ op: 'add', key: h32('x') }] }
  const expiresAt = chain.height + 10
  expectCode(
    chain.tx(a, 'governance', 'propose', { kind: 'validators', payload, expiresAt }),
    'BAD_ACTIVATION',
    'missing',
  )
  expectCode(
    propose(a, 'validators', payload, { activationHeight: chain.height + 10 + DELAY - 1 }),
    'BAD_ACTIVATION',
    'one block too early',
  )
  const members = [a.publicKey]
  expectCode(
    propose(a, 'governance', { members, threshold: 1 }, { activationHeight: 100 }),
    'BAD_ACTIVATION',
    'membership with activation',
  )
})

test('validator changes: payload checked (key length, duplicates, missing keys, at least 4), effective at their activation height', () => {
  const { chain, a, b, vk, propose, approve, setAt } = setup()
  const p = (changes: Value[]) => propose(a, 'validators', { changes })
  expectCode(p([{ op: 'add', key: new Uint8Array(31) }]), 'BAD_ARGS', '31-byte key')
  expectCode(p([{ op: 'add', key: vk[0]! }]), 'DUPLICATE_VALIDATOR', 'add an existing key')
  expectCode(p([{ op: 'remove', key: h32('nobody') }]), 'NO_SUCH_VALIDATOR', 'remove a stranger')
  expectCode(
    p([{ op: 'replace', key: vk[0]!, with: vk[1]! }]),
    'DUPLICATE_VALIDATOR',
    'replace with a validator',
  )
  expectCode(
    p([{ op: 'replace', key: h32('nobody'), with: h32('n') }]),
    'NO_SUCH_VALIDATOR',
    'replace a stranger',
  )
  expectCode(
    p([
      { op: 'remove', key: vk[0]! },
      { op: 'remove', key: vk[1]! },
    ]),
    'TOO_FEW_VALIDATORS',
    '5 - 2 < 4',
  )
  expectCode(p([]), 'BAD_ARGS', 'no changes')
  expectCode(p([{ op: 'drop', key: vk[0]! }]), 'BAD_ARGS', 'unknown op')

  const genesisSet = vk.map((k) => toHex(k))
  const r = p([{ op: 'replace', key: vk[2]!, with: h32('fresh') }])
  const { id } = idOf(r)
  expectCode(approve(b, id), null, 'execute')
  const at = (chain.query('governance', 'proposal', { id }) as { activationHeight: number }).activationHeight
  assert.equal(setAt(at - 1), genesisSet, 'unchanged before its activation')
  const after = [...genesisSet]
  after[2] = toHex(h32('fresh'))
  assert.equal(setAt(at), after, 'replaced in place, old key gone')
  assert.equal(setAt(0), genesisSet, 'genesis set at height 0')
  // The runtime's record, the one consensus follows: the whole new set, the height asked for, and the
  // block that executed it.
  const rec = chain.state().get('_sys/validators/00000001') as {
    height: number
    executedAt: number
    keys: Uint8Array[]
  }
  assert.equal([rec.height, rec.executedAt, rec.keys.map((k) => toHex(k))], [at, chain.height, after])
  assert.equal(
    chain.runtime.validatorChanges(chain.reader).map((c) => c.height),
    [at],
  )
  const pending = chain.query('governance', 'pendingValidatorChanges', {}) as { activationHeight: number }[]
  assert.equal(
    pending.map((x) => x.activationHeight),
    [at],
  )
  // Later changes apply to the scheduled set and activate after it.
  expectCode(p([{ op: 'remove', key: vk[2]! }]), 'NO_SUCH_VALIDATOR', 'the replaced key is gone')
  expectCode(
    propose(
      a,
      'validators',
      { changes: [{ op: 'add', key: h32('y') }] },
      { expiresAt: chain.height + 2, activationHeight: at },
    ),
    'BAD_ACTIVATION',
    'not after the scheduled change',
  )
  chain.advance(at - chain.height)
  assert.equal(chain.query('governance', 'pendingValidatorChanges', {}), [])
})

test('without _sys authorities, validator and upgrade proposals are refused at once', () => {
  const { a, propose } = setup({ noAuthority: true })
  expectCode(
    propose(a, 'validators', { changes: [{ op: 'add', key: h32('late') }] }),
    'NO_VALIDATOR_AUTHORITY',
    'validators',
  )
  expectCode(
    propose(a, 'upgrade', { service: 'token', version: '9.0.0', codeHash: h32('code') }),
    'NO_UPGRADE_AUTHORITY',
    'upgrade',
  )
})

test('validator changes: at most MAX_VALIDATORS', () => {
  const { a, propose } = setup({ validators: 128 })
  expectCode(
    propose(a, 'validators', { changes: [{ op: 'add', key: h32('129th') }] }),
    'TOO_MANY_VALIDATORS',
    '129th',
  )
})

test('a genesis set below 4 may grow but not shrink', () => {
  const { a, b, vk, propose, approve } = setup({ validators: 1 })
  expectCode(
    propose(a, 'validators', { changes: [{ op: 'remove', key: vk[0]! }] }),
    'TOO_FEW_VALIDATORS',
    '1 -> 0',
  )
  const { id } = idOf(propose(a, 'validators', { changes: [{ op: 'add', key: h32('second') }] }))
  expectCode(approve(b, id), null, '1 -> 2')
  expectCode(
    propose(
      a,
      'validators',
      { changes: [{ op: 'replace', key: vk[0]!, with: h32('third') }] },
      { activationHeight: 200 },
    ),
    null,
    'replace keeps the size',
  )
})

test('the activation delay is checked again at execution (a larger delay that activated meanwhile applies)', () => {
  const { chain, a, b, propose, approve } = setup()
  const raise = idOf(
    propose(a, 'parameters', { changes: [{ name: 'governance.minActivationDelay', value: 50 }] }),
  )
  expectCode(approve(b, raise.id), null, 'raise the delay')
  const raisedAt = (chain.query('governance', 'proposal', { id: raise.id }) as { activationHeight: number })
    .activationHeight
  const add = idOf(
    propose(
      a,
      'validators',
      { changes: [{ op: 'add', key: h32('slow') }] },
      {
        expiresAt: raisedAt + 10,
        activationHeight: raisedAt + 10 + DELAY,
      },
    ),
  )
  chain.advance(raisedAt - chain.height)
  expectCode(approve(b, add.id), 'BAD_ACTIVATION', 'the new delay applies at execution')
})

test('a payload is checked again when the threshold is reached: a stale proposal cannot execute', () => {
  const { a, b, c, vk, propose, approve, proposal } = setup()
  const remove0 = idOf(propose(a, 'validators', { changes: [{ op: 'remove', key: vk[0]! }] })).id
  const alsoRemove0 = idOf(propose(c, 'validators', { changes: [{ op: 'remove', key: vk[0]! }] })).id
  expectCode(approve(b, remove0), null, 'first removal')
  expectCode(approve(b, alsoRemove0), 'NO_SUCH_VALIDATOR', 'second removal of the same key')
  assert.is(proposal(alsoRemove0).status, 'open')
  assert.is((proposal(alsoRemove0).approvals as Value[]).length, 1, 'the refused approval is not counted')
  // The set is at 4 now: no further removal.
  expectCode(
    propose(a, 'validators', { changes: [{ op: 'remove', key: vk[1]! }] }),
    'TOO_FEW_VALIDATORS',
    'at 4',
  )
})

test('upgrades: scheduled at their activation height; one pending per service; payload checked', () => {
  const { chain, a, b, propose, approve } = setup()
  const up = { service: 'voting', version: '1.1.0', codeHash: h32('voting-1.1.0') }
  expectCode(propose(a, 'upgrade', { ...up, version: 'v2' }), 'BAD_ARGS', 'not a version')
  expectCode(propose(a, 'upgrade', { ...up, codeHash: new Uint8Array(20) }), 'BAD_ARGS', 'short hash')
  expectCode(propose(a, 'upgrade', { ...up, service: 'Bad/Name' }), 'BAD_ARGS', 'bad name')
  const { id } = idOf(propose(a, 'upgrade', up))
  const other = idOf(propose(a, 'upgrade', { ...up, version: '1.2.0' })).id
  expectCode(approve(b, id), null, 'execute')
  const at = (chain.query('governance', 'proposal', { id }) as { activationHeight: number }).activationHeight
  assert.equal(chain.query('governance', 'upgradesAt', { height: at }), [
    { ...up, activationHeight: at, proposal: id },
  ])
  assert.equal(chain.query('governance', 'upgradesAt', { height: at + 1 }), [])
  assert.is((chain.query('governance', 'pendingUpgrades', {}) as Value[]).length, 1)
  expectCode(propose(a, 'upgrade', up), 'UPGRADE_PENDING', 'second upgrade while one is pending')
  expectCode(approve(b, other), 'UPGRADE_PENDING', 'checked again at execution')
  chain.advance(at - chain.height)
  assert.equal(chain.query('governance', 'pendingUpgrades', {}), [])
  expectCode(propose(a, 'upgrade', { ...up, version: '1.2.0' }), null, 'after activation, a next one')
})

test('parameters: names from the table, values in range, each once; effective at activation; the delay itself is one', () => {
  const { chain, a, b, propose, approve } = setup()
  const p = (changes: Value[]) => propose(a, 'parameters', { changes })
  expectCode(p([{ name: 'consensus.noSuch', value: 1 }]), 'UNKNOWN_PARAMETER', 'unknown')
  expectCode(p([{ name: 'consensus.maxBlockTxs', value: 0 }]), 'PARAMETER_OUT_OF_RANGE', 'too low')
  expectCode(p([{ name: 'consensus.maxBlockTxs', value: 100_001 }]), 'PARAMETER_OUT_OF_RANGE', 'too high')
  expectCode(
    p([
      { name: 'consensus.maxBlockTxs', value: 10 },
      { name: 'consensus.maxBlockTxs', value: 20 },
    ]),
    'DUPLICATE_PARAMETER',
    'twice',
  )
  const { id } = idOf(
    p([
      { name: 'consensus.maxBlockTxs', value: 1234 },
      { name: 'governance.minActivationDelay', value: 50 },
    ]),
  )
  expectCode(approve(b, id), null, 'execute')
  const at = (chain.query('governance', 'proposal', { id }) as { activationHeight: number }).activationHeight
  const params = (h: number) =>
    chain.query('governance', 'parameters', { height: h }) as Record<string, number>
  assert.is(params(at - 1)['consensus.maxBlockTxs'], 5000, 'the default until then')
  assert.is(params(at)['consensus.maxBlockTxs'], 1234)
  assert.is(params(at)['governance.minActivationDelay'], 50)
  assert.is(params(at)['voting.petitionDebate'], 100, 'untouched default')
  chain.advance(at - chain.height)
  expectCode(
    propose(a, 'parameters', { changes: [{ name: 'consensus.maxBlockTxs', value: 1 }] }),
    'BAD_ACTIVATION',
    'the new delay applies',
  )
  // Other services read parameters through the export.
  const r = chain.tx(a, 'reader', 'call', { fn: 'parameter', args: { name: 'consensus.maxBlockTxs' } })
  assert.equal(r.events.find((e) => e.name === 'out')?.data, 1234)
  const bad = chain.tx(a, 'reader', 'call', { fn: 'parameter', args: { name: 'nope.nope' } })
  expectCode(bad, 'UNKNOWN_PARAMETER', 'export, unknown name')
})

test('membership change: payload checked; applies at execution and cancels the other open proposals', () => {
  const { chain, a, b, c, key, propose, approve, proposal } = setup()
  const d = key('member-d')
  expectCode(
    propose(a, 'governance', { members: [a.publicKey, a.publicKey], threshold: 1 }),
    'DUPLICATE_MEMBER',
    'dup',
  )
  expectCode(propose(a, 'governance', { members: [a.publicKey], threshold: 2 }), 'BAD_THRESHOLD', 'k > n')
  expectCode(propose(a, 'governance', { members: [a.publicKey], threshold: 0 }), 'BAD_ARGS', 'k = 0')
  const open = idOf(propose(c, 'validators', { changes: [{ op: 'add', key: h32('z') }] })).id
  const change = idOf(
    propose(a, 'governance', { members: [b.publicKey, c.publicKey, d.publicKey], threshold: 3 }),
  ).id
  const r = approve(b, change)
  expectCode(r, null, 'execute')
  const ev = r.events.find((e) => e.name === 'membershipChanged')!.data as {
    epoch: number
    cancelled: number[]
  }
  assert.is(ev.epoch, 1)
  assert.equal(ev.cancelled, [open])
  assert.is(proposal(open).status, 'cancelled')
  expectCode(approve(d, open), 'PROPOSAL_CANCELLED', 'approvals under the old membership do not carry over')
  expectCode(propose(a, 'validators', { changes: [{ op: 'add', key: h32('z') }] }), 'NOT_MEMBER', 'a left')
  const next = idOf(propose(d, 'validators', { changes: [{ op: 'add', key: h32('z') }] })).id
  expectCode(approve(b, next), null, 'two of three')
  assert.is(proposal(next).status, 'open', 'k is 3 now')
  expectCode(approve(c, next), null, 'third')
  assert.is(proposal(next).status, 'executed')
  assert.equal(chain.query('governance', 'membership', {}), {
    epoch: 1,
    members: [b.publicKey, c.publicKey, d.publicKey],
    threshold: 3,
    open: 0,
  })
})

test('k = 1: proposing executes at once', () => {
  const { a, propose, proposal } = setup({ threshold: 1 })
  const r = propose(a, 'parameters', { changes: [{ name: 'voting.petitionDebate', value: 7 }] })
  expectCode(r, null, 'propose')
  assert.equal(names(r), ['created', 'approved', 'executed'])
  assert.is(proposal(idOf(r).id).status, 'executed')
})

test('at most MAX_OPEN_PROPOSALS open at once', () => {
  const { chain, a, propose } = setup()
  const long = () => ({ expiresAt: 90, activationHeight: 90 + DELAY })
  const change = { changes: [{ name: 'voting.petitionDebate', value: 1 }] }
  for (let i = 0; i < 64; i++) expectCode(propose(a, 'parameters', change, long()), null, `#${i}`)
  expectCode(propose(a, 'parameters', change, long()), 'TOO_MANY_OPEN', '65th')
  chain.advance(90 - chain.height) // all expire at 90, 32 a block
  assert.is((chain.query('governance', 'membership', {}) as { open: number }).open, 32)
  chain.advance(1)
  assert.is((chain.query('governance', 'membership', {}) as { open: number }).open, 0)
  expectCode(
    propose(a, 'parameters', { changes: [{ name: 'voting.petitionDebate', value: 1 }] }),
    null,
    'room again',
  )
})

test('upgrades of several services: upgradesAt by service name, pendingUpgrades earliest first', () => {
  const { chain, a, propose } = setup({ threshold: 1 })
  const up = (service: string, extra: Record<string, Value> = {}) =>
    propose(a, 'upgrade', { service, version: '2.0.0', codeHash: h32(service) }, extra)
  // Services this chain does not run (the runtime keeps an inert record): an upgrade of one it runs
  // would stop this chain's code at the activation height (see the scheduleUpgrade test below).
  expectCode(up('svc-v', { expiresAt: 20, activationHeight: 40 }), null, 'svc-v at 40')
  expectCode(up('svc-t', { expiresAt: 20, activationHeight: 30 }), null, 'svc-t at 30')
  expectCode(up('svc-a', { expiresAt: 20, activationHeight: 40 }), null, 'svc-a at 40')
  const services = (v: Value) => (v as { service: string }[]).map((u) => u.service)
  assert.equal(services(chain.query('governance', 'upgradesAt', { height: 40 })), ['svc-a', 'svc-v'])
  assert.equal(services(chain.query('governance', 'pendingUpgrades', {})), ['svc-t', 'svc-a', 'svc-v'])
  chain.advance(30 - chain.height)
  assert.equal(services(chain.query('governance', 'pendingUpgrades', {})), ['svc-a', 'svc-v'])
})

test('at most 64 services get upgrades (the upgrade queries read one timeline per service)', () => {
  const { a, propose } = setup({ threshold: 1 })
  const up = (i: number) => propose(a, 'upgrade', { service: `svc${i}`, version: '2.0.0', codeHash: h32(i) })
  for (let i = 0; i < 64; i++) expectCode(up(i), null, `service ${i}`)
  expectCode(up(64), 'TOO_MANY_SERVICES', '65th service')
})

test('runs on a state backend without prefix listings (no state.list: a reader with get only)', () => {
  // The node's state tree can list a prefix, but not every reader can (the determinism harness's
  // cannot); a hook that lists fails there on every block.
  const runtime = createRuntime({ services: baseServices })
  const probe = createTestChain({ services: [] })
  const [a, b] = [probe.keys('ra'), probe.keys('rb')]
  const state = new Map<string, Uint8Array>()
  const reader = { get: (k: Uint8Array) => state.get(toHex(k))?.slice() }
  const apply = (w: Map<string, Uint8Array | null>) => {
    for (const [k, v] of w) v === null ? state.delete(k) : state.set(k, v)
  }
  const genesis = {
    governance: { members: [a.publicKey, b.publicKey], threshold: 2, validators: [] },
    _sys: { upgradeAuthority: 'governance', validatorAuthority: 'governance' },
  }
  apply(runtime.genesis(reader, genesis, 1000).writes)
  const nonces = new Map<string, number>()
  const tx = (key: typeof a, method: string, args: Value) => {
    const n = (nonces.get(toHex(key.publicKey)) ?? 0) + 1
    nonces.set(toHex(key.publicKey), n)
    const body = {
      chainId: 'c',
      service: 'governance',
      method,
      args,
      signer: key.publicKey,
      nonce: n,
      expiry: 0,
    }
    return signTx(body, key.secretKey)
  }
  const codes: (string | null)[] = []
  const events: string[] = []
  for (let height = 1; height <= 5; height++) {
    const txs =
      height === 1
        ? [
            tx(a, 'propose', {
              kind: 'upgrade',
              payload: { service: 'token', version: '2.0.0', codeHash: h32('t') },
              expiresAt: 3,
              activationHeight: 40,
            }),
            tx(a, 'propose', {
              kind: 'upgrade',
              payload: { service: 'voting', version: '2.0.0', codeHash: h32('v') },
              expiresAt: 9,
              activationHeight: 40,
            }),
            tx(b, 'propose', {
              kind: 'governance',
              payload: { members: [b.publicKey], threshold: 1 },
              expiresAt: 9,
            }),
          ]
        : height === 2
          ? [tx(b, 'approve', { id: 1 })]
          : height === 4
            ? [tx(a, 'approve', { id: 2 })]
            : []
    const out = runtime.executeBlock(reader, { height, time: 1000 + height, chainId: 'c', txs })
    apply(out.writes)
    codes.push(...out.results.map((r) => r.code))
    events.push(
      ...out.results.flatMap((r) => r.events.map((e) => e.name)),
      ...out.blockEvents.map((e) => e.name),
    )
  }
  assert.equal(codes, [null, null, null, null, null])
  assert.ok(events.includes('membershipChanged') && events.includes('expired'), events.join())
  assert.not.ok(events.includes('endBlockFailed'), events.join())
  const pending = runtime.query(reader, 5, 'governance', 'pendingUpgrades', {}).value as {
    service: string
  }[]
  assert.equal(
    pending.map((u) => u.service),
    ['voting'],
  )
})

test('a revoked signer is refused before any rule of governance', () => {
  for (const [name, m] of Object.entries(governance.methods)) {
    const ctx = {
      signer: h32('revoked'),
      call: (svc: string, fn: string) => svc === 'identity' && fn === 'isRevoked',
    } as unknown as TxContext
    assert.throws(
      () => m.auth!(ctx, {} as never),
      (e: { code?: string }) => e.code === 'KEY_REVOKED',
      name,
    )
  }
})

test.run()
