import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  type Output,
  consensusSigningMessage,
  encodeMessage,
  encodeStatusBody,
  encodeViewChangeBody,
  NULL_DIGEST,
} from '@cityledger/consensus'
import type { CommitCertificate } from '@cityledger/core'
import { CHAIN, ReplicaNet } from './replicaNet.ts'

// Case 3 of issue 10 (STATUS replay and lying heights), consensus part. One signed STATUS claiming
// height 0 made a replica send its whole window of certificates and its checkpoint proof, every time
// the same bytes were replayed; a STATUS claiming height 2^53-1 went straight to `requestSync`; a
// VIEW-CHANGE made a replica forward its NEW-VIEW before the VIEW-CHANGE was verified.

function status(
  net: ReplicaNet,
  who: number,
  committedHeight: number,
  round = 0,
  certificate?: CommitCertificate,
): Uint8Array {
  const k = net.crypto.keys[who]!
  const body = { chainId: CHAIN, view: 0, committedHeight, validator: k.publicKey, round }
  const bodyBytes = encodeStatusBody(body)
  const signature = k.sign(consensusSigningMessage(bodyBytes))
  return encodeMessage({
    type: 'status',
    body,
    bodyBytes,
    signature,
    ...(certificate ? { certificate } : {}),
  })
}

const answers = (out: Output[]) => out.filter((o) => o.type === 'send' || o.type === 'broadcast')

function committedNet(): ReplicaNet {
  const net = new ReplicaNet({ n: 4, maxHeight: 3 })
  net.start()
  assert.equal(net.committed[0], [1, 2, 3])
  return net
}

test('the same signed STATUS replayed gets one answer, not one per copy', () => {
  const net = committedNet()
  const bytes = status(net, 3, 0, 1)
  const first = answers(net.step(0, { type: 'message', bytes, from: '3' }))
  assert.ok(first.length > 0, 'a STATUS from a peer behind is answered')
  for (let i = 0; i < 5; i++) {
    net.advance(1000) // even across retransmission intervals
    const again = answers(net.step(0, { type: 'message', bytes, from: 'x' }))
    assert.is(again.length, 0, `replay ${i + 1} answered with ${again.length} messages`)
  }
})

test('STATUS answers are rate-limited per peer per retransmission interval (timer inputs, not wall time)', () => {
  const net = committedNet()
  let answered = 0
  for (let i = 0; i < 10; i++) {
    const out = net.step(0, { type: 'message', bytes: status(net, 3, i % 3, 100 + i), from: '3' })
    if (answers(out).length) answered++
  }
  assert.is(answered, 1, `${answered} of 10 fresh STATUS answered within one interval`)
  net.advance(net.replicas[0]!.config.retransmitMs)
  const later = net.step(0, { type: 'message', bytes: status(net, 3, 0, 200), from: '3' })
  assert.ok(answers(later).length > 0, 'answered again in the next interval')
})

test('a STATUS claiming a huge height never triggers requestSync unless a certificate proves it', () => {
  const net = committedNet()
  const huge = net.step(0, {
    type: 'message',
    bytes: status(net, 3, Number.MAX_SAFE_INTEGER, 1),
    from: '3',
  })
  assert.not.ok(
    huge.some((o) => o.type === 'requestSync'),
    `requestSync on a bare claim: ${JSON.stringify(huge.filter((o) => o.type === 'requestSync'))}`,
  )
  // A proven height: node 0's certificate for height 3, carried by a STATUS to a replica still at 0.
  const cert = net.commitOutputs[0]![2]!.certificate
  const behind = new ReplicaNet({ n: 4, maxHeight: 0 })
  behind.start()
  const out = behind.step(1, { type: 'message', bytes: status(behind, 3, 3, 1, cert), from: '3' })
  const sync = out.find((o) => o.type === 'requestSync')
  assert.ok(sync && sync.type === 'requestSync' && sync.toHeight === 3, JSON.stringify(out))
  // A forged certificate is refused and penalised.
  const forged = {
    ...cert,
    signatures: cert.signatures.map((s) => ({ ...s, signature: new Uint8Array(64) })),
  }
  const bad = behind.step(2, { type: 'message', bytes: status(behind, 3, 3, 2, forged), from: '3' })
  assert.not.ok(bad.some((o) => o.type === 'requestSync'))
  assert.ok(
    bad.some((o) => o.type === 'reject' && o.penalize),
    JSON.stringify(bad),
  )
})

test('a forged VIEW-CHANGE never makes a replica forward its NEW-VIEW', () => {
  const net = new ReplicaNet({ n: 4, maxHeight: 2 })
  net.start()
  net.advance(1500) // progress timeout at 1000 ms: view change to view 1, NEW-VIEW from node 1
  const s = net.replicas[0]!.status()
  assert.ok(s.view === 1 && !s.changingView, JSON.stringify(s))
  const k = net.crypto.keys[2]!
  const body = {
    chainId: CHAIN,
    view: 1,
    validator: k.publicKey,
    checkpoint: { height: 0, digest: NULL_DIGEST, signatures: [] },
    prepared: [],
  }
  const bodyBytes = encodeViewChangeBody(body)
  const bytes = encodeMessage({ type: 'viewChange', body, bodyBytes, signature: new Uint8Array(64).fill(1) })
  const out = net.step(0, { type: 'message', bytes, from: 'x' })
  assert.not.ok(
    out.some((o) => o.type === 'send' && o.kind === 'newView'),
    'NEW-VIEW forwarded on a forged VIEW-CHANGE',
  )
  assert.ok(out.some((o) => o.type === 'reject' && o.code === 'BAD_SIGNATURE' && o.penalize))
})

test.run()
