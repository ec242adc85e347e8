// Every value the store accepts decodes again when the store reopens (issue #10 case 4), and the tx
// index is never overwritten (case 5). Both backends; the reopen is a new LevelDB handle for level.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  type Block,
  type BlockHeader,
  ChainStore,
  type CommitInput,
  LIMITS,
  ZERO_HASH,
  type Value,
  encode,
  encodeCertificate,
  isCityError,
  makeBlock,
  merkleRoot,
  sha256,
} from '@cityledger/core'
import { testSeed } from '@cityledger/core/testing'
import { BACKENDS, type Backend } from './helpers/backends.ts'
import { CHAIN_ID, genesisWrites, nextBlock } from './helpers/chainFixture.ts'

const SEED = testSeed(20261201)

async function fresh(be: Backend): Promise<ChainStore> {
  const store = await ChainStore.open(be.kv)
  await store.initGenesis({ chainId: CHAIN_ID, stateWrites: genesisWrites(SEED) })
  return store
}

/**
 * `makeBlock` without its field checks (it now refuses such headers itself): what a buggy or hostile
 * caller could hand the store.
 */
function rawBlock(header: BlockHeader, txs: Uint8Array[]): Block {
  const h = header
  const headerBytes = encode([
    1,
    h.chainId,
    h.height,
    h.view,
    h.time,
    h.parentHash,
    h.txRoot,
    h.prevStateRoot,
    h.proposer,
  ])
  return { header, headerBytes, hash: sha256(headerBytes), txs, bytes: encode([headerBytes, txs]) }
}

/** The commit input of a block on the tip with header fields overridden. */
function emptyBlock(
  store: ChainStore,
  over: { time?: number; view?: number; nullFill?: boolean; txs?: Uint8Array[] } = {},
): CommitInput {
  const txs = over.txs ?? []
  const block: Block = rawBlock(
    {
      chainId: CHAIN_ID,
      height: store.height() + 1,
      view: over.view ?? 0,
      time: over.time ?? 1_700_000_000_000 + store.height() * 1000,
      parentHash: store.tipHash(),
      txRoot: merkleRoot(txs.map((t) => sha256(t))),
      prevStateRoot: store.state.root(),
      proposer: over.nullFill ? ZERO_HASH : sha256(Uint8Array.of(1)),
    },
    txs,
  )
  const certificate = encodeCertificate({
    chainId: CHAIN_ID,
    view: 0,
    height: block.header.height,
    blockHash: over.nullFill ? ZERO_HASH : block.hash,
    signatures: [0, 1, 2].map((i) => ({
      validator: sha256(Uint8Array.of(i)),
      signature: new Uint8Array(64),
    })),
  })
  const results = txs.map((t) => ({ hash: sha256(t), code: null, events: [] }))
  return { block, certificate, results, stateWrites: new Map() }
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'OK'
  } catch (err) {
    if (isCityError(err)) return err.code
    throw err
  }
}

