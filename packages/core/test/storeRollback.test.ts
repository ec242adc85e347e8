import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  ChainStore,
  type KvStore,
  STORE_PREFIX,
  UNDO_PREFIX,
  isCityError,
  openMemoryKv,
  rollbackChain,
  sha256,
  toHex,
} from '@cityledger/core'
import { testSeed } from '@cityledger/core/testing'
import { countEntries } from './helpers/backends.ts'
import { CHAIN_ID, genesisWrites, nextBlock } from './helpers/chainFixture.ts'

const SEED = testSeed(20261201)
const HEIGHT = 36

/** A view of `kv` that a ChainStore may close without clearing the memory store under it. */
const keep = (kv: KvStore): KvStore => ({ ...kv, close: async () => {} })

interface Snapshot {
  root: string
  tip: string
  entries: string[]
  blockHash: string
  txHashes: Uint8Array[]
}

const entriesOf = (store: ChainStore): string[] =>
  [...store.state.entries()].map(([k, v]) => `${toHex(k)}=${toHex(v)}`).sort()

/** A chain of HEIGHT blocks with seeded writes (deletes included) and what each height looked like. */
async function buildChain(kv: KvStore): Promise<Snapshot[]> {
  const store = await ChainStore.open(keep(kv))
  await store.initGenesis({ chainId: CHAIN_ID, stateWrites: genesisWrites(SEED) })
  const seen: Snapshot[] = [
    {
      root: toHex(store.state.root()),
      tip: toHex(store.tipHash()),
      entries: entriesOf(store),
      blockHash: '',
      txHashes: [],
    },
  ]
  for (let h = 1; h <= HEIGHT; h++) {
    const input = nextBlock(store, SEED)
    await store.commitBlock(input)
    seen.push({
      root: toHex(store.state.root()),
      tip: toHex(store.tipHash()),
      entries: entriesOf(store),
      blockHash: toHex(input.block.hash),
      txHashes: input.block.txs.map((t) => sha256(t)),
    })
  }
  await store.close()
  return seen
}

test('rollback goes back one height at a time to exactly the earlier state, and the chain can grow again', async () => {
  const kv = openMemoryKv()
  const seen = await buildChain(kv)
  let deletes = 0
  for await (const _ of kv.iterate({ gte: Uint8Array.of(UNDO_PREFIX), lt: Uint8Array.of(UNDO_PREFIX + 1) }))
    deletes++
  assert.ok(deletes > 5, `the fixture deletes keys in several blocks (${deletes})`)
  const transfers = { event: { service: 'token', name: 'transfer' }, limit: 100 }
  let searchedHits = 0
  for (let h = HEIGHT; h > HEIGHT - 12; h--) {
    const open = await ChainStore.open(keep(kv), { chainId: CHAIN_ID })
    searchedHits += (await open.searchTxs({ ...transfers, fromHeight: h, toHeight: h })).txs.length
    await open.close()
    const r = await rollbackChain(keep(kv), { chainId: CHAIN_ID })
    assert.is(r.removed, h)
    assert.is(toHex(r.root), seen[h - 1]!.root)
    // Reopening checks every value against the recorded root and the latest blocks' links.
    const store = await ChainStore.open(keep(kv), { chainId: CHAIN_ID })
    assert.is(store.height(), h - 1)
    assert.is(toHex(store.state.root()), seen[h - 1]!.root)
    assert.is(toHex(store.tipHash()), seen[h - 1]!.tip)
    assert.equal(entriesOf(store), seen[h - 1]!.entries, `state after rolling back ${h}`)
    assert.is(await store.stateRoot(h), undefined)
    assert.is(await store.getBlock(h), undefined)
    assert.is(await store.getCertificate(h), undefined)
    assert.is(await store.getBlockByHash(Buffer.from(seen[h]!.blockHash, 'hex')), undefined)
    for (const t of seen[h]!.txHashes) assert.is(await store.getTx(t), undefined)
    const page = await store.searchTxs({ ...transfers, fromHeight: h })
    assert.is(page.txs.length, 0, 'no search hit at the removed height')
    // Earlier heights still answer.
    assert.ok(await store.getBlock(h - 1))
    await store.close()
  }
  // The removed blocks commit again (the fixture is a function of seed and tip) to the same roots.
  const store = await ChainStore.open(keep(kv), { chainId: CHAIN_ID })
  for (let h = HEIGHT - 11; h <= HEIGHT; h++) {
    await store.commitBlock(nextBlock(store, SEED))
    assert.is(toHex(store.state.root()), seen[h]!.root)
    assert.equal(entriesOf(store), seen[h]!.entries)
  }
  const found = await store.searchTxs({ ...transfers, fromHeight: HEIGHT - 11 })
  assert.is(found.txs.length, searchedHits, 'the search index is whole again')
  assert.ok(searchedHits > 0, 'the removed heights had search hits')
  await store.close()
})

