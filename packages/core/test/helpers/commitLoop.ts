// Child process of storeCrash.test.ts: opens (or creates) a LevelDB chain store in the folder given as
// argv[2] and commits fixture blocks (seed argv[3]) until killed or until height argv[4]. After each
// commitBlock resolves it prints the committed height on a line of its own: the parent may kill it at
// any moment and then expects every printed height to be on disk.
import { ChainStore, openLevelKv } from '@cityledger/core'
import { CHAIN_ID, genesisWrites, nextBlock } from './chainFixture.ts'

const [dir, seedArg, maxArg] = process.argv.slice(2)
if (!dir || !seedArg) {
  process.stderr.write('usage: commitLoop.ts <dir> <seed> [maxHeight]\n')
  process.exit(2)
}
const seed = Number(seedArg)
const max = maxArg === undefined ? Number.POSITIVE_INFINITY : Number(maxArg)

const store = await ChainStore.open(await openLevelKv(dir), { chainId: CHAIN_ID })
if (store.height() < 0) await store.initGenesis({ chainId: CHAIN_ID, stateWrites: genesisWrites(seed) })
process.stdout.write(`ready ${store.height()}\n`)
while (store.height() < max) {
  await store.commitBlock(nextBlock(store, seed))
  // Writes to a pipe are synchronous on Linux: the line is out before the next commit starts.
  process.stdout.write(`${store.height()}\n`)
}
await store.close()
