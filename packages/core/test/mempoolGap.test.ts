// Issue #14, NONCE_GAP under the network load: a signer's txs that arrive out of order within the
// per-signer window wait in the pool (bounded per signer and in the pool's totals) and become
// reapable, in nonce order, once the gap fills; txs left behind a gap that never fills leave cleanly.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type KeyPair, type MempoolOptions, generateKeyPair } from '@cityledger/core'
import { seedFor } from '@cityledger/core/testing'
import { codeOf, poolHarness, transferTx } from './helpers/mempoolHarness.ts'

const CHAIN = 'gap-pool'
const keys = Array.from({ length: 8 }, (_, i) => generateKeyPair(seedFor(`gap-signer-${i}`)))
const alice = keys[0]!

const txOf = (key: KeyPair, nonce: number) => transferTx(CHAIN, key, nonce)

const setup = (limits: Partial<MempoolOptions['limits']> = {}) => poolHarness(CHAIN, limits)

test('nonces n+2, n+1, n submitted in that order are all admitted and reaped in order', async () => {
  const h = setup()
  // A signer with history: committed nonce 4, so n = 5.
  h.commit([1, 2, 3, 4].map((n) => txOf(alice, n)))
  for (const n of [7, 6]) {
    assert.is(await codeOf(h.pool.add(txOf(alice, n).bytes)), 'OK', `nonce ${n} waits`)
    assert.equal(h.reapAll(), [], 'not reapable while nonce 5 is missing')
  }
  assert.is(await codeOf(h.pool.add(txOf(alice, 5).bytes)), 'OK')
  const block = h.reapAll()
  assert.equal(
    block.map((t) => t.body.nonce),
    [5, 6, 7],
  )
  h.commit(block)
  assert.is(h.pool.size(), 0)
  assert.is(h.pool.stats().rejected.NONCE_GAP, undefined)
})

test('the same, arriving in one tick (one batch, as RPC batch submit and gossip hand them over)', async () => {
  const h = setup()
  h.commit([txOf(alice, 1)])
  const r = await h.pool.addMany([4, 3, 2].map((n) => txOf(alice, n).bytes))
  assert.equal(
    r.map((x) => x.ok),
    [true, true, true],
  )
  assert.equal(
    h.reapAll().map((t) => t.body.nonce),
    [2, 3, 4],
  )
})

test('out of order across the whole window: every nonce up to committed + maxPerSigner waits', async () => {
  const h = setup({ maxPerSigner: 8 })
  for (let n = 8; n >= 1; n--) assert.is(await codeOf(h.pool.add(txOf(alice, n).bytes)), 'OK', `nonce ${n}`)
  assert.equal(
    h.reapAll().map((t) => t.body.nonce),
    [1, 2, 3, 4, 5, 6, 7, 8],
  )
  // Beyond the window while the signer holds it all: back-pressure, not a gap.
  assert.is(await codeOf(h.pool.add(txOf(alice, 9).bytes)), 'MEMPOOL_FULL')
})

test('txs held in a gap count in the pool totals: the pool bound applies to them', async () => {
  const h = setup({ maxTxs: 6 })
  // Six signers each send only nonce 2: six txs, none reapable, the pool is full.
  for (const k of keys.slice(0, 6)) assert.is(await codeOf(h.pool.add(txOf(k, 2).bytes)), 'OK')
  assert.is(h.pool.size(), 6)
  assert.is(await codeOf(h.pool.add(txOf(keys[6]!, 1).bytes)), 'MEMPOOL_FULL')
})

test('txs left behind a gap that never fills leave after maxGapWaitBlocks, and free everything', async () => {
  const h = setup({ maxGapWaitBlocks: 2 })
  const held = [3, 4].map((n) => txOf(alice, n))
  for (const t of held) await h.pool.add(t.bytes)
  await h.pool.add(txOf(keys[1]!, 1).bytes)
  const before = h.pool.bytes()
  h.commit(h.reapAll())
  assert.is(h.pool.size(), 2, 'keys[1] committed, alice waits')
  assert.is(h.pool.bytes(), held[0]!.bytes.length + held[1]!.bytes.length)
  assert.ok(before > h.pool.bytes())
  h.commit([])
  const r = h.commit([])
  assert.is(r.removed.gap, 2)
  assert.is(h.pool.size(), 0)
  assert.is(h.pool.bytes(), 0)
  assert.is(h.pool.stats().admitting, 0)
  assert.not.ok(h.pool.has(held[0]!.hash))
  // Nothing of alice is left behind: her nonces 1..3 are accepted in order and reaped.
  for (const n of [1, 2, 3]) assert.is(await codeOf(h.pool.add(txOf(alice, n).bytes)), 'OK')
  assert.equal(
    h.reapAll().map((t) => t.body.nonce),
    [1, 2, 3],
  )
})

test('a gap that fills before the wait is over: nothing is dropped', async () => {
  const h = setup({ maxGapWaitBlocks: 2 })
  await h.pool.add(txOf(alice, 2).bytes)
  h.commit([])
  h.commit([])
  await h.pool.add(txOf(alice, 1).bytes)
  const r = h.commit([])
  assert.is(r.removed.gap, 0, 'no longer behind a gap')
  assert.equal(
    h.reapAll().map((t) => t.body.nonce),
    [1, 2],
  )
})

test('a refused nonce that is never sent again leaves the signer’s later nonces behind a gap', async () => {
  // What a load generator with pre-signed nonces meets (issue #14): the signer's window is full, its
  // next nonce is refused (back-pressure), the sender goes on with the nonces after it.
  const h = setup({ maxPerSigner: 4, maxGapWaitBlocks: 2 })
  for (const n of [1, 2, 3, 4]) assert.is(await codeOf(h.pool.add(txOf(alice, n).bytes)), 'OK')
  assert.is(await codeOf(h.pool.add(txOf(alice, 5).bytes)), 'MEMPOOL_FULL', 'window full')
  h.commit(h.pool.reap({ maxTxs: 2, maxBytes: 1 << 20 }))
  // Committed 2: nonce 6 is inside the window and waits behind the missing 5; 7 is beyond it.
  assert.is(await codeOf(h.pool.add(txOf(alice, 6).bytes)), 'OK')
  assert.is(await codeOf(h.pool.add(txOf(alice, 7).bytes)), 'NONCE_GAP')
  h.commit(h.reapAll())
  assert.equal(h.reapAll(), [], 'nonce 6 can never be included without 5')
  h.commit([])
  assert.is(h.commit([]).removed.gap, 1, 'and leaves after maxGapWaitBlocks')
  // Sending the refused nonce again is all it takes.
  for (const n of [5, 6, 7]) assert.is(await codeOf(h.pool.add(txOf(alice, n).bytes)), 'OK')
  assert.equal(
    h.reapAll().map((t) => t.body.nonce),
    [5, 6, 7],
  )
})

test.run()