for (const factory of BACKENDS) {
  test(`${factory.name}: a null filler after a block at MAX_SAFE_INTEGER is refused and the store reopens`, async () => {
    const be = await factory.create()
    try {
      let store = await fresh(be)
      await store.commitBlock(emptyBlock(store, { time: Number.MAX_SAFE_INTEGER }))
      // time + 1 is not a safe integer: the bytes would never decode again.
      const filler = emptyBlock(store, { time: Number.MAX_SAFE_INTEGER + 1, nullFill: true })
      assert.is(await codeOf(store.commitBlock(filler)), 'STORE_BAD_BLOCK')
      assert.is(store.height(), 1)
      store = await ChainStore.open(await be.reopen(store))
      assert.is(store.height(), 1)
      assert.is((await store.getBlock(1))?.header.time, Number.MAX_SAFE_INTEGER)
      await store.commitBlock(nextBlock(store, SEED))
      assert.is(store.height(), 2)
      await store.close()
    } finally {
      await be.cleanup()
    }
  })

  test(`${factory.name}: headers and txs that would not decode are refused before anything is written`, async () => {
    const be = await factory.create()
    try {
      let store = await fresh(be)
      const bad: [string, CommitInput][] = [
        ['fractional view', emptyBlock(store, { view: 1.5 })],
        ['negative view', emptyBlock(store, { view: -1 })],
        ['fractional time', emptyBlock(store, { time: 1.5 })],
        ['tx over the size limit', emptyBlock(store, { txs: [new Uint8Array(LIMITS.maxTxBytes + 1)] })],
        [
          'more txs than a block may hold',
          emptyBlock(store, {
            txs: Array.from({ length: LIMITS.maxBlockTxs + 1 }, (_, i) => Uint8Array.of(i >> 16, i >> 8, i)),
          }),
        ],
      ]
      for (const [what, input] of bad)
        assert.is(await codeOf(store.commitBlock(input)), 'STORE_BAD_BLOCK', what)
      assert.is(store.height(), 0)
      store = await ChainStore.open(await be.reopen(store))
      assert.is(store.height(), 0)
      await store.commitBlock(nextBlock(store, SEED))
      await store.close()
    } finally {
      await be.cleanup()
    }
  })

  test(`${factory.name}: event data the runtime may emit reads back; deeper data is refused, not stored`, async () => {
    const be = await factory.create()
    try {
      let store = await fresh(be)
      const nested = (levels: number): Value => {
        let v: Value = 1
        for (let i = 0; i < levels; i++) v = [v]
        return v
      }
      const withEvent = (levels: number) => {
        const input = emptyBlock(store, { txs: [Uint8Array.of(levels)] })
        input.results[0]!.events.push({ service: 'svc', name: 'deep', data: nested(levels) })
        return input
      }
      // The runtime's sizeBound lets a value nest 25 levels; a result with such an event must read back.
      await store.commitBlock(withEvent(25))
      assert.is(await codeOf(store.commitBlock(withEvent(26))), 'STORE_BAD_RESULTS')
      const bad = emptyBlock(store, { txs: [Uint8Array.of(99)] })
      bad.results[0]!.events.push({ service: 'svc', name: 7 as unknown as string, data: null })
      assert.is(await codeOf(store.commitBlock(bad)), 'STORE_BAD_RESULTS')
      store = await ChainStore.open(await be.reopen(store))
      assert.is(store.height(), 1)
      const got = await store.getTx(sha256(Uint8Array.of(25)))
      assert.equal(got?.result.events[0]?.data, nested(25))
      await store.close()
    } finally {
      await be.cleanup()
    }
  })

  test(`${factory.name}: the tx index is never overwritten (a committed tx included again is refused)`, async () => {
    const be = await factory.create()
    try {
      let store = await fresh(be)
      const t = Uint8Array.of(1, 2, 3)
      await store.commitBlock(emptyBlock(store, { txs: [t] }))
      await store.commitBlock(emptyBlock(store))
      assert.is(
        await codeOf(store.commitBlock(emptyBlock(store, { txs: [Uint8Array.of(9), t] }))),
        'STORE_TX_COMMITTED',
      )
      assert.is(store.height(), 2)
      assert.equal(await store.hasTxs([sha256(t), sha256(Uint8Array.of(9))]), [true, false])
      // A lookup made before a commit (validation) is not trusted after it.
      const u = Uint8Array.of(4, 5, 6)
      assert.equal(await store.hasTxs([sha256(u)]), [false])
      await store.commitBlock(emptyBlock(store, { txs: [u] }))
      assert.is(await codeOf(store.commitBlock(emptyBlock(store, { txs: [u] }))), 'STORE_TX_COMMITTED')
      assert.is(store.height(), 3)
      store = await ChainStore.open(await be.reopen(store))
      const found = await store.getTx(sha256(t))
      assert.is(found?.height, 1)
      assert.is(found?.index, 0)
      await store.close()
    } finally {
      await be.cleanup()
    }
  })
}

test('makeBlock refuses a header that would not decode', () => {
  const header: BlockHeader = {
    chainId: CHAIN_ID,
    height: 1,
    view: 0,
    time: Number.MAX_SAFE_INTEGER + 1,
    parentHash: ZERO_HASH,
    txRoot: merkleRoot([]),
    prevStateRoot: ZERO_HASH,
    proposer: ZERO_HASH,
  }
  assert.throws(() => makeBlock(header, []), /header.time/)
  assert.throws(() => makeBlock({ ...header, time: 1, view: 0.5 }, []), /header.view/)
  assert.throws(() => makeBlock({ ...header, time: 1, proposer: new Uint8Array(31) }, []), /header.proposer/)
  assert.is(makeBlock({ ...header, time: Number.MAX_SAFE_INTEGER }, []).header.time, Number.MAX_SAFE_INTEGER)
})

test.run()
