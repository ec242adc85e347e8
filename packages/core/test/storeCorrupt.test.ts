import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ChainStore, type KvStore, STORE_PREFIX, isCityError, sha256, utf8 } from '@cityledger/core'
import { testSeed } from '@cityledger/core/testing'
import { BACKENDS } from './helpers/backends.ts'
import { CHAIN_ID, genesisWrites, nextBlock } from './helpers/chainFixture.ts'

const SEED = testSeed(20261127)
const TIP = 4

const u64 = (n: number) => {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setBigUint64(0, BigInt(n))
  return b
}
const at = (prefix: number, height: number) => Uint8Array.of(prefix, ...u64(height))
const meta = (name: string) => Uint8Array.of(STORE_PREFIX.meta, ...utf8.encode(name))

/**
 * Builds a chain of TIP blocks, damages it with `mutate` (given the open KvStore and the tip block's
 * hash), reopens, and reports the error code and message (or OK).
 */
async function openAfter(
  backend: string,
  mutate: (kv: KvStore, tipHash: Uint8Array) => Promise<void>,
): Promise<string> {
  const be = await BACKENDS.find((x) => x.name === backend)!.create()
  try {
    const store = await ChainStore.open(be.kv)
    await store.initGenesis({ chainId: CHAIN_ID, stateWrites: genesisWrites(SEED) })
    for (let h = 1; h <= TIP; h++) await store.commitBlock(nextBlock(store, SEED, { txCount: 3 }))
    const tipHash = store.tipHash()
    let kv = await be.reopen(store)
    await mutate(kv, tipHash)
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

const cases: [string, (kv: KvStore, tipHash: Uint8Array) => Promise<void>, RegExp][] = [
  ['untouched', async () => {}, /^OK$/],
  [
    'metadata height truncated',
    (kv) => put(kv, meta('height'), new Uint8Array(5)),
    /STORE_CORRUPT.*metadata height.*5 bytes/,
  ],
  [
    'metadata height past the blocks',
    (kv) => put(kv, meta('height'), u64(TIP + 1)),
    /STORE_CORRUPT.*block index.*last stored block is 4, metadata height is 5/,
  ],
  [
    'metadata height behind the blocks',
    (kv) => put(kv, meta('height'), u64(TIP - 1)),
    /STORE_CORRUPT.*block index/,
  ],
  ['metadata height missing', (kv) => del(kv, meta('height')), /STORE_CORRUPT.*metadata height.*missing/],
  ['unknown format', (kv) => put(kv, meta('format'), Uint8Array.of(9)), /STORE_CORRUPT.*metadata format/],
  [
    'chain id not UTF-8',
    (kv) => put(kv, meta('chainId'), Uint8Array.of(0xff, 0xfe)),
    /STORE_CORRUPT.*metadata chainId/,
  ],
  [
    'genesis hash truncated',
    (kv) => put(kv, meta('genesisHash'), new Uint8Array(31)),
    /STORE_CORRUPT.*genesisHash/,
  ],
  [
    'tip block missing',
    (kv) => del(kv, at(STORE_PREFIX.block, TIP)),
    /STORE_CORRUPT.*block index.*last stored block is 3/,
  ],
  [
    'tip block truncated',
    async (kv) => {
      const b = (await kv.get(at(STORE_PREFIX.block, TIP)))!
      await put(kv, at(STORE_PREFIX.block, TIP), b.subarray(0, b.length - 7))
    },
    /STORE_CORRUPT.*block at height 4.*does not decode/,
  ],
  [
    'tip block replaced by another height',
    async (kv) => {
      await put(kv, at(STORE_PREFIX.block, TIP), (await kv.get(at(STORE_PREFIX.block, 2)))!)
    },
    /STORE_CORRUPT.*block at height 4.*holds block 2/,
  ],
  [
    'tip certificate missing',
    (kv) => del(kv, at(STORE_PREFIX.certificate, TIP)),
    /STORE_CORRUPT.*certificate at height 4/,
  ],
  [
    'tip hash index missing',
    (kv, tip) => del(kv, Uint8Array.of(STORE_PREFIX.blockHash, ...tip)),
    /STORE_CORRUPT.*hash index of block 4/,
  ],
  [
    'tip result missing',
    (kv) => del(kv, Uint8Array.of(STORE_PREFIX.result, ...u64(TIP), 0, 0, 0, 2)),
    /STORE_CORRUPT.*results of block 4/,
  ],
  [
    'tip result garbage',
    (kv) => put(kv, Uint8Array.of(STORE_PREFIX.result, ...u64(TIP), 0, 0, 0, 2), Uint8Array.of(0xc1)),
    /STORE_CORRUPT.*result 2 of block 4/,
  ],
  [
    'state value changed',
    (kv) =>
      put(kv, Uint8Array.of(STORE_PREFIX.stateValue, ...utf8.encode('token/balance/0')), Uint8Array.of(1)),
    /STORE_CORRUPT.*state at height 4.*stored values hash to/,
  ],
  [
    'state value added',
    (kv) => put(kv, Uint8Array.of(STORE_PREFIX.stateValue, 1, 2, 3), Uint8Array.of(1)),
    /STORE_CORRUPT.*state at height 4/,
  ],
  [
    'state root truncated',
    (kv) => put(kv, at(STORE_PREFIX.stateRoot, TIP), new Uint8Array(16)),
    /STORE_CORRUPT.*state root at height 4.*16 bytes/,
  ],
  [
    'state root of the tip missing',
    (kv) => del(kv, at(STORE_PREFIX.stateRoot, TIP)),
    /STORE_CORRUPT.*state.*height 3.*chain height is 4/,
  ],
  [
    'state root beyond the tip',
    (kv) => put(kv, at(STORE_PREFIX.stateRoot, TIP + 1), sha256(new Uint8Array(1))),
    /STORE_CORRUPT/,
  ],
  [
    'metadata gone, data left',
    async (kv) => {
      await kv.write(
        ['format', 'chainId', 'genesisHash', 'height'].map((n) => ({ type: 'del' as const, key: meta(n) })),
      )
    },
    /STORE_CORRUPT.*metadata.*missing, but the store holds data/,
  ],
]

for (const { name } of BACKENDS) {
  for (const [what, mutate, expected] of cases) {
    test(`${name}: ${what} -> ${expected.source.split('.*')[0]}`, async () => {
      const result = await openAfter(name, mutate)
      assert.match(result, expected)
    })
  }
}

test.run()
