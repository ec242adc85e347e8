// Issue #13 item 5 on real processes: a validator of a loaded 4-validator network is restarted with
// `store.retainBlocks` set. Its data folder shrinks (measured after a full LevelDB compaction, before
// and after, so what is measured is the data and not the write-ahead log), blocks below its retention
// answer PRUNED, and state written in the pruned blocks still answers a verified query (proven under a
// root the validators certified, above the retention height). It then follows the chain again. Before
// the restart, every acknowledged tx is checked to be on every node exactly once.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { openLevelKv, toHex } from '@cityledger/core'
import { Rng, testSeed } from '@cityledger/core/testing'
import { dataPath, loadConfig, writeConfig } from '@cityledger/node'
import { checkChains } from './check.ts'
import { cityTx } from './cityTx.ts'
import { type Cluster, startCluster, waitFor } from './cluster.ts'
import { Load, setupLoad } from './load.ts'

const seed = testSeed(1307)
const PRUNED = 2
const RETAIN = 16
const LOADED_TO = 150

/** Bytes of the files in `dir`, after compacting the whole LevelDB store in it (the node is stopped). */
async function compactedBytes(dir: string): Promise<number> {
  const kv = await openLevelKv(dir)
  try {
    await kv.compact!({ gte: new Uint8Array(0), lt: new Uint8Array(64).fill(0xff) })
  } finally {
    await kv.close()
  }
  let bytes = 0
  for (const e of readdirSync(dir, { withFileTypes: true }))
    if (e.isFile()) bytes += statSync(join(dir, e.name)).size
  return bytes
}

const logged = (c: Cluster, i: number, msg: string): Record<string, unknown> | undefined =>
  readFileSync(join(c.nodes[i]!.home, 'node.log'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l.msg === msg)

test(`a validator turns on store.retainBlocks: its folder shrinks, old blocks are PRUNED, old state still proves (SEED=${seed})`, async () => {
  const c = await startCluster({ validators: 4 })
  let load: Load | undefined
  try {
    const { world } = await setupLoad(c, { accounts: 8 })
    // State written early: its blocks will be pruned, the state itself must stay provable.
    const subjects = Array.from({ length: 4 }, (_, i) => new Uint8Array(32).fill(i + 1))
    for (const subject of subjects) {
      const r = await cityTx(c, 0, 'identity', 'registerSubject', { subject })
      assert.is(r.status, 'committed', JSON.stringify(r))
    }
    load = new Load(c, world, new Rng(seed), { rate: 30 })
    load.start()
    await waitFor(
      `height ${LOADED_TO}`,
      async () => (await c.nodes[0]!.client.status()).height >= LOADED_TO,
      120_000,
      () => c.describe(0),
    )
    const stats = await load.stop()
    const acks = [...load.acks.values()]
    load = undefined
    assert.ok(stats.acked > 100, `the load committed txs: ${JSON.stringify(stats)}`)
    // Before any node prunes: every acknowledged tx once on every node, no fork.
    const chains = await checkChains(c, acks)
    assert.equal(chains.violations, [])
    assert.is(chains.found, acks.length)

    const home = c.nodes[PRUNED]!.home
    assert.is(await c.kill(PRUNED, 'SIGTERM'), 0, 'a clean stop')
    const cfg = loadConfig(home)
    const data = dataPath(home, cfg)
    const before = await compactedBytes(data)
    cfg.store.retainBlocks = RETAIN
    // The prune's own lines (`pruned block history`, `pruned state history`) are at debug level.
    cfg.log.modules = { ...cfg.log.modules, store: 'debug' }
    writeConfig(home, cfg)
    await c.start(PRUNED)
    const client = c.nodes[PRUNED]!.client
    await waitFor(
      'the block and state history pruned',
      async () => logged(c, PRUNED, 'pruned state history') !== undefined,
      60_000,
      () => c.describe(PRUNED),
    )
    const blocks = logged(c, PRUNED, 'pruned block history')!
    const st = await client.status()
    assert.ok(
      st.lowestHeight > LOADED_TO - RETAIN - 64,
      `lowest kept ${st.lowestHeight}: ${JSON.stringify(blocks)}`,
    )
    assert.ok(st.lowestHeight >= st.height - RETAIN - 64, `lowest ${st.lowestHeight}, head ${st.height}`)
    for (const h of [1, st.lowestHeight - 1]) {
      const err = await client.block(h).catch((e) => e)
      assert.match(String(err?.code ?? err), /PRUNED/, `block ${h}`)
    }
    assert.is((await client.block(st.lowestHeight))?.header.height, st.lowestHeight)

    // State written in pruned blocks, proven under a certified root above the retention height.
    const v = await client.queryVerified(
      'identity',
      'subject',
      { subject: toHex(subjects[1]!) },
      { chainId: c.layout.genesis.chainId, validators: c.layout.keys.map((k) => k.publicKey) },
    )
    assert.ok(v.entries[0]?.value, 'proven present')
    assert.ok(v.height >= st.lowestHeight, `answered at ${v.height}, lowest kept ${st.lowestHeight}`)

    // It still follows the chain (the others commit on without load: empty blocks).
    const head = (await c.nodes[0]!.client.status()).height
    await waitFor(
      `node ${PRUNED} at ${head + 3}`,
      async () => (await client.status()).height >= head + 3,
      60_000,
      () => c.describe(PRUNED),
    )
    assert.is(await c.kill(PRUNED, 'SIGTERM'), 0, 'a clean stop')
    const after = await compactedBytes(data)
    console.log(
      `data folder of node ${PRUNED}: ${before} bytes at height ~${LOADED_TO} (archive), ${after} bytes after pruning below ${st.lowestHeight} (${stats.acked} txs acknowledged)`,
    )
    assert.ok(after < before * 0.6, `the folder shrinks: ${before} -> ${after} bytes`)
  } finally {
    await load?.stop()
    await c.close()
  }
})

test.run()
