// consensus.emptyBlocks false on real processes (issue 13, item 5): 4 validators, heartbeat 3 s, view
// timeout 1.5 s. Idle, the chain makes about one block per heartbeat and nobody changes view; a tx is
// proposed without waiting for the heartbeat; the primary killed while idle is replaced after
// heartbeat + timeout (not after the timeout alone), and the three others commit txs again.
// Bounds on block times are one-sided (never "at most" a wall-clock time, except the generous waits).
import { generateKeyPair, sha256, utf8 } from '@cityledger/core'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { TxSender, startNetwork, waitFor } from '../helpers/network.ts'
import { waitCommitted, waitHeight } from '../helpers/chain.ts'

const HEARTBEAT = 3000
const TIMEOUT = 1500

test(`emptyBlocks false: one block per heartbeat idle, txs at once, a crashed idle primary replaced after heartbeat + timeout`, async () => {
  const net = await startNetwork({
    validators: 4,
    consensus: { viewChangeTimeoutMs: TIMEOUT, blockIntervalMs: 50 },
    editConfig: (cfg) => {
      cfg.consensus = { emptyBlocks: false, heartbeatMs: HEARTBEAT }
    },
  })
  try {
    const views = () => Promise.all(net.nodes.map(async (n) => (await n.client.status()).view))
    // Start-up is not idleness: on a busy machine the validators come up seconds apart, and a backup
    // that started well before the primary gives up on block 1 (its timer runs from its own start; a
    // fresh-clone run saw node 1 change view 2 s before node 0 was up). Idle is from block 2 on.
    await waitFor(
      'every validator at height 2',
      async () =>
        (await Promise.all(net.nodes.map(async (n) => (await n.client.status()).height))).every(
          (h) => h >= 2,
        ),
      60_000,
    )
    const settled = await views()
    // The view of a quorum (3 of 4), and its primary (primary(view) = validators[view mod n]).
    const view = settled.find((v) => settled.filter((u) => u === v).length >= 3)
    assert.ok(view !== undefined, `no view held by 3 of 4 validators at height 2: ${settled}`)
    const primary = view % 4
    // w watches the chain; x and y submit and check txs after the primary dies.
    const [w, x, y] = [1, 2, 3].map((k) => net.nodes[(primary + k) % 4]!)
    const time = async (h: number) => (await w!.client.block(h))!.header.time
    await waitHeight(w!, 5, 60_000)
    // Blocks 3..5 came one heartbeat apart at least (with empty blocks they would be ~0.5 s apart).
    for (let h = 3; h <= 5; h++) {
      const gap = (await time(h)) - (await time(h - 1))
      assert.ok(gap >= HEARTBEAT - 100, `blocks ${h - 1} -> ${h}: ${gap} ms apart while idle`)
    }
    assert.equal(await views(), settled, `no view change while idle (views at height 2: ${settled})`)

    // A tx right after a block: proposed after the batching delay, not at the next heartbeat.
    const sender = new TxSender(net.layout.genesis.chainId)
    const key = generateKeyPair()
    const submitTx = (node: typeof w, tag: string) =>
      node!.client.submitTx(
        sender.body(key, 'identity', 'registerSubject', { subject: sha256(utf8.encode(tag)) }),
        key.secretKey,
      )
    // Right after a heartbeat block, so that the next one is a heartbeat away.
    const before = (await w!.client.status()).height + 1
    await waitHeight(w!, before, 30_000)
    const tx = (await submitTx(w, 'idle-1')) as { hash: string }
    const txHeight = await waitCommitted(w!, [tx.hash], 30_000)
    const gap = (await time(txHeight)) - (await time(txHeight - 1))
    assert.ok(txHeight === before + 1, `the tx went into block ${txHeight}, the head was ${before}`)
    assert.ok(
      gap < HEARTBEAT,
      `the tx's block came ${gap} ms after the one before: it waited for the heartbeat`,
    )

    // The primary dies while the chain is idle.
    await waitHeight(w!, txHeight + 1, 30_000)
    const last = (await w!.client.status()).height
    await net.kill(primary)
    await waitHeight(w!, last + 1, 60_000)
    const replacedGap = (await time(last + 1)) - (await time(last))
    assert.ok(
      replacedGap >= HEARTBEAT + TIMEOUT - 200,
      `the next block came ${replacedGap} ms after the last: backups gave up before heartbeat + timeout`,
    )
    console.log(
      `idle gaps >= ${HEARTBEAT} ms; tx block ${gap} ms after the one before; after the kill ${replacedGap} ms`,
    )
    const after = await Promise.all([w, x, y].map(async (n) => (await n!.client.status()).view))
    assert.ok(
      after.every((v) => v > view),
      `views after the primary died: ${after.join(', ')}`,
    )
    // And the three commit txs again.
    const tx2 = (await submitTx(x, 'idle-2')) as { hash: string }
    await waitCommitted(y!, [tx2.hash], 30_000)
    await waitFor('every live validator at the same height', async () => {
      const hs = await Promise.all([w, x, y].map(async (n) => (await n!.client.status()).height))
      return hs.every((h) => h === hs[0])
    })
  } catch (err) {
    for (let i = 0; i < 4; i++) console.error(`--- node ${i}\n${net.log(i)}`)
    throw err
  } finally {
    await net.close()
  }
})

test.run()
