// governance under random sequences of proposals, approvals and membership changes, from members and
// non-members, with the invariants checked after every block:
//   - a proposal executes at most once, in a block at or before its expiry;
//   - only with >= k distinct approvals from the members of the membership it was created under;
//   - open proposals are those of the current membership, below its threshold, listed in meta.open;
//   - every validator set has no duplicates and >= 4 keys, activations increase, and validatorSetAt(h)
//     is the genesis set with exactly the executed changes activated by h applied, in order;
//   - a lone approval gets the code a small model predicts;
//   - replaying the same calls on a fresh chain gives byte-identical state.
// Replay a failure with SEED=<seed> (printed in the test name and in every failure message).
import { type KeyPair, type TxResult, type Value, equalBytes, toHex } from '@cityledger/core'
import { Rng, type TestCall, testSeed } from '@cityledger/core/testing'
import { createTestChain } from '@cityledger/core/testing'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { baseServices } from '../src/base/index.ts'

const SEED = testSeed(20261201)
const RUNS = 8
const BLOCKS = 160
const DELAY = 2
const LIFETIME = 20

type Rec = Record<string, Value>
interface Proposal {
  id: number
  kind: string
  payload: Rec
  epoch: number
  createdAt: number
  expiresAt: number
  activationHeight: number | null
  approvals: Uint8Array[]
  status: string
  closedAt: number | null
}

const probe = createTestChain({ services: [] })
const memberPool = Array.from({ length: 5 }, (_, i) => probe.keys(`gov-member-${i}`))
const outsiders = [probe.keys('gov-outsider-0'), probe.keys('gov-outsider-1')]
const validatorPool = Array.from({ length: 10 }, (_, i) => probe.keys(`gov-validator-${i}`).publicKey)
const genesisValidators = validatorPool.slice(0, 6)
const PARAM_NAMES = [
  'consensus.maxBlockTxs',
  'voting.petitionDebate',
  'governance.minActivationDelay',
  'no.such',
]

function newChain() {
  return createTestChain({
    services: baseServices,
    genesis: {
      governance: {
        members: memberPool.slice(0, 3).map((k) => k.publicKey),
        threshold: 2,
        validators: genesisValidators,
        parameters: { 'governance.minActivationDelay': DELAY, 'governance.maxProposalLifetime': LIFETIME },
      },
      _sys: { upgradeAuthority: 'governance', validatorAuthority: 'governance' },
    },
  })
}

/** What the generator aims at: the current members, the last scheduled validator set, open proposals. */
interface Aim {
  members: Uint8Array[]
  set: Uint8Array[]
  open: number[]
  nextId: number
}

function aimOf(state: Map<string, Value>): Aim {
  const meta = state.get('governance/meta') as { members: Uint8Array[]; nextId: number }
  const n = state.get('governance/vset/n') as number
  const last = state.get(`governance/vset/${String(n - 1).padStart(8, '0')}`) as { value: Uint8Array[] }
  const open = proposals(state)
    .filter((p) => p.status === 'open')
    .map((p) => p.id)
  return { members: meta.members, set: last.value, open, nextId: meta.nextId }
}

/**
 * A random call: mostly valid moves aimed at the current state (so that proposals execute), and a share
 * of invalid ones of every sort (outsiders, former members, stale ids, bad heights, bad payloads).
 */
