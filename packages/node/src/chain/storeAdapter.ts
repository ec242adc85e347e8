import { type ChainStore, ZERO_HASH, isCityError } from '@cityledger/core'
import type { LedgerStore } from './ledger.ts'

/** Core's ChainStore as the ledger wants it (the root of every committed height is kept in memory). */
export async function ledgerStore(store: ChainStore): Promise<LedgerStore> {
  const latestRoot = () => store.state.root()
  return {
    height: () => store.height(),
    async blockHash(height) {
      if (height === 0) return store.genesisHash ?? ZERO_HASH
      // A pruned height's hash is unknown here (the driver then cannot compare a replayed commit).
      return (
        await store.getBlock(height).catch((err) => {
          if (isCityError(err, 'PRUNED')) return undefined
          throw err
        })
      )?.hash
    },
    block: (height) => store.getBlock(height),
    stateRoot: () => latestRoot(),
    getState: (key) => store.state.get(key),
    hasTxs: (hashes) => store.hasTxs(hashes),
    commitBlock: (e) =>
      store.commitBlock({
        block: e.block,
        certificate: e.certificate,
        results: e.results,
        stateWrites: e.stateWrites,
        blockEvents: e.blockEvents,
      }),
  }
}
