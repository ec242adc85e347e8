import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  type CommitCertificate,
  VoteKind,
  certificateVote,
  encode,
  sha256,
  voteSigningMessage,
} from '@cityledger/core'
import {
  type Output,
  consensusSigningMessage,
  createReplica,
  decodeMessage,
  encodeMessage,
  encodeStatusBody,
  epochChainId,
  simCrypto,
} from '@cityledger/consensus'
import { CHAIN, ReplicaNet } from './replicaNet.ts'

// The consensus side of reconfiguration: a replica's epoch ends at `lastHeight` (config or `epochEnd`),
// an epoch's replica starts at its base height, and messages of other epochs are refused unpenalised.
const crypto = simCrypto(8)
const K = 2
const base = (i: number, extra = {}) => ({
  chainId: CHAIN,
  validators: crypto.keys.slice(0, 4).map((k) => k.publicKey),
  publicKey: crypto.keys[i]!.publicKey,
  sign: crypto.keys[i]!.sign,
  verify: crypto.verify,
  checkpointInterval: K,
  windowSize: 8,
  viewTimeoutMs: 1000,
  ...extra,
})

const heightsOf = (outs: Output[], type: Output['type']) =>
  outs.filter((o) => o.type === type).map((o) => (o as { height: number }).height)

function sentVotes(net: ReplicaNet, i: number, kind: 'prepare' | 'commit' | 'prePrepare'): number[] {
  return net.sent
    .filter((s) => s.from === i && s.kind === kind)
    .map((s) => {
      const m = decodeMessage(s.bytes)
      return m.type === kind ? m.vote.height : -1
    })
}

function vote(signer: number, kind: VoteKind, view: number, height: number, digest: Uint8Array, epoch = 0) {
  const v = {
    chainId: epochChainId(CHAIN, epoch),
    kind,
    view,
    height,
    digest,
    validator: crypto.keys[signer]!.publicKey,
  }
  return { vote: v, signature: crypto.keys[signer]!.sign(voteSigningMessage(v)) }
}

test('a replica with lastHeight never proposes, votes or commits above it, and never changes view once done', () => {
  const net = new ReplicaNet({ n: 4, config: { lastHeight: 6 } })
  net.start()
  net.advance(20_000)
  for (let i = 0; i < 4; i++) {
    assert.equal(net.committed[i], [1, 2, 3, 4, 5, 6], `replica ${i}`)
    assert.ok(Math.max(...heightsOf(net.outputs[i]!, 'requestProposal')) <= 6)
    for (const kind of ['prePrepare', 'prepare', 'commit'] as const)
      assert.ok(Math.max(0, ...sentVotes(net, i, kind)) <= 6, `${kind} above the end by ${i}`)
    assert.ok(!net.outputs[i]!.some((o) => o.type === 'viewChanged'), `replica ${i} changed view`)
    const s = net.replicas[i]!.status()
    assert.equal([s.finished, s.lastHeight, s.view], [true, 6, 0])
  }
})

test('epochEnd drops what is in flight above the end: no PREPARE, COMMIT or commit above it', () => {
  // Replica 1 (a backup) has pre-prepares for 1..6 waiting for validation when it learns the end (4).
  const r = createReplica(base(1))
  r.step({ type: 'start' })
  const blocks = [1, 2, 3, 4, 5, 6].map((h) => encode(['block', h]))
  for (const [i, block] of blocks.entries()) {
    const pp = vote(0, VoteKind.prepare, 0, i + 1, sha256(block))
    const out = r.step({
      type: 'message',
      bytes: encodeMessage({ type: 'prePrepare', ...pp, block }),
      from: '0',
    })
    assert.equal(heightsOf(out, 'validate'), [i + 1])
  }
  assert.equal(r.step({ type: 'epochEnd', height: 4 }), [])
  const sent: number[] = []
  for (const [i, block] of blocks.entries()) {
    const out = r.step({ type: 'validated', height: i + 1, view: 0, digest: sha256(block), ok: true })
    for (const o of out)
      if (o.type === 'broadcast') sent.push(decodeMessage(o.bytes).type === 'prepare' ? i + 1 : -1)
  }
  assert.equal(sent, [1, 2, 3, 4])
  // Votes and pre-prepares above the end are refused without penalty (a late primary is not faulty).
  const late = encode(['block', 7])
  const refused = [
    encodeMessage({ type: 'prePrepare', ...vote(0, VoteKind.prepare, 0, 5, sha256(late)), block: late }),
    encodeMessage({ type: 'prepare', ...vote(2, VoteKind.prepare, 0, 5, sha256(blocks[4]!)) }),
    encodeMessage({ type: 'commit', ...vote(2, VoteKind.commit, 0, 6, sha256(blocks[5]!)) }),
  ]
  for (const bytes of refused) {
    const [o] = r.step({ type: 'message', bytes, from: '2' })
    assert.equal(o && o.type === 'reject' && [o.code, o.penalize], ['EPOCH_ENDED', false])
  }
  // The end is fixed: the same again is ignored, another one is a broken node invariant.
  assert.equal(r.step({ type: 'epochEnd', height: 4 }), [])
  assert.throws(() => r.step({ type: 'epochEnd', height: 8 }), /already ends at 4/)
  assert.throws(() => r.step({ type: 'epochEnd', height: 3 }), /checkpoint height/)
})

