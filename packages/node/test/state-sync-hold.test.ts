// A pruning node that serves state sync keeps the height it offered while the joiner fetches it
// (offerHolds.ts): the source below commits blocks and prunes (store.retainBlocks 2, a state sweep after
// every prune) between the joiner's requests. Held, the sync finishes; not held, the offered height's
// pages are swept mid-sync and the only peer is dropped (the failure before the hold). Deterministic.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  type ChainStore,
  type KvStore,
  decodeStrict,
  openMemoryKv,
  referenceVerdict,
  toHex,
  utf8,
} from '@cityledger/core'
import { createLogger } from '../src/log/index.ts'
import { OfferHolds } from '../src/node/offerHolds.ts'
import { BlockRetention } from '../src/node/retention.ts'
import { runStateSync } from '../src/node/stateSync.ts'
import { serveStateSync } from '../src/node/stateSyncServe.ts'
import { A, K, addBlock, changedSetChain, hexKey, pub } from './changedSetChain.ts'

const chainId = 'hold-test'
const silent = createLogger({ level: 'silent' })
const keep = (kv: KvStore): KvStore => ({ ...kv, close: async () => {} })

/** One more block rewriting `k/0` and adding a key, certified by the set of its height. */
const nextBlock = (store: ChainStore) =>
  addBlock(
    store,
    chainId,
    new Map([
      [hexKey('k/0'), utf8.encode(`v${store.height() + 1}`)],
      [hexKey(`k/${store.height() + 1}`), utf8.encode(`h${store.height() + 1}`)],
    ]),
  )

async function syncWhilePruning(held: boolean) {
  const kv = openMemoryKv()
  const { store } = await changedSetChain(keep(kv), { chainId, blocks: 24 })
  const holds = new OfferHolds()
  const retention = new BlockRetention({
    store,
    retainBlocks: 2,
    logger: silent,
    every: 1,
    sweepEvery: 1,
    ...(held ? { holdFrom: () => holds.lowest() } : {}),
  })
  let offered = 0
  const penalties: string[] = []
  const result = await runStateSync(
    {
      chainId,
      genesisHash: new Uint8Array(32),
      genesisValidators: pub(A),
      checkpointInterval: K,
      verify: referenceVerdict,
      logger: silent,
      batch: 1,
      parallel: 1,
      minRequestIntervalMs: 0,
      net: {
        peers: () => ['source'],
        penalize: (peer, reason) => penalties.push(`${peer} ${reason}`),
        async request(_peer, bytes) {
          const kind = (decodeStrict(bytes, { maxBytes: 1 << 20, maxDepth: 2 }) as string[])[0]
          if (kind === 'pages') {
            // The chain moves on between two page requests, and the source prunes.
            for (let i = 0; i < 3; i++) await nextBlock(store)
            retention.committed(store.height())
            await retention.running
          }
          const res = await serveStateSync({ store, kv, holds }, bytes)
          if (kind === 'offer')
            offered = (decodeStrict(res, { maxBytes: res.length, maxDepth: 2 }) as number[])[0]!
          return res
        },
      },
    },
    openMemoryKv(),
  ).catch((err: Error) => err)
  return { result, offered, store, penalties }
}

test('a held offer survives pruning while the joiner fetches it; unheld, its pages are swept and the sync fails', async () => {
  const ok = await syncWhilePruning(true)
  assert.ok(!(ok.result instanceof Error), String(ok.result))
  if (ok.result instanceof Error) return
  assert.is(ok.result.height, ok.offered)
  assert.is(ok.result.stateRoot, toHex((await ok.store.stateRoot(ok.offered))!))
  assert.ok(ok.store.height() > ok.offered + 20, 'the source went on committing meanwhile')

  const lost = await syncWhilePruning(false)
  assert.instance(lost.result, Error)
  assert.match(String(lost.result), /every peer serving height \d+ was dropped/)
  // The peer said it no longer stores the pages: dropped, not penalised (it did not lie).
  assert.match(String(lost.result), /not-stored: page [0-9a-f]{64}/)
  assert.equal(lost.penalties, [])
})

test('an offered height is held for the hold time, then forgotten; the lowest held one counts', () => {
  let now = 0
  const holds = new OfferHolds({ now: () => now, holdMs: 1000 })
  assert.is(holds.lowest(), undefined)
  holds.offered(30)
  now = 500
  holds.offered(35)
  assert.is(holds.lowest(), 30)
  now = 1200
  assert.is(holds.lowest(), 35, '30 expired')
  now = 1600
  assert.is(holds.lowest(), undefined)
})

test.run()
