import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { VoteKind, voteSigningMessage } from '@cityledger/core'
import { encodeMessage } from '@cityledger/consensus'
import { CHAIN, ReplicaNet } from './replicaNet.ts'

// Case 7 of issue 10 (unsigned floods), replica part. A forged message for a future view was refused
// with FUTURE_VIEW before its signature was checked, and never penalised: a peer could send them for
// free. Cheap checks come first, then the signature, then the refusal of what is invalid is penalised.

function vote(net: ReplicaNet, who: number, view: number, kind: VoteKind) {
  const block = new Uint8Array(1024).fill(view)
  const v = {
    chainId: CHAIN,
    kind,
    view,
    height: 1,
    digest: new Uint8Array(32).fill(9),
    validator: net.crypto.keys[who]!.publicKey,
  }
  return {
    v,
    block,
    good: net.crypto.keys[who]!.sign(voteSigningMessage(v)),
    bad: new Uint8Array(64).fill(3),
  }
}

test('a forged pre-prepare, prepare or commit for a future view is signature-checked and penalised', () => {
  const net = new ReplicaNet({ n: 4, maxHeight: 0 })
  net.start()
  for (const [kind, type] of [
    [VoteKind.prepare, 'prePrepare'],
    [VoteKind.prepare, 'prepare'],
    [VoteKind.commit, 'commit'],
  ] as const) {
    for (const view of [1, 5, 1_000_000]) {
      const { v, block, bad } = vote(net, view % 4, view, kind)
      const bytes = encodeMessage(
        type === 'prePrepare' ? { type, vote: v, signature: bad, block } : { type, vote: v, signature: bad },
      )
      const out = net.step(2, { type: 'message', bytes, from: 'flooder' })
      const r = out.find((o) => o.type === 'reject')
      assert.ok(r && r.type === 'reject', `${type} view ${view}: ${JSON.stringify(out)}`)
      assert.is(r.code, 'BAD_SIGNATURE', `${type} view ${view}`)
      assert.ok(r.penalize && r.from === 'flooder', `${type} view ${view} not penalised`)
    }
  }
})

test('a correctly signed message for a future view is refused without penalty (honest peers run ahead)', () => {
  const net = new ReplicaNet({ n: 4, maxHeight: 0 })
  net.start()
  const { v, block, good } = vote(net, 1, 1, VoteKind.prepare)
  const out = net.step(2, {
    type: 'message',
    bytes: encodeMessage({ type: 'prePrepare', vote: v, signature: good, block }),
    from: 'p',
  })
  const r = out.find((o) => o.type === 'reject')
  assert.ok(r && r.type === 'reject' && r.code === 'FUTURE_VIEW' && !r.penalize, JSON.stringify(out))
})

test.run()