test('NEW-VIEW re-proposals above the end are not prepared or committed', () => {
  // Commits are lost, so heights 1..6 get prepared but not committed; replicas 1..3 then learn that the
  // epoch ends at 2, replica 0 does not (a broken node): its VIEW-CHANGE carries prepared certificates up
  // to 6, so the NEW-VIEW of view 1 (primary 1) re-proposes up to 6.
  const net = new ReplicaNet({ n: 4, maxHeight: 6 })
  net.drop = (_f, _t, kind) => kind === 'commit'
  net.start()
  for (let i = 1; i < 4; i++) net.step(i, { type: 'epochEnd', height: 2 })
  const before = net.sent.length
  const newView = () => net.sent.find((s) => s.from === 1 && s.kind === 'newView')
  for (let t = 0; t < 100 && !newView(); t++) net.advance(100)
  const nv = decodeMessage(newView()!.bytes)
  assert.ok(nv.type === 'newView' && Math.max(...nv.body.reproposals.map((x) => x.height)) === 6)
  net.drop = () => false
  net.advance(30_000)
  const after = net.sent.slice(before)
  for (let i = 1; i < 4; i++) {
    assert.equal(net.committed[i], [1, 2], `replica ${i}`)
    const votes = after.filter((s) => s.from === i && (s.kind === 'prepare' || s.kind === 'commit'))
    assert.ok(votes.length > 0)
    for (const s of votes) {
      const m = decodeMessage(s.bytes)
      assert.ok(
        (m.type === 'prepare' || m.type === 'commit') && m.vote.height <= 2,
        `replica ${i} voted above the end`,
      )
    }
  }
})

test("an epoch's replica starts at its base height, with its base checkpoint as genesis", () => {
  const digest = sha256(new Uint8Array([8]))
  const cfg = (i: number) => base(i, { epoch: 1, baseHeight: 8, genesisDigest: digest })
  const primary = createReplica(cfg(0))
  const out = primary.step({ type: 'start', committedHeight: 8 })
  assert.equal(heightsOf(out, 'requestProposal').slice(0, 2), [9, 10])
  assert.equal(primary.status().stableCheckpoint, 8)
  assert.is(primary.config.chainId, `${CHAIN}--e1`)
  // Its VIEW-CHANGE carries the base checkpoint without signatures; a peer of the epoch accepts it.
  const a = createReplica(cfg(1))
  const b = createReplica(cfg(2))
  a.step({ type: 'start', committedHeight: 8 })
  b.step({ type: 'start', committedHeight: 8 })
  const vc = a.step({ type: 'timeout', timer: 'progress', token: 1 }).find((o) => o.type === 'broadcast')
  assert.ok(vc && vc.type === 'broadcast' && vc.kind === 'viewChange')
  const got = b.step({ type: 'message', bytes: vc.bytes, from: '1' })
  assert.ok(!got.some((o) => o.type === 'reject'), JSON.stringify(got))
  assert.throws(() => createReplica(cfg(3)).step({ type: 'start', committedHeight: 7 }), /baseHeight/)
  assert.throws(() => createReplica(base(0, { epoch: 1, baseHeight: 7 })), /baseHeight/)
  assert.throws(() => createReplica(base(0, { baseHeight: 8 })), /epoch 0/)
})