function randomCall(rng: Rng, height: number, aim: Aim): TestCall {
  const roll = rng.next()
  const member = memberPool.filter((k) => aim.members.some((m) => equalBytes(m, k.publicKey)))
  const key = roll < 0.7 ? rng.pick(member) : roll < 0.9 ? rng.pick(memberPool) : rng.pick(outsiders)
  if (aim.nextId > 0 && rng.chance(0.45)) {
    const id =
      aim.open.length > 0 && rng.chance(0.7)
        ? rng.pick(aim.open)
        : rng.chance(0.9)
          ? rng.int(aim.nextId)
          : aim.nextId + rng.int(3)
    return { key, service: 'governance', method: 'approve', args: { id } }
  }
  const h = height + 1
  const expiresAt = Math.max(1, h + (rng.chance(0.9) ? rng.range(1, 10) : rng.range(-1, 0)))
  const activationHeight = Math.max(1, expiresAt + DELAY + (rng.chance(0.9) ? rng.range(0, 12) : -1))
  const inSet = () => rng.pick(aim.set)
  const notInSet = () => {
    const out = validatorPool.filter((k) => !aim.set.some((x) => equalBytes(x, k)))
    return out.length > 0 && rng.chance(0.9) ? rng.pick(out) : rng.pick(validatorPool)
  }
  const kind = rng.pick(['validators', 'validators', 'upgrade', 'parameters', 'governance'] as const)
  let payload: Value
  if (kind === 'validators') {
    payload = {
      changes: Array.from({ length: rng.chance(0.8) ? 1 : rng.range(2, 3) }, (): Rec => {
        const op = rng.pick(['add', 'remove', 'replace'] as const)
        if (op === 'add') return { op, key: notInSet() }
        const key = rng.chance(0.9) ? inSet() : notInSet()
        return op === 'remove' ? { op, key } : { op, key, with: notInSet() }
      }),
    }
  } else if (kind === 'upgrade') {
    payload = {
      // Services this chain does not run: an executed upgrade of one it runs would stop the test
      // chain's code at the activation height (packages/core/test/runtime-upgrade-authority.test.ts).
      service: rng.pick(['svc-v', 'svc-t', 'svc-r']),
      version: `1.${rng.int(4)}.0`,
      codeHash: rng.bytes(32),
    }
  } else if (kind === 'parameters') {
    payload = { changes: [{ name: rng.pick(PARAM_NAMES), value: rng.pick([0, 1, 3, 50, 200_000]) }] }
  } else {
    const members = Array.from({ length: rng.range(1, 4) }, () => rng.pick(memberPool).publicKey)
    payload = {
      members,
      threshold: rng.range(rng.chance(0.9) ? 1 : 0, members.length + (rng.chance(0.9) ? 0 : 1)),
    }
  }
  const args: Rec = { kind, payload, expiresAt }
  if (kind !== 'governance' || rng.chance(0.1)) args.activationHeight = activationHeight
  return { key, service: 'governance', method: 'propose', args }
}

type Chain = ReturnType<typeof newChain>

function proposals(state: Map<string, Value>): Proposal[] {
  return [...state].filter(([k]) => k.startsWith('governance/prop/')).map(([, v]) => v as unknown as Proposal)
}

function membershipOf(state: Map<string, Value>, epoch: number) {
  return state.get(`governance/epoch/${String(epoch).padStart(8, '0')}`) as
    | { members: Uint8Array[]; threshold: number; since: number }
    | undefined
}

/** The genesis set with `changes` applied, written apart from the service's own code. */
function applyModel(set: Uint8Array[], changes: Rec[]): Uint8Array[] {
  let out = [...set]
  for (const c of changes) {
    const k = c.key as Uint8Array
    if (c.op === 'add') out.push(k)
    else if (c.op === 'remove') out = out.filter((x) => !equalBytes(x, k))
    else out = out.map((x) => (equalBytes(x, k) ? (c.with as Uint8Array) : x))
  }
  return out
}

/** What a lone approval must give, from the state before its block. */
function expectedApproval(chain: Chain, key: KeyPair, id: number): string | null | 'executes' {
  const state = chain.state()
  const meta = state.get('governance/meta') as { members: Uint8Array[]; threshold: number; epoch: number }
  if (!meta.members.some((m) => equalBytes(m, key.publicKey))) return 'NOT_MEMBER'
  const p = proposals(state).find((x) => x.id === id)
  if (!p) return 'NO_SUCH_PROPOSAL'
  if (p.status === 'executed') return 'PROPOSAL_EXECUTED'
  if (p.status === 'cancelled' || p.epoch !== meta.epoch) return 'PROPOSAL_CANCELLED'
  if (chain.height + 1 > p.expiresAt) return 'PROPOSAL_EXPIRED'
  if (p.approvals.some((a) => equalBytes(a, key.publicKey))) return 'ALREADY_APPROVED'
  return p.approvals.length + 1 >= meta.threshold ? 'executes' : null
}

