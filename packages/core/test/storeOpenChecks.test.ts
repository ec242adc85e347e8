// ChainStore.open checks its last CHECKED_AT_OPEN blocks, not only the tip (issue #11 point 6): values
// that decode but disagree (a result of another tx, a tx index pointing elsewhere, a broken parent
// link, a certificate for another block) are refused at start instead of surfacing as a 500 later.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ChainStore, type KvStore, STORE_PREFIX, encodeTxResult, isCityError, sha256 } from '@cityledger/core'
import { testSeed } from '@cityledger/core/testing'
import { BACKENDS } from './helpers/backends.ts'
import { CHAIN_ID, genesisWrites, nextBlock } from './helpers/chainFixture.ts'

const SEED = testSeed(20261203)
const TIP = 20
const DAMAGED = TIP - 5 // below the tip, within CHECKED_AT_OPEN; results 0 and 2 are the first and last

const u64 = (n: number) => {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setBigUint64(0, BigInt(n))
  return b
}
const at = (prefix: number, height: number) => Uint8Array.of(prefix, ...u64(height))
const resultAt = (height: number, i: number) => Uint8Array.of(STORE_PREFIX.result, ...u64(height), 0, 0, 0, i)

async function openAfter(backend: string, mutate: (kv: KvStore) => Promise<void>): Promise<string> {
  const be = await BACKENDS.find((x) => x.name === backend)!.create()
  try {
    const store = await ChainStore.open(be.kv)
    await store.initGenesis({ chainId: CHAIN_ID, stateWrites: genesisWrites(SEED) })
    for (let h = 1; h <= TIP; h++) await store.commitBlock(nextBlock(store, SEED, { txCount: 3 }))
    let kv = await be.reopen(store)
    await mutate(kv)
    kv = await be.reopen(kv)
    try {
      await ChainStore.open(kv)
      return 'OK'
    } catch (err) {
      if (isCityError(err)) return `${err.code}: ${err.message}`
      throw err
    }
  } finally {
    await be.cleanup()
  }
}

const put = (kv: KvStore, key: Uint8Array, value: Uint8Array) => kv.write([{ type: 'put', key, value }])
const del = (kv: KvStore, key: Uint8Array) => kv.write([{ type: 'del', key }])

const cases: [string, (kv: KvStore) => Promise<void>, RegExp][] = [
  ['untouched', async () => {}, /^OK$/],
  [
    'a result replaced by the result of another tx',
    async (kv) => put(kv, resultAt(DAMAGED, 2), (await kv.get(resultAt(DAMAGED, 0)))!),
    new RegExp(`STORE_CORRUPT.*result 2 of block ${DAMAGED}.*another tx`),
  ],
  [
    'a result missing',
    (kv) => del(kv, resultAt(DAMAGED, 0)),
    new RegExp(`STORE_CORRUPT.*results of block ${DAMAGED}`),
  ],
  [
    'a result that does not decode',
    (kv) => put(kv, resultAt(DAMAGED, 0), Uint8Array.of(0x92, 0x01)),
    new RegExp(`STORE_CORRUPT.*result 0 of block ${DAMAGED}.*does not decode`),
  ],
  [
    'a tx index entry missing',
    async (kv) => {
      const block = (await kv.get(at(STORE_PREFIX.block, DAMAGED)))!
      const { decodeBlock } = await import('@cityledger/core')
      await del(kv, Uint8Array.of(STORE_PREFIX.txIndex, ...sha256(decodeBlock(block).txs[0]!)))
    },
    new RegExp(`STORE_CORRUPT.*tx index of block ${DAMAGED}`),
  ],
  [
    'a block replaced by its neighbour (broken parent link)',
    async (kv) =>
      put(kv, at(STORE_PREFIX.block, DAMAGED), (await kv.get(at(STORE_PREFIX.block, DAMAGED - 1)))!),
    new RegExp(`STORE_CORRUPT.*block at height ${DAMAGED}.*holds block ${DAMAGED - 1}`),
  ],
  [
    'a certificate of another block',
    async (kv) =>
      put(
        kv,
        at(STORE_PREFIX.certificate, DAMAGED),
        (await kv.get(at(STORE_PREFIX.certificate, DAMAGED - 1)))!,
      ),
    new RegExp(`STORE_CORRUPT.*certificate at height ${DAMAGED}`),
  ],
  [
    'a certificate that does not decode',
    (kv) => put(kv, at(STORE_PREFIX.certificate, DAMAGED), Uint8Array.of(0xc1)),
    new RegExp(`STORE_CORRUPT.*certificate at height ${DAMAGED}`),
  ],
  [
    'an extra result',
    (kv) =>
      put(kv, resultAt(DAMAGED, 3), encodeTxResult({ hash: new Uint8Array(32), code: null, events: [] })),
    new RegExp(`STORE_CORRUPT.*results of block ${DAMAGED}`),
  ],
]

for (const { name } of BACKENDS) {
  for (const [what, mutate, expected] of cases) {
    test(`${name}: ${what} below the tip`, async () => {
      const got = await openAfter(name, mutate)
      assert.ok(expected.test(got), `got: ${got}`)
    })
  }
}

test.run()
