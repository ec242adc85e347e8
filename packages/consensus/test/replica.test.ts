import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  VoteKind,
  createNativeVerifier,
  encode,
  generateKeyPair,
  sha256,
  sign,
  voteSigningMessage,
} from '@cityledger/core'
import { seedFor } from '@cityledger/core/testing'
import {
  type Input,
  type JournalEntry,
  type Output,
  PENALIZE,
  type Replica,
  createReplica,
  encodeMessage,
  runSimulation,
  simCrypto,
} from '@cityledger/consensus'

const N = 4
const crypto = simCrypto(N)
const CHAIN = 'unit-chain'
const config = (i: number, extra = {}) => ({
  chainId: CHAIN,
  validators: crypto.keys.map((k) => k.publicKey),
  publicKey: crypto.keys[i]!.publicKey,
  sign: crypto.keys[i]!.sign,
  verify: crypto.verify,
  checkpointInterval: 2,
  windowSize: 4,
  maxInFlight: 2,
  ...extra,
})
const blockFor = (h: number, tag = 0) => encode(['block', h, tag])

/** Synchronous network: delivers every message at once, answers the node-side outputs, ignores timers. */
function drive(replicas: Replica[], firstOutputs: Output[][], untilHeight: number) {
  const log: Output[][][] = replicas.map(() => [])
  const committed: number[][] = replicas.map(() => [])
  const queue: { to: number; input: Input }[] = []
  const state = new Map<number, Uint8Array>()
  const handle = (i: number, outs: Output[]) => {
    log[i]!.push(outs)
    for (const o of outs) {
      if (o.type === 'broadcast')
        for (let j = 0; j < replicas.length; j++)
          j !== i && queue.push({ to: j, input: { type: 'message', bytes: o.bytes, from: String(i) } })
      if (o.type === 'send')
        queue.push({ to: o.to, input: { type: 'message', bytes: o.bytes, from: String(i) } })
      if (o.type === 'requestProposal' && o.height <= untilHeight) {
        const block = blockFor(o.height)
        queue.push({
          to: i,
          input: { type: 'proposal', height: o.height, view: o.view, block, digest: sha256(block) },
        })
      }
      if (o.type === 'validate')
        queue.push({
          to: i,
          input: { type: 'validated', height: o.height, view: o.view, digest: o.digest, ok: true },
        })
      if (o.type === 'commit') {
        committed[i]!.push(o.height)
        state.set(o.height, o.digest)
        queue.push({ to: i, input: { type: 'executed', height: o.height, stateDigest: o.digest } })
      }
    }
  }
  firstOutputs.forEach((o, i) => handle(i, o))
  for (let steps = 0; queue.length && steps < 100_000; steps++) {
    const { to, input } = queue.shift()!
    handle(to, replicas[to]!.step(input))
  }
  return { log, committed }
}

test('happy path: heights commit in order at every replica, each with a certificate', () => {
  const rs = Array.from({ length: N }, (_, i) => createReplica(config(i)))
  const first = rs.map((r) => r.step({ type: 'start' }))
  const { committed, log } = drive(rs, first, 9)
  for (const c of committed) assert.equal(c, [1, 2, 3, 4, 5, 6, 7, 8, 9])
  for (const r of rs) assert.ok(r.status().stableCheckpoint >= 6, `stable ${r.status().stableCheckpoint}`)
  // Garbage collection: nothing kept at or below the stable checkpoint.
  for (const r of rs) assert.ok(r.footprint().slots <= 4)
  // Journalled before sent: every prepare/commit/pre-prepare broadcast follows its journal entry in the same step.
  const need: Record<string, JournalEntry['type']> = {
    prepare: 'prepare',
    commit: 'commit',
    prePrepare: 'proposal',
  }
  for (const steps of log) {
    for (const outs of steps) {
      outs.forEach((o, k) => {
        if (o.type !== 'broadcast' || !need[o.kind]) return
        assert.ok(
          outs.slice(0, k).some((p) => p.type === 'journal' && p.entry.type === need[o.kind]),
          `${o.kind} sent before it was journalled`,
        )
      })
    }
  }
})

