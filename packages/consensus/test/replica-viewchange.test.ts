import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  NULL_DIGEST,
  consensusSigningMessage,
  encodeMessage,
  encodeViewChangeBody,
} from '@cityledger/consensus'
import { CHAIN, ReplicaNet } from './replicaNet.ts'

// Case 2 of issue 10 (view-change deadlock). n = 4; validator 1 (primary of view 1) is down for good; only
// the link 0 <-> 2 fails, for about three view timeouts, then heals. Node 3 gets 2f+1 VIEW-CHANGE(1),
// times out into view 2, and its VIEW-CHANGE(2) used to replace its VIEW-CHANGE(1) at nodes 0 and 2:
// after the heal nobody held 2f+1 for a view nor f+1 for a higher one, no timer was armed, and nothing
// committed again. A replica now keeps each validator's VIEW-CHANGEs per view (a bounded range).
test('a higher VIEW-CHANGE does not erase the support a lower view needs (no deadlock after a link heals)', () => {
  const net = new ReplicaNet({ n: 4, down: [1], maxHeight: 5 })
  let linkDown = true
  net.drop = (from, to) => linkDown && ((from === 0 && to === 2) || (from === 2 && to === 0))
  net.start()
  // Link fault for ~3 view timeouts (viewTimeoutMs = 1000; the view-change timer doubles).
  net.advance(3500)
  const s3 = net.replicas[3]!.status()
  assert.ok(s3.view >= 2, `node 3 should have timed out into view 2, is in ${s3.view}`)
  assert.equal(net.committed, [[], [], [], []], 'nothing can commit during the fault')
  linkDown = false
  // Bound after the heal: a few (doubled) view timeouts.
  net.advance(30_000)
  for (const i of [0, 2, 3]) {
    const s = net.replicas[i]!.status()
    assert.ok(
      net.committed[i]!.length > 0,
      `node ${i} committed nothing after the heal (view ${s.view}, changing ${s.changingView})`,
    )
  }
})

// Found by the widened simulator (n=4 sweep, seed 5004): validator 0 down for good; node 2's VIEW-CHANGE(1)
// never reached nodes 1 and 3 before node 2's view-change timer moved it to view 2, after which it only
// retransmitted VIEW-CHANGE(2). Nodes 1 and 3 then had 2 of the 3 VIEW-CHANGE(1)s they needed and one
// higher VIEW-CHANGE, less than f+1: no timer anywhere, nothing committed. A replica now answers a peer
// that is still asking for a lower view with its own VIEW-CHANGE for that view, if it signed one.
test('a replica that moved to a higher view still gives a lagging peer its VIEW-CHANGE for the lower view', () => {
  const net = new ReplicaNet({ n: 4, down: [0], maxHeight: 5 })
  let lossy = true
  net.drop = (from, to, kind) => lossy && from === 2 && to !== 2 && kind === 'viewChange'
  net.start()
  net.advance(3200)
  assert.ok(net.replicas[2]!.status().view >= 2, `node 2 in view ${net.replicas[2]!.status().view}`)
  lossy = false
  net.advance(30_000)
  for (const i of [1, 2, 3]) {
    const s = net.replicas[i]!.status()
    assert.ok(
      net.committed[i]!.length > 0,
      `node ${i} committed nothing after the heal (view ${s.view}, changing ${s.changingView})`,
    )
  }
})

test('VIEW-CHANGEs kept per view stay bounded: a validator asking for ever higher views uses a few entries', () => {
  const net = new ReplicaNet({ n: 4, maxHeight: 3 })
  net.start()
  const k = net.crypto.keys[3]!
  for (let view = 2; view <= 60; view++) {
    const body = {
      chainId: CHAIN,
      view,
      validator: k.publicKey,
      checkpoint: { height: 0, digest: NULL_DIGEST, signatures: [] },
      prepared: [],
    }
    const bodyBytes = encodeViewChangeBody(body)
    const bytes = encodeMessage({
      type: 'viewChange',
      body,
      bodyBytes,
      signature: k.sign(consensusSigningMessage(bodyBytes)),
    })
    net.step(0, { type: 'message', bytes, from: '3' })
  }
  const fp = net.replicas[0]!.footprint() as { viewChanges: number; viewChangeEntries?: number }
  assert.is(net.replicas[0]!.status().view, 0, 'one validator alone never moves a replica to another view')
  assert.ok((fp.viewChangeEntries ?? fp.viewChanges) <= 4, JSON.stringify(fp))
})

test.run()
