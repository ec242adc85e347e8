// test lane: alone
// Issue #13 item 4 at size: a validator joins by state sync a running 4-validator network whose state
// holds STATE_KEYS keys (identity roles in genesis, two state keys each), while one serving validator
// corrupts every page answer and is caught. Prints how long the join took and the bytes fetched. The
// genesis is executed once and its store copied to the three validators (shareGenesisStore). The suite
// runs the size, 1,000,000 keys (alone on 2026-12-03: 112-114 s on a quick machine, 195-197 s
// on a slow one; figures in bench/README.md); STATE_KEYS=N runs another size.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { toHex } from '@cityledger/core'
import { loadConfig, writeConfig } from '@cityledger/node'
import { startCluster, waitFor } from './cluster.ts'

const KEYS = Number(process.env.STATE_KEYS ?? 1_000_000)
const JOINER = 3
const LIAR = 1

test(`a validator joins by state sync a chain of ${KEYS} state keys; a corrupting peer is caught`, async () => {
  const roles = Array.from({ length: KEYS / 2 }, (_, i) => ({
    scope: 'bench',
    role: 'holder',
    key: `0x${i.toString(16).padStart(64, '0')}`,
  }))
  const t0 = Date.now()
  const c = await startCluster({
    validators: 4,
    faults: { [LIAR]: { corruptStateSync: true } },
    notStarted: [JOINER],
    shareGenesisStore: true,
    editGenesis: (g) => {
      const services = g.services as Record<string, { roles?: unknown[] }>
      services.identity!.roles = [...(services.identity!.roles ?? []), ...roles]
    },
  })
  try {
    console.log(`3 validators up with ${KEYS} genesis keys in ${Date.now() - t0} ms`)
    await waitFor('height 10', async () => (await c.nodes[0]!.client.status()).height >= 10, 120_000)
    const home = c.nodes[JOINER]!.home
    const cfg = loadConfig(home)
    cfg.sync.stateSync = true
    writeConfig(home, cfg)
    const t1 = Date.now()
    await c.start(JOINER)
    const joinMs = Date.now() - t1
    const lines = readFileSync(join(home, 'node.log'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    const done = lines.find((l) => l.msg === 'state sync: done')
    assert.ok(done, c.log(JOINER))
    assert.ok((done.keys as number) >= KEYS, `${done.keys} keys synced`)
    const liar = toHex(c.layout.keys[LIAR]!.publicKey)
    const dropped = lines.filter((l) => l.msg === 'state sync: peer dropped')
    assert.ok(
      dropped.some((l) => l.peer === liar && String(l.reason).startsWith('bad-page')),
      JSON.stringify(dropped),
    )
    const head = (await c.nodes[0]!.client.status()).height
    await waitFor(
      'the joined node follows',
      async () => (await c.nodes[JOINER]!.client.status()).height >= head + 2,
      120_000,
      () => c.describe(JOINER),
    )
    console.log(
      `joined by state sync at height ${done.height}: ${joinMs} ms from start to ready (sync ${done.ms} ms: ${done.pages} pages, ${done.keys} keys, ${done.bytes} bytes, ${done.requests} requests)`,
    )
  } finally {
    await c.close()
  }
})

test.run()
