import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { consensusMessageLimit, equalBytes } from '@cityledger/core'
import { ReplicaNet } from './replicaNet.ts'

// Case 1 of issue 10 (primary crash under load). A VIEW-CHANGE used to carry the block of every prepared
// certificate above the stable checkpoint: with node defaults (K = 16, L = 64) and ~1.25 MB blocks it
// outgrew the consensus frame limit (maxBlockBytes 8 MiB + 4 MiB), p2p refused to send it and the view
// change never finished. VIEW-CHANGE and NEW-VIEW now carry digests and certificates only; a replica
// that lacks a re-proposed block fetches it (BLOCK-REQUEST / BLOCK).

const NODE_MAX_BLOCK_BYTES = 8 * 1024 * 1024 // node default (genesis maxBlockBytes)
const LIMIT = consensusMessageLimit(NODE_MAX_BLOCK_BYTES)
const BLOCK_BYTES = 1_250_000
const HEIGHTS = 12

function bigBlock(height: number, view: number): Uint8Array {
  const b = new Uint8Array(BLOCK_BYTES)
  b[0] = height
  b[1] = view
  b[BLOCK_BYTES - 1] = 0xee
  return b
}

test('with K=16, L=64 and 1.25 MB blocks, a view change fits the frame limit and the prepared blocks commit', () => {
  const net = new ReplicaNet({
    n: 4,
    config: { checkpointInterval: 16, windowSize: 64, maxMessageBytes: LIMIT, viewTimeoutMs: 3000 },
    blockFor: bigBlock,
    maxHeight: HEIGHTS,
    frameLimit: LIMIT,
  })
  // The primary (0) crashes after its pre-prepares went out: no commit gets through, and node 3 never
  // sees a pre-prepare, so it lacks every block that the others prepared.
  let primaryAlive = true
  net.drop = (from, to, kind) =>
    (!primaryAlive && (from === 0 || to === 0)) || kind === 'commit' || (kind === 'prePrepare' && to === 3)
  net.start()
  for (const i of [1, 2]) assert.ok(net.replicas[i]!.footprint().slots >= HEIGHTS, `node ${i} prepared`)
  primaryAlive = false
  net.drop = (from, to) => from === 0 || to === 0
  net.advance(60_000)
  const vcs = net.sent.filter((s) => s.kind === 'viewChange' || s.kind === 'newView')
  assert.ok(vcs.length > 0, 'a view change happened')
  for (const s of net.sent)
    assert.ok(
      s.bytes.length <= LIMIT,
      `${s.kind} of ${s.bytes.length} bytes exceeds the frame limit ${LIMIT}`,
    )
  // Bounded whatever the block size: no VIEW-CHANGE or NEW-VIEW grows with the blocks.
  for (const s of vcs) assert.ok(s.bytes.length < 64 * 1024, `${s.kind} of ${s.bytes.length} bytes`)
  for (const i of [1, 2, 3]) {
    const got = net.commitOutputs[i]!.filter((c) => c.height <= HEIGHTS)
    assert.is(got.length, HEIGHTS, `node ${i} committed ${got.length} of the ${HEIGHTS} prepared heights`)
    for (const c of got) assert.ok(equalBytes(c.block, bigBlock(c.height, 0)), `node ${i} height ${c.height}`)
  }
  // Node 3 had none of the blocks: it fetched them.
  assert.ok(net.sent.some((s) => s.from === 3 && s.kind === 'blockRequest'))
})

test.run()
