// consensus.emptyBlocks false (issue 13, item 5): an idle node proposes one block per heartbeat instead
// of one about every second, and a tx that arrives still commits after the batching delay. One validator
// in this process on a manual clock (the driver's and the replica's timers): virtual time, no waiting on
// the wall clock. Genesis of the harness: blockIntervalMs 20, viewChangeTimeoutMs 1000.
import { generateKeyPair, toHex } from '@cityledger/core'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type ManualClock, createManualClock } from '../src/p2p/index.ts'
import { type LocalNode, startLocalNode, subjectTx } from './nodeHarness.ts'

const HEARTBEAT = 5000

/** Lets the node finish what the last clock step started (journal writes, commits: in-process promises). */
async function settle(): Promise<void> {
  for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r))
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 20_000; i++) {
    if (cond()) return
    await new Promise((r) => setImmediate(r))
  }
  throw new Error(`timed out (event-loop turns, not time) waiting for ${what}`)
}

async function idleNode(emptyBlocks: boolean): Promise<{ local: LocalNode; clock: ManualClock }> {
  const clock = createManualClock(1_000_000)
  const local = await startLocalNode(
    (cfg) => {
      cfg.consensus = { emptyBlocks, heartbeatMs: HEARTBEAT }
    },
    { clock },
  )
  await settle()
  return { local, clock }
}

/**
 * Moves the clock in 20 ms steps (timers fire at their own times), letting the node work after each
 * (what a timer starts finishes at the end of its step: a block can lag its due time by up to 20 ms).
 */
async function advance(clock: ManualClock, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 20) {
    clock.advance(Math.min(20, ms - t))
    await settle()
  }
}

const view = async (local: LocalNode) =>
  ((await (await fetch(`${local.url}/v1/status`)).json()) as { view: number }).view

test('emptyBlocks false: one block per heartbeat while idle, none between', async () => {
  const { local, clock } = await idleNode(false)
  try {
    const ledger = local.node.ledger
    assert.is(ledger.head.height, 0)
    await advance(clock, HEARTBEAT - 100)
    assert.is(ledger.head.height, 0, 'a block before the first heartbeat')
    await advance(clock, 200)
    await until(() => ledger.head.height === 1, 'block 1 at the first heartbeat')
    await advance(clock, 10 * HEARTBEAT)
    assert.is(ledger.head.height, 11, `${ledger.head.height} blocks after 11 heartbeats`)
    assert.is(await view(local), 0, 'no view change while idle')
  } finally {
    await local.close()
  }
})

test('emptyBlocks false: a tx that arrives mid-heartbeat commits after the batching delay', async () => {
  const { local, clock } = await idleNode(false)
  try {
    const ledger = local.node.ledger
    await advance(clock, HEARTBEAT + 1000)
    await until(() => ledger.head.height === 1, 'block 1')
    const tx = subjectTx(local.chainId, generateKeyPair(), 1, 'idle')
    const r = await fetch(`${local.url}/v1/txs`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: tx.bytes,
    })
    assert.is(r.status, 202, await r.text())
    const at = clock.now()
    // 1 s after the last commit > blockIntervalMs: proposed at once, without waiting for the heartbeat.
    await until(() => ledger.head.height === 2, 'the block with the tx')
    assert.is(clock.now(), at, 'the tx waited for the clock')
    const got = (await (await fetch(`${local.url}/v1/txs/${toHex(tx.hash)}`)).json()) as { status: string }
    assert.is(got.status, 'committed')
    // Then idle again: the next block one heartbeat after this one.
    await advance(clock, HEARTBEAT - 200)
    assert.is(ledger.head.height, 2)
    await advance(clock, 300)
    await until(() => ledger.head.height === 3, 'the next heartbeat block')
    assert.is(await view(local), 0)
  } finally {
    await local.close()
  }
})

test('emptyBlocks true (the default): an empty block every third of the view-change timeout', async () => {
  const { local, clock } = await idleNode(true)
  try {
    await advance(clock, 10_000)
    const h = local.node.ledger.head.height
    // 1000 / 3 = 333 ms between blocks (+ up to a 20 ms step): 28 to 30 in 10 s.
    assert.ok(h >= 27 && h <= 30, `${h} blocks in 10 s`)
  } finally {
    await local.close()
  }
})

test.run()