/** Payload errors an execution may meet (other proposals executed since this one was made). */
const STALE = new Set([
  'NO_SUCH_VALIDATOR',
  'DUPLICATE_VALIDATOR',
  'TOO_FEW_VALIDATORS',
  'TOO_MANY_VALIDATORS',
  'BAD_ACTIVATION',
  'UPGRADE_PENDING',
])

interface Stats {
  executed: Record<string, number>
  refused: number
  codes: Record<string, number>
  expired: number
  cancelled: number
}

function checkInvariants(chain: Chain, executedEvents: Map<number, number>, where: string): void {
  const state = chain.state()
  const all = proposals(state)
  const meta = state.get('governance/meta') as {
    epoch: number
    open: { id: number }[]
    threshold: number
  }
  for (const p of all) {
    const seen = executedEvents.get(p.id) ?? 0
    assert.ok(seen <= 1, `${where}: proposal ${p.id} executed ${seen} times`)
    assert.is(
      seen === 1,
      p.status === 'executed',
      `${where}: proposal ${p.id} status ${p.status} vs ${seen} executed events`,
    )
    const hexes = p.approvals.map((a) => toHex(a))
    assert.is(new Set(hexes).size, hexes.length, `${where}: proposal ${p.id} has a repeated approval`)
    const m = membershipOf(state, p.epoch)!
    for (const a of p.approvals)
      assert.ok(
        m.members.some((k) => equalBytes(k, a)),
        `${where}: proposal ${p.id} approved by a non-member of epoch ${p.epoch}`,
      )
    if (p.status === 'executed') {
      assert.ok(
        p.approvals.length >= m.threshold,
        `${where}: proposal ${p.id} executed with ${p.approvals.length} < k=${m.threshold}`,
      )
      assert.ok(
        p.closedAt! <= p.expiresAt,
        `${where}: proposal ${p.id} executed at ${p.closedAt}, after its expiry ${p.expiresAt}`,
      )
      const next = membershipOf(state, p.epoch + 1)
      assert.ok(
        !next || p.closedAt! <= next.since,
        `${where}: proposal ${p.id} executed under a later membership`,
      )
    }
    if (p.status === 'open') {
      assert.is(p.epoch, meta.epoch, `${where}: proposal ${p.id} open under an old membership`)
      assert.ok(p.approvals.length < meta.threshold, `${where}: proposal ${p.id} open with k approvals`)
      assert.ok(p.expiresAt > chain.height, `${where}: proposal ${p.id} open after its expiry block`)
    }
  }
  const open = all.filter((p) => p.status === 'open').map((p) => p.id)
  assert.equal(
    meta.open.map((o) => o.id),
    open,
    `${where}: meta.open lists exactly the open proposals`,
  )

  // Validator sets: the timeline, against the model folded from the executed proposals.
  const n = state.get('governance/vset/n') as number
  const timeline = Array.from(
    { length: n },
    (_, i) =>
      state.get(`governance/vset/${String(i).padStart(8, '0')}`) as {
        activationHeight: number
        value: Uint8Array[]
        proposal: number | null
      },
  )
  const executedValidators = all
    .filter((p) => p.kind === 'validators' && p.status === 'executed')
    .sort((a, b) => a.activationHeight! - b.activationHeight!)
  assert.is(
    timeline.length,
    executedValidators.length + 1,
    `${where}: one timeline entry per executed change`,
  )
  let model = [...genesisValidators]
  const steps: { at: number; set: string[] }[] = [{ at: 0, set: model.map((k) => toHex(k)) }]
  for (const [i, p] of executedValidators.entries()) {
    assert.is(timeline[i + 1]!.proposal, p.id, `${where}: changes apply in activation order`)
    model = applyModel(model, (p.payload as { changes: Rec[] }).changes)
    steps.push({ at: p.activationHeight!, set: model.map((k) => toHex(k)) })
  }
  for (const [i, e] of timeline.entries()) {
    const hexes = e.value.map((k) => toHex(k))
    assert.is(new Set(hexes).size, hexes.length, `${where}: duplicate validator in set ${i}`)
    assert.ok(hexes.length >= 4, `${where}: set ${i} has ${hexes.length} validators`)
    if (i > 0)
      assert.ok(e.activationHeight > timeline[i - 1]!.activationHeight, `${where}: activations increase`)
  }
  const top = (steps.at(-1)?.at ?? 0) + 2
  for (let h = 0; h <= top; h++) {
    const want = steps.filter((s) => s.at <= h).at(-1)!.set
    const got = (chain.query('governance', 'validatorSetAt', { height: h }) as Uint8Array[]).map((k) =>
      toHex(k),
    )
    assert.equal(got, want, `${where}: validatorSetAt(${h})`)
  }
}

