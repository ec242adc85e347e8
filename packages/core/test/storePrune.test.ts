// ChainStore.prune: block history below a height goes (and the LevelDB folder shrinks), reads of it
// answer PRUNED, everything from the first retained height on is intact, across a reopen too.
import { readdirSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  ChainStore,
  type KvStore,
  isCityError,
  openLevelKv,
  openMemoryKv,
  rollbackChain,
  sha256,
  utf8,
  verifyStateProof,
} from '@cityledger/core'
import { testSeed } from '@cityledger/core/testing'
import { tempDir } from './helpers/backends.ts'
import { CHAIN_ID, genesisWrites, nextBlock } from './helpers/chainFixture.ts'

const SEED = testSeed(20261202)
const HEIGHT = 300
// Small tables so that the history lives in table files, as on a node that ran for a while.
const LEVEL = { writeBufferSize: 64 * 1024, maxFileSize: 256 * 1024 }

/** Sum of the sizes of the files in `dir`, bytes (measured with the store closed: nothing compacting). */
const folderBytes = (dir: string): number =>
  readdirSync(dir).reduce((n, f) => n + (statSync(join(dir, f), { throwIfNoEntry: false })?.size ?? 0), 0)

async function expectPruned(what: string, read: () => Promise<unknown>, height: number, first: number) {
  try {
    await read()
    assert.unreachable(`${what} of pruned height ${height} answered`)
  } catch (err) {
    assert.ok(isCityError(err, 'PRUNED'), `${what}: ${(err as Error).message}`)
    const msg = (err as Error).message
    assert.ok(msg.includes(`${height}`) && msg.includes(`${first}`), msg)
  }
}

async function chainOf(kv: KvStore, height: number, txCount?: number) {
  const store = await ChainStore.open(kv)
  await store.initGenesis({ chainId: CHAIN_ID, stateWrites: genesisWrites(SEED) })
  const txsAt: Uint8Array[][] = [[]]
  for (let h = 1; h <= height; h++) {
    const input = nextBlock(store, SEED, txCount === undefined ? {} : { txCount })
    await store.commitBlock(input)
    txsAt.push(input.block.txs.map((t) => sha256(t)))
  }
  return { store, txsAt }
}

