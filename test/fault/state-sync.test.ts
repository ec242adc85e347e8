// Issue #13 item 4 on real processes: a validator whose data folder is empty joins a running
// 4-validator network by state sync (`sync.stateSync`) instead of replaying the chain. One serving
// validator corrupts every state-sync page answer (faultNode's `corruptStateSync`): the joining node
// catches it (penalised, dropped, its pages fetched from the others), starts at the synced height,
// follows new blocks, proves a state entry written before it joined, and has a tx of its own committed.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { toHex } from '@cityledger/core'
import { loadConfig, writeConfig } from '@cityledger/node'
import { cityTx } from './cityTx.ts'
import { type Cluster, startCluster, waitFor } from './cluster.ts'

const JOINER = 3
const LIAR = 1

const logLines = (c: Cluster, i: number): Record<string, unknown>[] =>
  readFileSync(join(c.nodes[i]!.home, 'node.log'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))

test('a validator joins by state sync while a serving peer corrupts pages; it follows the chain and proves state', async () => {
  const c = await startCluster({
    validators: 4,
    faults: { [LIAR]: { corruptStateSync: true } },
    notStarted: [JOINER],
  })
  try {
    const subjects = Array.from({ length: 6 }, (_, i) => new Uint8Array(32).fill(i + 1))
    for (const subject of subjects) {
      const r = await cityTx(c, 0, 'identity', 'registerSubject', { subject })
      assert.is(r.status, 'committed', JSON.stringify(r))
    }
    await waitFor('height 20', async () => (await c.nodes[0]!.client.status()).height >= 20, 60_000)
    const home = c.nodes[JOINER]!.home
    const cfg = loadConfig(home)
    cfg.sync.stateSync = true
    writeConfig(home, cfg)
    await c.start(JOINER)
    const lines = logLines(c, JOINER)
    const done = lines.find((l) => l.msg === 'state sync: done')
    assert.ok(done, `state sync ran:\n${c.log(JOINER)}`)
    const liarKey = toHex(c.layout.keys[LIAR]!.publicKey)
    const dropped = lines.filter((l) => l.msg === 'state sync: peer dropped')
    assert.ok(
      dropped.some((l) => l.peer === liarKey && String(l.reason).startsWith('bad-page')),
      `the corrupting validator is caught: ${JSON.stringify(dropped)}`,
    )
    assert.not.ok(
      dropped.some((l) => l.peer !== liarKey),
      `only the liar dropped: ${JSON.stringify(dropped)}`,
    )
    const synced = done.height as number
    console.log(
      `state sync: height ${synced}, ${done.pages} pages, ${done.keys} keys, ${done.bytes} bytes, ${done.ms} ms`,
    )
    // It started at the synced height, not from genesis: below it, blocks are gone with a clear error.
    const err = await c.nodes[JOINER]!.client.block(1).catch((e) => e)
    assert.match(String(err?.code ?? err), /PRUNED/)
    // It follows new blocks.
    const head = (await c.nodes[0]!.client.status()).height
    await waitFor(
      `node ${JOINER} at ${head + 3}`,
      async () => (await c.nodes[JOINER]!.client.status()).height >= head + 3,
      60_000,
      () => c.describe(JOINER),
    )
    // A state entry written before it joined, proven under a root the validators certified.
    const validators = c.layout.keys.map((k) => k.publicKey)
    const v = await c.nodes[JOINER]!.client.queryVerified(
      'identity',
      'subject',
      { subject: toHex(subjects[2]!) },
      { chainId: c.layout.genesis.chainId, validators },
    )
    assert.ok(v.entries[0]?.value, 'proven present')
    // And a tx sent through it is committed.
    const after = await cityTx(c, JOINER, 'identity', 'registerSubject', {
      subject: new Uint8Array(32).fill(99),
    })
    assert.is(after.status, 'committed', JSON.stringify(after))
  } finally {
    await c.close()
  }
})

test.run()
