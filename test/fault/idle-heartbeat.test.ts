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
    const [, n1, n2, n3] = net.nodes
    const time = async (h: number) => (await n1!.client.block(h))!.header.time
    await waitHeight(n1!, 4, 60_000)
    // Blocks 2..4 came one heartbeat apart at least (with empty blocks they would be ~0.5 s apart).
    for (let h = 2; h <= 4; h++) {
      const gap = (await time(h)) - (await time(h - 1))
      assert.ok(gap >= HEARTBEAT - 100, `blocks ${h - 1} -> ${h}: ${gap} ms apart while idle`)
    }
    const views = await Promise.all(net.nodes.map(async (n) => (await n.client.status()).view))
    assert.equal(views, [0, 0, 0, 0], 'no view change while idle')

    // A tx right after a block: proposed after the batching delay, not at the next heartbeat.
    const sender = new TxSender(net.layout.genesis.chainId)
    const key = generateKeyPair()
    const submitTx = (node: typeof n1, tag: string) =>
      node!.client.submitTx(
        sender.body(key, 'identity', 'registerSubject', { subject: sha256(utf8.encode(tag)) }),
        key.secretKey,
      )
    // Right after a heartbeat block, so that the next one is a heartbeat away.
    const before = (await n1!.client.status()).height + 1
    await waitHeight(n1!, before, 30_000)
    const tx = (await submitTx(n1, 'idle-1')) as { hash: string }
    const txHeight = await waitCommitted(n1!, [tx.hash], 30_000)
    const gap = (await time(txHeight)) - (await time(txHeight - 1))
    assert.ok(txHeight === before + 1, `the tx went into block ${txHeight}, the head was ${before}`)
    assert.ok(
      gap < HEARTBEAT,
      `the tx's block came ${gap} ms after the one before: it waited for the heartbeat`,
    )

    // The primary of view 0 (validator 0) dies while the chain is idle.
    await waitHeight(n1!, txHeight + 1, 30_000)
    const last = (await n1!.client.status()).height
    await net.kill(0)
    await waitHeight(n1!, last + 1, 60_000)
    const replacedGap = (await time(last + 1)) - (await time(last))
    assert.ok(
      replacedGap >= HEARTBEAT + TIMEOUT - 200,
      `the next block came ${replacedGap} ms after the last: backups gave up before heartbeat + timeout`,
    )
    console.log(
      `idle gaps >= ${HEARTBEAT} ms; tx block ${gap} ms after the one before; after the kill ${replacedGap} ms`,
    )
    const after = await Promise.all([n1, n2, n3].map(async (n) => (await n!.client.status()).view))
    assert.ok(
      after.every((v) => v >= 1),
      `views after the primary died: ${after.join(', ')}`,
    )
    // And the three commit txs again.
    const tx2 = (await submitTx(n2, 'idle-2')) as { hash: string }
    await waitCommitted(n3!, [tx2.hash], 30_000)
    await waitFor('every live validator at the same height', async () => {
      const hs = await Promise.all([n1, n2, n3].map(async (n) => (await n!.client.status()).height))
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
