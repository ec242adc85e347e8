import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { VoteKind, sha256 } from '@cityledger/core'
import { decodeMessage, encodeMessage } from '../src/messages/codec.ts'
import { decodeSimBlock, encodeSimBlock, simBlockDigest, simValidate } from '../src/sim/blocks.ts'
import { decodeShared } from '../src/sim/decodeCache.ts'

// The simulator's caches (issue #10, faster sweeps) must give exactly what the uncached functions give:
// the same decoded message or refusal per size limit, the same block digest and validity for every view
// of a block, whatever was asked before.

function prePrepare(padding: number): Uint8Array {
  const block = encodeSimBlock({ height: 3, view: 1, proposer: 1, nonce: 7, valid: true, padding })
  const vote = {
    chainId: 'sim-chain',
    kind: VoteKind.prepare,
    view: 1,
    height: 3,
    digest: simBlockDigest(block),
    validator: new Uint8Array(32).fill(1),
  }
  return encodeMessage({ type: 'prePrepare', vote, signature: new Uint8Array(64).fill(2), block })
}

test('decodeShared: what decodeMessage gives, once per bytes object and limit, frozen', () => {
  const bytes = prePrepare(5000)
  const m = decodeShared(bytes)
  assert.equal(m, decodeMessage(bytes))
  assert.is(decodeShared(bytes), m, 'the second read is the same object')
  assert.ok(Object.isFrozen(m) && m?.type === 'prePrepare' && Object.isFrozen(m.vote))
  assert.throws(() => {
    ;(m as { type: string }).type = 'commit'
  })
  // A limit below the size: refused under that limit only.
  assert.is(decodeShared(bytes, 1000), undefined)
  assert.throws(() => decodeMessage(bytes, { maxBytes: 1000 }))
  assert.equal(decodeShared(bytes, 64 * 1024 * 1024), m)
  // Garbage and a truncated copy: refused, as decodeMessage refuses them.
  assert.is(decodeShared(bytes.subarray(0, bytes.length - 1)), undefined)
  assert.is(decodeShared(new Uint8Array([0xc1])), undefined)
})

test('block parse cache: every view of a block gets the uncached digest and verdict', () => {
  const block = encodeSimBlock({ height: 9, view: 2, proposer: 3, nonce: 11, valid: true, padding: 300_000 })
  const header = block.subarray(2, 2 + ((block[0]! << 8) | block[1]!))
  const digest = sha256(header)
  const wire = prePrepare(0)
  // The block inside a bigger buffer, as a decoded message carries it, at two offsets.
  const buf = new Uint8Array(block.length * 2 + 10)
  buf.set(block, 3)
  buf.set(block, block.length + 7)
  for (const view of [
    block,
    buf.subarray(3, 3 + block.length),
    buf.subarray(block.length + 7, 2 * block.length + 7),
  ]) {
    assert.equal(simBlockDigest(view), digest)
    assert.ok(simValidate(view, 9))
    assert.not.ok(simValidate(view, 8))
    assert.equal(decodeSimBlock(view)?.nonce, 11)
  }
  // The same buffer, other lengths: not a block (trailing byte, short padding).
  assert.throws(() => simBlockDigest(buf.subarray(3, 4 + block.length)))
  assert.throws(() => simBlockDigest(buf.subarray(3, 2 + block.length)))
  // Results are copies: changing one changes nothing the next caller sees.
  simBlockDigest(block).fill(0)
  const b = decodeSimBlock(block)!
  b.height = 1
  assert.equal(simBlockDigest(block), digest)
  assert.is(decodeSimBlock(block)?.height, 9)
  assert.ok(decodeShared(wire))
})

test('block parse cache: a header written after a parse is parsed again (the cache is no excuse)', () => {
  const block = encodeSimBlock({ height: 4, view: 0, proposer: 0, nonce: 77, valid: true, padding: 10 })
  const before = simBlockDigest(block)
  assert.ok(simValidate(block, 4))
  // The nonce byte in the header (positive fixint 77; no other header byte is 77), changed to 78.
  const at = block.indexOf(77, 2)
  block[at] = 78
  assert.not.equal(simBlockDigest(block), before)
  assert.is(decodeSimBlock(block)?.nonce, 78)
  // Padding that is not zeros: refused, also where the same bytes parsed before.
  const padded = encodeSimBlock({ height: 4, view: 0, proposer: 0, nonce: 1, valid: true, padding: 10 })
  const copy = new Uint8Array(padded.length + 1)
  copy.set(padded)
  assert.ok(simValidate(copy.subarray(0, padded.length), 4))
  const bad = copy.slice(0, padded.length)
  bad[bad.length - 1] = 1
  assert.not.ok(simValidate(bad, 4))
})

test.run()
