// Validators killed with SIGKILL, the primary killed, and a lost quorum, on 4 real processes.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { TxSender, startNetwork } from '../helpers/network.ts'
import { chainOf, heights, submitSubjects, waitCommitted, waitHeight } from '../helpers/chain.ts'

test('a killed validator does not stop commits; restarted it catches up; killing the primary changes the view; 2 of 4 down halts without forking', async () => {
  const net = await startNetwork({ validators: 4 })
  const sender = new TxSender(net.layout.genesis.chainId)
  const [n0, n1, n2, n3] = net.nodes as [
    (typeof net.nodes)[0],
    (typeof net.nodes)[0],
    (typeof net.nodes)[0],
    (typeof net.nodes)[0],
  ]
  try {
    await waitCommitted(n0, await submitSubjects(net, sender, 10, { tag: 'warmup' }))

    // 1. SIGKILL a backup: the other three keep committing.
    const { view } = await n0.client.status()
    const backup = net.nodes.find((n) => n.index !== view % 4)!
    await net.kill(backup.index, 'SIGKILL')
    const alive = net.nodes.filter((n) => n !== backup)
    const h1 = await waitCommitted(
      alive[0]!,
      await submitSubjects(net, sender, 10, { via: alive, tag: 'one-down' }),
    )

    // 2. Restarted, it catches up and its chain matches.
    await net.start(backup.index)
    await waitHeight(backup, h1)
    assert.equal(
      await chainOf(backup, h1),
      await chainOf(alive[0]!, h1),
      'restarted validator has the same chain',
    )

    // 3. Kill the primary: a view change follows and commits continue.
    const before = await n0.client.status()
    const primary = net.nodes[before.view % 4]!
    await net.kill(primary.index, 'SIGKILL')
    const rest = net.nodes.filter((n) => n !== primary)
    const h2 = await waitCommitted(
      rest[0]!,
      await submitSubjects(net, sender, 10, { via: rest, tag: 'primary-down' }),
      90_000,
    )
    const after = await rest[0]!.client.status()
    assert.ok(after.view > before.view, `view moved on from ${before.view} (now ${after.view})`)
    await net.start(primary.index)
    await waitHeight(primary, h2)

    // 4. Two of four down: nothing commits and nothing forks; one back and commits resume.
    await net.kill(n2.index, 'SIGKILL')
    await net.kill(n3.index, 'SIGKILL')
    const stuck = await heights([n0, n1])
    const pending = await submitSubjects(net, sender, 3, { via: [n0, n1], tag: 'no-quorum' })
    // Observe for three view-change timeouts: a negative check needs a window, not a sync point.
    await new Promise((r) => setTimeout(r, 3 * net.layout.genesis.consensus.viewChangeTimeoutMs))
    const still = await heights([n0, n1])
    assert.is(Math.max(...still), Math.max(...stuck), 'no commits without a quorum')
    for (const h of pending) assert.is((await n0.client.tx(h)).status, 'pending')
    await net.start(n2.index)
    const h3 = await waitCommitted(n0, pending, 120_000)
    const chains = await Promise.all([n0, n1, n2].map((n) => waitHeight(n, h3).then(() => chainOf(n, h3))))
    assert.equal(chains[1], chains[0])
    assert.equal(chains[2], chains[0])
  } catch (err) {
    for (const n of net.nodes) console.error(`--- node ${n.index}\n${net.log(n.index)}`)
    throw err
  } finally {
    await net.close()
  }
})

test.run()
