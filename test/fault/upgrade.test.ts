// Issue #13 item 6 on real processes: a service upgrade agreed through governance on a 4-validator
// network. At the activation height a node on the old code stops cleanly (exit 7, the log names the
// version to install) without committing that block (one that did not get that far is stopped as an
// operator would, for the upgrade); restarted with the new code, three of
// them commit the activation block (the migration) and go on, while the fourth, restarted on the old
// code, stops again at the same height; on the new code it catches up. A tx acknowledged before the
// upgrade and one after it are committed on every node.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { EXIT } from '@cityledger/node'
import { cityTx } from './cityTx.ts'
import { type Cluster, startCluster, waitFor } from './cluster.ts'

const NEW = { token: '9.9.9' }

/** Node i's exit code, or a failure with its status and log once `ms` passed. */
async function exitWithin(c: Cluster, i: number, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, fail) => {
    timer = setTimeout(
      async () => fail(new Error(`node ${i} did not exit in ${ms} ms\n${await c.describe(i)}`)),
      ms,
    )
  })
  try {
    return await Promise.race([c.nodes[i]!.exited!, late])
  } finally {
    clearTimeout(timer)
  }
}

test('a governance upgrade: old code stops at the height (exit 7), new code migrates and goes on', async () => {
  // startCluster starts every node.
  const c = await startCluster({ validators: 4 })
  try {
    const before = await cityTx(c, 1, 'identity', 'registerSubject', { subject: new Uint8Array(32).fill(1) })
    assert.is(before.status, 'committed', JSON.stringify(before))
    const h = (await c.nodes[0]!.client.status()).height
    // The dev genesis: the city key is governance's one member (k = 1), minActivationDelay 16.
    const at = h + 4 + 16
    const proposal = await cityTx(c, 0, 'governance', 'propose', {
      kind: 'upgrade',
      payload: { service: 'token', version: NEW.token, codeHash: new Uint8Array(32).fill(9) },
      expiresAt: h + 4,
      activationHeight: at,
    })
    assert.is(proposal.status, 'committed', JSON.stringify(proposal))
    // Every node runs the old code: a node stops when it has block `at` committed and executes it. The
    // first ones to stop may leave a slower one without the votes it needed (it waits below `at`, as
    // it would on a real network until its operator restarts it): those are stopped here.
    const firstStop = await Promise.race(c.nodes.map((_, i) => exitWithin(c, i, 60_000)))
    assert.is(firstStop, EXIT.UPGRADE_REQUIRED)
    const codes = await Promise.all(c.nodes.map((_, i) => c.kill(i, 'SIGTERM')))
    for (const [i, code] of codes.entries()) {
      assert.ok(code === EXIT.UPGRADE_REQUIRED || code === 0, `node ${i} exited ${code}`)
      if (code !== EXIT.UPGRADE_REQUIRED) continue
      const log = readFileSync(join(c.nodes[i]!.home, 'node.log'), 'utf8')
      assert.match(log, `block ${at} runs token ${NEW.token}`)
      assert.match(log, `install token ${NEW.token} and restart`)
    }
    // Three get the new code, one the old.
    for (const i of [0, 1, 2]) c.nodes[i]!.fault = { serviceVersions: NEW }
    await Promise.all([0, 1, 2, 3].map((i) => c.start(i)))
    assert.is(await exitWithin(c, 3, 60_000), EXIT.UPGRADE_REQUIRED, 'old code stops again')
    await waitFor(
      `nodes 0-2 past ${at + 3}`,
      async () =>
        (await Promise.all([0, 1, 2].map((i) => c.nodes[i]!.client.status()))).every(
          (s) => s.height > at + 3,
        ),
      60_000,
      () => c.describe(0),
    )
    const after = await cityTx(c, 2, 'identity', 'registerSubject', { subject: new Uint8Array(32).fill(2) })
    assert.is(after.status, 'committed', JSON.stringify(after))
    // The old node with the new code catches up and holds both txs.
    c.nodes[3]!.fault = { serviceVersions: NEW }
    await c.start(3)
    const target = (await c.nodes[0]!.client.status()).height
    await waitFor(
      `node 3 at ${target}`,
      async () => (await c.nodes[3]!.client.status()).height >= target,
      60_000,
      () => c.describe(3),
    )
    for (const n of c.nodes)
      for (const tx of [before, after]) {
        const s = await n.client.tx(tx.hash)
        assert.is(s.status, 'committed', `node ${n.index}: ${tx.hash}`)
        assert.is(s.height, tx.height, `node ${n.index}: same height`)
      }
  } finally {
    await c.close()
  }
})

test.run()