test('rollback to genesis works, and at genesis it is refused', async () => {
  const kv = openMemoryKv()
  const store = await ChainStore.open(keep(kv))
  const genesisRoot = toHex(await store.initGenesis({ chainId: CHAIN_ID, stateWrites: genesisWrites(SEED) }))
  await store.close()
  let refused: unknown
  try {
    await rollbackChain(keep(kv))
  } catch (err) {
    refused = err
  }
  assert.ok(isCityError(refused, 'ROLLBACK_AT_GENESIS'), String(refused))
  const s2 = await ChainStore.open(keep(kv))
  await s2.commitBlock(nextBlock(s2, SEED))
  await s2.close()
  const r = await rollbackChain(keep(kv))
  assert.is(r.height, 0)
  assert.is(toHex(r.root), genesisRoot)
  const s3 = await ChainStore.open(keep(kv))
  assert.is(s3.height(), 0)
  assert.is(toHex(s3.state.root()), genesisRoot)
  await s3.close()
  try {
    await rollbackChain(openMemoryKv())
    assert.unreachable()
  } catch (err) {
    assert.ok(isCityError(err, 'ROLLBACK_NOT_INITIALIZED'))
  }
})

test('the consensus journal (J) goes in the same batch only when asked', async () => {
  const kv = openMemoryKv()
  await buildChain(kv)
  const journal = [1, 2, 3].map((n) => Uint8Array.of(STORE_PREFIX.journal, 0, 0, 0, 0, 0, 0, 0, n))
  await kv.write(journal.map((key) => ({ type: 'put' as const, key, value: Uint8Array.of(9) })))
  const count = () => countEntries(kv, STORE_PREFIX.journal)
  assert.is((await rollbackChain(keep(kv))).forgotJournal, false)
  assert.is(await count(), 3)
  assert.is((await rollbackChain(keep(kv), { forgetJournal: true })).forgotJournal, true)
  assert.is(await count(), 0)
  const store = await ChainStore.open(keep(kv))
  assert.is(store.height(), HEIGHT - 2)
  await store.close()
})

test('a failed write leaves the store as it was (one batch)', async () => {
  const kv = openMemoryKv()
  const seen = await buildChain(kv)
  const failing: KvStore = {
    ...keep(kv),
    write: async () => {
      throw new Error('disk full')
    },
  }
  try {
    await rollbackChain(failing)
    assert.unreachable()
  } catch (err) {
    assert.is((err as Error).message, 'disk full')
  }
  const store = await ChainStore.open(keep(kv))
  assert.is(store.height(), HEIGHT)
  assert.is(toHex(store.state.root()), seen[HEIGHT]!.root)
  await store.close()
})

test('a block that deleted keys without a rollback record (older store) is refused, nothing written', async () => {
  const kv = openMemoryKv()
  await buildChain(kv)
  // Roll back to the highest block with a record, then drop that record as an older store would lack it.
  let top = -1
  for await (const [k] of kv.iterate({
    gte: Uint8Array.of(UNDO_PREFIX),
    lt: Uint8Array.of(UNDO_PREFIX + 1),
    reverse: true,
    limit: 1,
  }))
    top = Number(Buffer.from(k.subarray(1)).readBigUInt64BE())
  assert.ok(top > 0)
  for (let h = HEIGHT; h > top; h--) await rollbackChain(keep(kv))
  const key = new Uint8Array(9)
  key[0] = UNDO_PREFIX
  Buffer.from(key.buffer).writeBigUInt64BE(BigInt(top), 1)
  await kv.write([{ type: 'del', key }])
  try {
    await rollbackChain(keep(kv))
    assert.unreachable()
  } catch (err) {
    assert.ok(isCityError(err, 'ROLLBACK_KEYS_UNKNOWN'), String(err))
  }
  const store = await ChainStore.open(keep(kv))
  assert.is(store.height(), top)
  await store.close()
})

test.run()
