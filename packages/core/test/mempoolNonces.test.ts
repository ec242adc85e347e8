// The mempool under the strict nonce rule (issue #10 case 6, issue #14's NONCE_GAP under load): txs
// that arrive slightly out of order wait and are reaped in nonce order; txs stuck behind a gap do not
// hold capacity for ever; a signer whose window is full gets back-pressure, not a "gap" error.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  type CityError,
  type KeyPair,
  type MempoolOptions,
  type Tx,
  generateKeyPair,
  toHex,
} from '@cityledger/core'
import { seedFor } from '@cityledger/core/testing'
import { codeOf, poolHarness, transferTx } from './helpers/mempoolHarness.ts'

const CHAIN = 'nonce-pool'
const alice = generateKeyPair(seedFor('pool-alice'))
const bob = generateKeyPair(seedFor('pool-bob'))

const txOf = (key: KeyPair, nonce: number) => transferTx(CHAIN, key, nonce)

const setup = (limits: Partial<MempoolOptions['limits']> = {}) => poolHarness(CHAIN, limits)

const noncesOf = (txs: Tx[]) =>
  txs.map((t) => `${toHex(t.body.signer) === toHex(alice.publicKey) ? 'a' : 'b'}${t.body.nonce}`)

test('txs that arrive out of order wait, and are reaped in nonce order once the gap fills', async () => {
  const h = setup()
  for (const n of [3, 2]) assert.is(await codeOf(h.pool.add(txOf(alice, n).bytes)), 'OK')
  assert.equal(h.pool.reap({ maxTxs: 100, maxBytes: 1 << 20 }), [], 'nothing reapable before nonce 1')
  assert.is(await codeOf(h.pool.add(txOf(alice, 1).bytes)), 'OK')
  assert.is(await codeOf(h.pool.add(txOf(bob, 1).bytes)), 'OK')
  const batch = h.pool.reap({ maxTxs: 100, maxBytes: 1 << 20 })
  assert.equal(noncesOf(batch), ['a1', 'b1', 'a2', 'a3'])
  h.commit(batch)
  assert.is(h.pool.size(), 0)
})

test('a reap stops at a gap, and continues after the commit of what came before it', async () => {
  const h = setup()
  for (const n of [1, 2, 4, 5]) await h.pool.add(txOf(alice, n).bytes)
  const first = h.pool.reap({ maxTxs: 100, maxBytes: 1 << 20 })
  assert.equal(noncesOf(first), ['a1', 'a2'])
  h.commit(first)
  assert.equal(h.pool.reap({ maxTxs: 100, maxBytes: 1 << 20 }), [], 'nonce 3 is missing')
  await h.pool.add(txOf(alice, 3).bytes)
  assert.equal(noncesOf(h.pool.reap({ maxTxs: 100, maxBytes: 1 << 20 })), ['a3', 'a4', 'a5'])
})

test('txs stuck behind a gap that never fills leave after GAP_WAIT blocks, freeing their slots', async () => {
  const h = setup({ maxGapWaitBlocks: 3 })
  for (const n of [2, 3]) await h.pool.add(txOf(alice, n).bytes)
  await h.pool.add(txOf(bob, 1).bytes)
  for (let i = 0; i < 3; i++) h.commit([])
  assert.is(h.pool.size(), 3, 'still waiting within the bound')
  const r = h.commit([])
  assert.is(r.removed.gap, 2)
  assert.is(h.pool.size(), 1, 'bob’s reapable tx stays')
  assert.is(h.pool.stats().removed.gap, 2)
  // The slots are free again: the same nonces may be sent once more, and wait again.
  assert.is(await codeOf(h.pool.add(txOf(alice, 2).bytes)), 'OK')
})

test('a signer whose whole window is pending gets back-pressure (MEMPOOL_FULL), not NONCE_GAP', async () => {
  const h = setup({ maxPerSigner: 4 })
  for (let n = 1; n <= 4; n++) assert.is(await codeOf(h.pool.add(txOf(alice, n).bytes)), 'OK')
  const busy = (await h.pool.add(txOf(alice, 5).bytes).catch((e: CityError) => e)) as CityError
  assert.is(busy.code, 'MEMPOOL_FULL')
  assert.equal(busy.details, { signerPending: 4, maxPerSigner: 4 })
  assert.not.ok(busy.penalize)
  // A real gap beyond the window is still a gap.
  assert.is(await codeOf(h.pool.add(txOf(bob, 6).bytes)), 'NONCE_GAP')
  // After a commit the window moves on.
  h.commit(h.pool.reap({ maxTxs: 2, maxBytes: 1 << 20 }))
  assert.is(await codeOf(h.pool.add(txOf(alice, 5).bytes)), 'OK')
})

test.run()