test('a refused message never changes state, and says whether to penalise', () => {
  const r = createReplica(config(1))
  r.step({ type: 'start' })
  const before = JSON.stringify([r.status(), r.footprint()])
  const k0 = crypto.keys[0]!
  const k2 = crypto.keys[2]!
  const block = blockFor(1)
  const pp = (
    key = k0,
    over: Partial<{ view: number; height: number; chainId: string; digest: Uint8Array }> = {},
    blk = block,
  ) => {
    const vote = {
      chainId: CHAIN,
      kind: VoteKind.prepare,
      view: 0,
      height: 1,
      digest: sha256(block),
      validator: key.publicKey,
      ...over,
    }
    return encodeMessage({
      type: 'prePrepare',
      vote,
      signature: key.sign(voteSigningMessage(vote)),
      block: blk,
    })
  }
  const stranger = generateKeyPair(seedFor('stranger'))
  const strangerVote = {
    chainId: CHAIN,
    kind: VoteKind.prepare,
    view: 0,
    height: 1,
    digest: sha256(block),
    validator: stranger.publicKey,
  }
  const cases: [Uint8Array, string][] = [
    [new Uint8Array([1, 2, 3]), 'MALFORMED'],
    [pp(k0, { chainId: 'other-chain' }), 'WRONG_CHAIN'],
    [
      encodeMessage({
        type: 'prePrepare',
        vote: strangerVote,
        signature: sign(stranger.secretKey, voteSigningMessage(strangerVote)),
        block,
      }),
      'UNKNOWN_VALIDATOR',
    ],
    [pp(k2), 'NOT_PRIMARY'],
    [pp(k0, { height: 5 }), 'ABOVE_WATERMARK'],
    [pp(k0, { view: 1 }), 'FUTURE_VIEW'],
    [pp(k0, {}, blockFor(1, 9)), 'DIGEST_MISMATCH'],
    [
      (() => {
        const b = pp()
        b[b.length - 20] ^= 1
        return b
      })(),
      'BAD_SIGNATURE',
    ],
  ]
  for (const [bytes, code] of cases) {
    const out = r.step({ type: 'message', bytes, from: 'peer' })
    assert.is(out.length, 1, code)
    const o = out[0]!
    assert.is(o.type, 'reject')
    if (o.type !== 'reject') continue
    assert.is(o.code, code)
    assert.is(o.penalize, PENALIZE[o.code])
    assert.is(o.from, 'peer')
    assert.is(JSON.stringify([r.status(), r.footprint()]), before, `${code} changed state`)
  }
  // Accepted once, then a duplicate is refused without penalty, and a second block at the same (view, height) is equivocation.
  assert.ok(r.step({ type: 'message', bytes: pp() }).some((o) => o.type === 'validate'))
  const dup = r.step({ type: 'message', bytes: pp() })[0]
  assert.ok(dup?.type === 'reject' && dup.code === 'DUPLICATE' && !dup.penalize)
  const other = blockFor(1, 1)
  const eq = r.step({ type: 'message', bytes: pp(k0, { digest: sha256(other) }, other) })[0]
  assert.ok(eq?.type === 'reject' && eq.code === 'EQUIVOCATION' && eq.penalize && eq.offender === 0)
})

function prepareThenRestart(forget: boolean) {
  const k0 = crypto.keys[0]!
  const pp = (tag: number) => {
    const block = blockFor(1, tag)
    const vote = {
      chainId: CHAIN,
      kind: VoteKind.prepare,
      view: 0,
      height: 1,
      digest: sha256(block),
      validator: k0.publicKey,
    }
    return encodeMessage({ type: 'prePrepare', vote, signature: k0.sign(voteSigningMessage(vote)), block })
  }
  const r = createReplica(config(1))
  const journal: JournalEntry[] = []
  const keep = (outs: Output[]) => {
    for (const o of outs) if (o.type === 'journal') journal.push(o.entry)
    return outs
  }
  keep(r.step({ type: 'start' }))
  const v = keep(r.step({ type: 'message', bytes: pp(1) })).find((o) => o.type === 'validate')!
  assert.ok(v && v.type === 'validate')
  const sent = keep(r.step({ type: 'validated', height: 1, view: 0, digest: v.digest, ok: true }))
  assert.ok(sent.some((o) => o.type === 'broadcast' && o.kind === 'prepare'))
  const again = createReplica(config(1, forget ? { faultInjection: { forgetVotesOnRestart: true } } : {}))
  again.step({ type: 'start', committedHeight: 0, journal })
  return again.step({ type: 'message', bytes: pp(2) })
}

test('after a restart from its journal a replica refuses to prepare a second block at the same (view, height)', () => {
  const out = prepareThenRestart(false)
  assert.ok(out[0]?.type === 'reject' && out[0].code === 'EQUIVOCATION', JSON.stringify(out[0]))
  // The deliberately broken replica forgets and would go on to sign a conflicting prepare.
  const broken = prepareThenRestart(true)
  assert.ok(broken.some((o) => o.type === 'validate'))
})

test('real Ed25519 (native verifier): a short run commits with certificates that verify', async () => {
  const verifier = await createNativeVerifier()
  try {
    const keys = Array.from({ length: 4 }, (_, i) => {
      const k = generateKeyPair(seedFor(`replica-${i}`))
      return { publicKey: k.publicKey, sign: (m: Uint8Array) => sign(k.secretKey, m) }
    })
    const r = runSimulation({
      seed: 5,
      n: 4,
      faults: ['loss', 'crash'],
      allFaults: true,
      faultPhaseMs: 400,
      crypto: { keys, verify: (c) => verifier.verify(c) },
    })
    assert.equal(r.violations, [], `seed 5: ${JSON.stringify(r.violations)}`)
    assert.ok(r.committedHeights.min >= 11)
  } finally {
    await verifier.close()
  }
})

test.run()