test('messages of another epoch are refused without penalty and name their epoch; another chain is penalised', () => {
  const r = createReplica(base(1, { epoch: 1, baseHeight: 8 }))
  r.step({ type: 'start', committedHeight: 8 })
  const d = sha256(new Uint8Array([9]))
  const cases: [Uint8Array, string, boolean, number | undefined][] = [
    [encodeMessage({ type: 'prepare', ...vote(2, VoteKind.prepare, 0, 9, d, 0) }), 'OTHER_EPOCH', false, 0],
    [encodeMessage({ type: 'commit', ...vote(2, VoteKind.commit, 0, 9, d, 2) }), 'OTHER_EPOCH', false, 2],
    [
      encodeMessage({ type: 'checkpoint', ...vote(2, VoteKind.checkpoint, 0, 10, d, 0) }),
      'OTHER_EPOCH',
      false,
      0,
    ],
  ]
  const other = {
    ...vote(2, VoteKind.prepare, 0, 9, d),
    vote: { ...vote(2, VoteKind.prepare, 0, 9, d).vote, chainId: 'other-chain' },
  }
  cases.push([encodeMessage({ type: 'prepare', ...other }), 'WRONG_CHAIN', true, undefined])
  for (const [bytes, code, penalize, epoch] of cases) {
    const [o] = r.step({ type: 'message', bytes, from: '2' })
    assert.ok(o?.type === 'reject')
    if (o?.type === 'reject') assert.equal([o.code, o.penalize, o.epoch], [code, penalize, epoch])
  }
})

/** A STATUS of `epoch` claiming `height`, with a certificate signed by `signers`. */
function laterStatus(epoch: number, height: number, signers: number[], round = 1): Uint8Array {
  const chainId = epochChainId(CHAIN, epoch)
  const body = {
    chainId,
    view: 0,
    committedHeight: height,
    validator: crypto.keys[signers[0]!]!.publicKey,
    round,
  }
  const bodyBytes = encodeStatusBody(body)
  const cert: CommitCertificate = { chainId, view: 0, height, blockHash: sha256(bodyBytes), signatures: [] }
  cert.signatures = signers.map((i) => ({
    validator: crypto.keys[i]!.publicKey,
    signature: crypto.keys[i]!.sign(voteSigningMessage(certificateVote(cert, crypto.keys[i]!.publicKey))),
  }))
  const signature = crypto.keys[signers[0]!]!.sign(consensusSigningMessage(bodyBytes))
  return encodeMessage({ type: 'status', body, bodyBytes, signature, certificate: cert })
}

test('a STATUS of a later epoch makes a lagging replica sync only when f+1 of its validators signed, once per tick', () => {
  const r = createReplica(base(1, { lastHeight: 8 }))
  r.step({ type: 'start' })
  const syncs = (out: Output[]) => out.filter((o) => o.type === 'requestSync')
  const strangers = r.step({ type: 'message', bytes: laterStatus(1, 12, [4, 5, 6]), from: '9' })
  assert.equal(syncs(strangers), [])
  assert.ok(strangers.some((o) => o.type === 'reject' && o.code === 'OTHER_EPOCH' && !o.penalize))
  r.step({ type: 'timeout', timer: 'retransmit', token: 1 })
  const one = r.step({ type: 'message', bytes: laterStatus(1, 12, [0, 4, 5]), from: '9' })
  assert.equal(syncs(one), [])
  r.step({ type: 'timeout', timer: 'retransmit', token: 2 })
  const two = r.step({ type: 'message', bytes: laterStatus(1, 12, [0, 2, 5]), from: '9' })
  // Up to the end of its own epoch (8): the heights after it are the next replica's.
  assert.equal(syncs(two), [{ type: 'requestSync', fromHeight: 1, toHeight: 8 }])
  const again = r.step({ type: 'message', bytes: laterStatus(1, 12, [0, 2, 5], 2), from: '9' })
  assert.equal(syncs(again), [], 'at most one per retransmission tick')
})

test.run()