test('prune below head - 10 on LevelDB: the folder shrinks, pruned reads are PRUNED, the rest is intact', async () => {
  const dir = tempDir('prune')
  const db = join(dir, 'db')
  try {
    const built = await chainOf(await openLevelKv(db, LEVEL), HEIGHT, 20)
    const txsAt = built.txsAt
    await built.store.close()
    const before = folderBytes(db)
    let store = await ChainStore.open(await openLevelKv(db, LEVEL), { chainId: CHAIN_ID })
    const head = store.height()
    const keepFrom = head - 10
    const headRoot = await store.stateRoot()
    const key = utf8.encode('token/balance/7')
    assert.is(store.prunedBelow, 0)

    const done = await store.prune(keepFrom)
    assert.equal([done.from, done.prunedBelow, done.blocks], [0, keepFrom, keepFrom - 1])
    await store.close()
    const after = folderBytes(db)
    store = await ChainStore.open(await openLevelKv(db, LEVEL), { chainId: CHAIN_ID })
    console.log(`  store folder: ${before} bytes before, ${after} after pruning below ${keepFrom} of ${head}`)
    // The state pages (N, about 2 MB here) stay: the block history is the rest, most of the folder.
    assert.ok(after < before * 0.75, `folder ${before} -> ${after} bytes`)
    assert.is(store.prunedBelow, keepFrom)

    for (const h of [1, 2, 150, keepFrom - 1]) {
      await expectPruned('getBlock', () => store.getBlock(h), h, keepFrom)
      await expectPruned('getCertificate', () => store.getCertificate(h), h, keepFrom)
      await expectPruned('getResults', () => store.getResults(h), h, keepFrom)
      await expectPruned('getBlockEvents', () => store.getBlockEvents(h), h, keepFrom)
      await expectPruned('stateRoot', () => store.stateRoot(h), h, keepFrom)
    }
    await expectPruned('stateRoot', () => store.stateRoot(0), 0, keepFrom)
    // The tx index of a pruned block is gone with it: the store cannot tell that tx from one never
    // committed (replays are still refused by the signer's nonce).
    const prunedTx = txsAt[5]![0]!
    assert.is(await store.getTx(prunedTx), undefined)
    assert.equal(await store.hasTxs([prunedTx]), [false])

    for (let h = keepFrom; h <= head; h++) {
      const block = await store.getBlock(h)
      assert.is(block?.header.height, h)
      assert.ok(await store.getCertificate(h))
      assert.is((await store.getResults(h))?.length, txsAt[h]!.length)
      assert.ok(Array.isArray(await store.getBlockEvents(h)))
      assert.is((await store.stateRoot(h))?.length, 32)
      assert.is((await store.getBlockByHash(block!.hash))?.header.height, h)
    }
    const kept = await store.getTx(txsAt[keepFrom]![3]!)
    assert.equal([kept?.height, kept?.index], [keepFrom, 3])
    // Above the head: still undefined, not PRUNED.
    assert.is(await store.getBlock(head + 1), undefined)
    // The state at the head: root and proofs.
    assert.equal(await store.stateRoot(), headRoot)
    const proof = await store.state.prove(key)
    assert.ok(verifyStateProof(headRoot!, key, proof.value, proof.proof))
    const older = await store.state.prove(key, head - 1)
    assert.ok(verifyStateProof(older.root, key, older.value, older.proof))
    // The tx search index covers the retained heights only.
    const page = await store.searchTxs({ service: 'token', limit: 100 })
    assert.is(page.indexedFrom, keepFrom)

    // Idempotent; an older height is a no-op; the head and the block below it are never pruned.
    await store.prune(keepFrom)
    await store.prune(keepFrom - 50)
    assert.is(store.prunedBelow, keepFrom)
    for (const bad of [head, head + 5]) {
      try {
        await store.prune(bad)
        assert.unreachable(`pruned below ${bad}`)
      } catch (err) {
        assert.ok(isCityError(err, 'PRUNE_BAD_HEIGHT'), (err as Error).message)
        assert.ok((err as Error).message.includes(`${head - 1}`), (err as Error).message)
      }
    }
    // The store goes on committing.
    await store.commitBlock(nextBlock(store, SEED, { txCount: 3 }))
    await store.close()

    const again = await ChainStore.open(await openLevelKv(db, LEVEL), { chainId: CHAIN_ID })
    assert.is(again.prunedBelow, keepFrom)
    assert.is(again.height(), head + 1)
    await expectPruned('getBlock after reopen', () => again.getBlock(keepFrom - 1), keepFrom - 1, keepFrom)
    assert.is((await again.getBlock(keepFrom))?.header.height, keepFrom)
    // Pruning on to the block below the head, after the reopen.
    await again.prune(again.height() - 1)
    assert.is(again.prunedBelow, head)
    assert.is((await again.getBlock(head))?.header.height, head)
    await again.close()
    const third = await ChainStore.open(await openLevelKv(db, LEVEL), { chainId: CHAIN_ID })
    assert.is(third.prunedBelow, head)
    await third.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('prune works in bounded batches and on the memory store; bad input names the field', async () => {
  const { store, txsAt } = await chainOf(openMemoryKv(), 700)
  const head = store.height()
  // Spans several batches (256 heights each); a commit goes in between two of them.
  const [done] = await Promise.all([store.prune(600), store.commitBlock(nextBlock(store, SEED))])
  assert.equal([done.from, done.prunedBelow, done.blocks], [0, 600, 599])
  assert.is(store.prunedBelow, 600)
  assert.is(store.height(), head + 1)
  await expectPruned('getBlock', () => store.getBlock(599), 599, 600)
  assert.is((await store.getBlock(600))?.header.height, 600)
  const last = txsAt[head]!
  if (last.length > 0) assert.is((await store.getTx(last[0]!))?.height, head)
  for (const bad of [-1, 1.5, Number.NaN, '3' as unknown as number]) {
    try {
      await store.prune(bad)
      assert.unreachable(`prune(${String(bad)})`)
    } catch (err) {
      assert.ok(isCityError(err, 'PRUNE_BAD_HEIGHT'), (err as Error).message)
      assert.ok((err as Error).message.includes('keepFrom'), (err as Error).message)
    }
  }
  // Closing ends a prune at its next batch.
  const stopped = store.prune(store.height() - 1)
  await store.close()
  try {
    await stopped
    assert.unreachable('prune went on after close')
  } catch (err) {
    assert.ok(isCityError(err, 'STORE_CLOSED'), (err as Error).message)
  }
})

test('a store that never pruned reports prunedBelow 0 and answers every height', async () => {
  const { store } = await chainOf(openMemoryKv(), 5)
  assert.is(store.prunedBelow, 0)
  assert.is((await store.getBlock(1))?.header.height, 1)
  assert.is((await store.stateRoot(0))?.length, 32)
  await store.close()
})

test('rollback stops at the retention with ROLLBACK_PRUNED, writing nothing', async () => {
  const dir = tempDir('prune-rollback')
  const db = join(dir, 'db')
  try {
    const { store } = await chainOf(await openLevelKv(db, LEVEL), 12)
    await store.prune(11)
    await store.close()
    const kv = await openLevelKv(db, LEVEL)
    assert.is((await rollbackChain(kv)).height, 11)
    try {
      await rollbackChain(kv)
      assert.unreachable('rolled back into pruned history')
    } catch (err) {
      assert.ok(isCityError(err, 'ROLLBACK_PRUNED'), (err as Error).message)
      assert.ok(/height 10\b/.test((err as Error).message), (err as Error).message)
    }
    await kv.close()
    const reopened = await ChainStore.open(await openLevelKv(db, LEVEL))
    assert.is(reopened.height(), 11)
    assert.is((await reopened.getBlock(11))?.header.height, 11)
    await reopened.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
