// Test-only: `node test/fault/genesisStore.ts --home DIR --data OUT` writes the genesis state of DIR's
// genesis.json into the new data folder OUT the way `cityledger start` does (createNode opens the store
// and executes the genesis), then stops before anything starts (no network, no consensus, no journal
// entry) and exits. The cluster copies OUT into the validators' homes (ClusterOptions.shareGenesisStore),
// so a large genesis is executed once instead of once per validator; each node still opens and checks it.
import { join } from 'node:path'
import { STORE_PREFIX, openLevelKv } from '@cityledger/core'
import { createLogger, createNode, loadConfig, loadGenesis, loadKey } from '@cityledger/node'

const arg = (name: string) => {
  const at = process.argv.indexOf(name)
  return at > 0 ? process.argv[at + 1] : undefined
}
const home = arg('--home')
const dataDir = arg('--data')
if (!home || !dataDir) throw new Error('usage: genesisStore.ts --home DIR --data OUT')
const config = loadConfig(home)
const node = await createNode({
  config,
  genesis: loadGenesis(join(home, 'genesis.json')),
  key: loadKey(home),
  dataDir,
  logger: createLogger({ level: 'warn', name: config.moniker, format: config.log.format }),
})
await node.stop()
// What is copied must be the chain alone: a journal entry would be this node's votes in another home.
const kv = await openLevelKv(dataDir)
try {
  for await (const _ of kv.iterate({
    gte: Uint8Array.of(STORE_PREFIX.journal),
    lt: Uint8Array.of(STORE_PREFIX.journal + 1),
    limit: 1,
  }))
    throw new Error(`${dataDir}: the consensus journal is not empty after writing the genesis`)
} finally {
  await kv.close()
}
process.exit(0)