/** Runs one random sequence; returns the calls (block by block) and the final raw state. */
function runOnce(seed: number, stats: Stats) {
  const rng = new Rng(seed)
  const chain = newChain()
  const blocks: TestCall[][] = []
  const executedEvents = new Map<number, number>()
  const record = (results: TxResult[]) => {
    for (const r of results)
      for (const e of r.events) {
        if (e.name === 'executed') {
          const { id, kind } = e.data as { id: number; kind: string }
          executedEvents.set(id, (executedEvents.get(id) ?? 0) + 1)
          stats.executed[kind] = (stats.executed[kind] ?? 0) + 1
        }
        if (e.name === 'membershipChanged')
          stats.cancelled += (e.data as { cancelled: number[] }).cancelled.length
      }
  }
  for (let b = 0; b < BLOCKS; b++) {
    const where = `seed ${seed}, block ${chain.height + 1}`
    const aim = aimOf(chain.state())
    const count = rng.chance(0.15) ? 0 : rng.chance(0.8) ? 1 : rng.range(2, 3)
    const calls = Array.from({ length: count }, () => randomCall(rng, chain.height, aim))
    const lone = count === 1 && calls[0]!.method === 'approve' ? calls[0]! : undefined
    const want = lone ? expectedApproval(chain, lone.key, (lone.args as { id: number }).id) : undefined
    blocks.push(calls)
    const results = chain.block(calls)
    record(results)
    stats.expired += chain.lastBlockEvents().filter((e) => e.name === 'expired').length
    for (const [i, r] of results.entries()) {
      if (r.code !== null) {
        stats.refused++
        stats.codes[r.code] = (stats.codes[r.code] ?? 0) + 1
      }
      const c = calls[i]!
      if (outsiders.includes(c.key)) assert.is(r.code, 'NOT_MEMBER', `${where}: an outsider's ${c.method}`)
    }
    if (lone) {
      const r = results[0]!
      if (want === 'executes')
        assert.ok(
          r.code === null ? r.events.some((e) => e.name === 'executed') : STALE.has(r.code),
          `${where}: approval reaching k gave ${r.code} ${r.message ?? ''}`,
        )
      else
        assert.is(
          r.code,
          want,
          `${where}: approval of ${(lone.args as { id: number }).id}: ${r.message ?? ''}`,
        )
    }
    checkInvariants(chain, executedEvents, where)
  }
  return { blocks, raw: chain.raw() }
}

test(`random governance traffic keeps every invariant, and replays byte for byte (seeds ${SEED}..${SEED + RUNS - 1})`, () => {
  const stats: Stats = { executed: {}, refused: 0, codes: {}, expired: 0, cancelled: 0 }
  for (let i = 0; i < RUNS; i++) {
    const seed = SEED + i
    const { blocks, raw } = runOnce(seed, stats)
    const again = newChain()
    for (const calls of blocks) again.block(calls)
    const a = [...raw].sort(([x], [y]) => (x < y ? -1 : 1))
    const b = [...again.raw()].sort(([x], [y]) => (x < y ? -1 : 1))
    assert.equal(
      b.map(([k, v]) => [k, toHex(v)]),
      a.map(([k, v]) => [k, toHex(v)]),
      `seed ${seed}: replay differs`,
    )
  }
  if (process.env.GOV_STATS) console.log(JSON.stringify(stats))
  // The traffic must exercise what it checks: executions of every kind, expiries, cancellations, refusals.
  for (const kind of ['validators', 'upgrade', 'parameters', 'governance'])
    assert.ok(
      (stats.executed[kind] ?? 0) > 0,
      `seeds from ${SEED}: no ${kind} proposal executed ${JSON.stringify(stats)}`,
    )
  assert.ok(
    stats.expired > 0 && stats.cancelled > 0 && stats.refused > 0,
    `seeds from ${SEED}: ${JSON.stringify(stats)}`,
  )
})

test.run()
