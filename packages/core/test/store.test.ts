import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  ChainStore,
  type CommitInput,
  type KvStore,
  ZERO_HASH,
  decodeCertificate,
  encodeCertificate,
  isCityError,
  makeBlock,
  openMemoryKv,
  StoreError,
  sha256,
  toHex,
  verifyStateProof,
} from '@cityledger/core'
import { testSeed } from '@cityledger/core/testing'
import { BACKENDS, type Backend } from './helpers/backends.ts'
import { CHAIN_ID, genesisWrites, nextBlock, stateKey, writesFor } from './helpers/chainFixture.ts'

const SEED = testSeed(20261126)
const hex = toHex

async function codeOf(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn()
  } catch (err) {
    if (isCityError(err)) return err.code
    throw err
  }
  return 'OK'
}

async function dump(kv: KvStore): Promise<string> {
  const out: string[] = []
  for await (const [k, v] of kv.iterate({})) out.push(`${hex(k)}=${hex(v)}`)
  return out.join('\n')
}

async function withChain(name: string, fn: (be: Backend, store: ChainStore) => Promise<void>): Promise<void> {
  const be = await BACKENDS.find((x) => x.name === name)!.create()
  try {
    const store = await ChainStore.open(be.kv)
    await fn(be, store)
  } finally {
    await be.cleanup()
  }
}

/** A copy of `input` whose block header is changed by `edit` (and re-hashed, with a matching certificate). */
function withHeader(input: CommitInput, edit: (h: CommitInput['block']['header']) => void): CommitInput {
  const header = { ...input.block.header }
  edit(header)
  const block = makeBlock(header, input.block.txs)
  const c = decodeCertificate(input.certificate)
  return {
    ...input,
    block,
    certificate: encodeCertificate({ ...c, height: header.height, blockHash: block.hash }),
  }
}

for (const { name } of BACKENDS) {
  test(`${name}: genesis, then blocks; every part reads back (seed ${SEED})`, () =>
    withChain(name, async (_be, store) => {
      assert.equal(store.height(), -1)
      assert.equal(await codeOf(() => store.commitBlock(nextBlock(store, SEED))), 'STORE_NOT_INITIALIZED')
      const genesisRoot = await store.initGenesis({ chainId: CHAIN_ID, stateWrites: genesisWrites(SEED) })
      assert.equal(store.height(), 0)
      assert.equal(store.chainId, CHAIN_ID)
      assert.equal(hex(store.tipHash()), hex(ZERO_HASH))
      assert.equal(hex((await store.stateRoot(0))!), hex(genesisRoot))
      assert.equal(
        await codeOf(() => store.initGenesis({ chainId: CHAIN_ID, stateWrites: new Map() })),
        'STORE_GENESIS_EXISTS',
      )

      const committed: { input: CommitInput; root: Uint8Array }[] = []
      for (let h = 1; h <= 8; h++) {
        const input = nextBlock(store, SEED)
        const root = await store.commitBlock(input)
        assert.equal(store.height(), h)
        assert.equal(hex(store.state.root()), hex(root))
        assert.equal(hex(store.tipHash()), hex(input.block.hash))
        committed.push({ input, root })
      }
      assert.equal(await store.getBlock(0), undefined)
      assert.equal(await store.getBlock(9), undefined)
      for (const [i, { input, root }] of committed.entries()) {
        const h = i + 1
        const block = (await store.getBlock(h))!
        assert.equal(hex(block.bytes), hex(input.block.bytes), `block ${h}`)
        assert.equal(block.header.height, h)
        assert.equal(hex((await store.getBlockByHash(input.block.hash))!.hash), hex(input.block.hash))
        assert.equal(hex((await store.getCertificate(h))!), hex(input.certificate))
        assert.equal(hex((await store.stateRoot(h))!), hex(root))
        const results = (await store.getResults(h))!
        assert.equal(results.length, input.block.txs.length)
        assert.equal(await store.getBlockEvents(h), input.blockEvents)
        for (const [index, tx] of input.block.txs.entries()) {
          const stored = (await store.getTx(sha256(tx)))!
          assert.equal({ height: stored.height, index: stored.index }, { height: h, index })
          assert.equal(stored.result, input.results[index])
          assert.equal(results[index], input.results[index])
        }
      }
      assert.equal(await store.getTx(new Uint8Array(32)), undefined)
      assert.equal(await store.getBlockByHash(new Uint8Array(32).fill(1)), undefined)
      assert.equal(await store.getCertificate(99), undefined)

      // Latest values and proofs against every stored root.
      const key = Buffer.from(stateKey(10), 'hex')
      for (let h = 0; h <= 8; h++) {
        const { proof, value, root } = await store.state.prove(key, h)
        assert.equal(hex(root), hex((await store.stateRoot(h))!))
        assert.ok(verifyStateProof(root, key, value, proof), `proof at height ${h}`)
      }
    }))

  test(`${name}: blocks that do not extend the chain are refused with their code and write nothing`, () =>
    withChain(name, async (be, store) => {
      await store.initGenesis({ chainId: CHAIN_ID, stateWrites: genesisWrites(SEED) })
      await store.commitBlock(nextBlock(store, SEED))
      await store.commitBlock(nextBlock(store, SEED))
      const good = nextBlock(store, SEED, { txCount: 5 })
      const before = await dump(be.kv)
      const rootBefore = hex(store.state.root())
      const cases: [string, CommitInput][] = [
        ['STORE_BAD_HEIGHT', withHeader(good, (h) => (h.height = 4))],
        ['STORE_BAD_HEIGHT', withHeader(good, (h) => (h.height = 2))],
        ['STORE_BAD_PARENT', withHeader(good, (h) => (h.parentHash = new Uint8Array(32).fill(7)))],
        ['STORE_BAD_STATE_ROOT', withHeader(good, (h) => (h.prevStateRoot = new Uint8Array(32)))],
        ['STORE_WRONG_CHAIN', withHeader(good, (h) => (h.chainId = 'other-chain'))],
        ['STORE_BAD_BLOCK', { ...good, block: { ...good.block, hash: new Uint8Array(32) } }],
        [
          'STORE_BAD_BLOCK',
          { ...good, block: { ...good.block, txs: [...good.block.txs, new Uint8Array([1])] } },
        ],
        ['STORE_BAD_CERTIFICATE', { ...good, certificate: new Uint8Array([1, 2, 3]) }],
        ['STORE_BAD_CERTIFICATE', { ...good, certificate: nextBlockCertFor(good, 2) }],
        ['STORE_BAD_CERTIFICATE', { ...good, certificate: certWithChain(good, 'other-chain') }],
        ['STORE_BAD_CERTIFICATE', { ...good, certificate: certWithChain(good, `${CHAIN_ID}--e0`) }],
        ['STORE_BAD_CERTIFICATE', { ...good, certificate: certWithChain(good, `${CHAIN_ID}--x1`) }],
        ['STORE_BAD_RESULTS', { ...good, results: good.results.slice(1) }],
        [
          'STORE_BAD_RESULTS',
          { ...good, results: [good.results[1]!, good.results[0]!, ...good.results.slice(2)] },
        ],
        ['STORE_BAD_RESULTS', { ...good, results: good.results.map((r) => ({ ...r, code: '' })) }],
        [
          'STORE_BAD_RESULTS',
          { ...good, results: [...good.results, { hash: new Uint8Array(32), code: null, events: [] }] },
        ],
        [
          'STORE_BAD_RESULTS',
          {
            ...good,
            results: good.results.map((r) => ({
              ...r,
              events: [{ service: 's', name: 'n', data: 1.5 as never }],
            })),
          },
        ],
        [
          'STORE_BAD_RESULTS',
          { ...good, blockEvents: [{ service: 's', name: 'n', data: undefined as never }] },
        ],
        ['STORE_BAD_INPUT', { ...good, stateWrites: new Map([['NOT HEX', new Uint8Array(1)]]) }],
        ['STORE_BAD_INPUT', { ...good, stateWrites: new Map([['aa', 5 as never]]) }],
        ['STORE_BAD_INPUT', null as never],
      ]
      for (const [code, input] of cases) {
        assert.equal(await codeOf(() => store.commitBlock(input)), code, `expected ${code}`)
        assert.equal(store.height(), 2)
        assert.equal(hex(store.state.root()), rootBefore)
      }
      assert.equal(await dump(be.kv), before, 'a refused block leaves no trace')
      await store.commitBlock(good)
      assert.equal(store.height(), 3)
      assert.equal(
        await codeOf(() => store.commitBlock(good)),
        'STORE_BAD_HEIGHT',
        'replaying a committed block',
      )
    }))

  test(`${name}: commits issued together are applied one after another`, () =>
    withChain(name, async (_be, store) => {
      // Build blocks 1..3 on a scratch chain, then hand them to the store without waiting in between.
      const scratch = await ChainStore.open(openMemoryKv())
      await scratch.initGenesis({ chainId: CHAIN_ID, stateWrites: genesisWrites(SEED) })
      const inputs: CommitInput[] = []
      for (let h = 1; h <= 3; h++) {
        inputs.push(nextBlock(scratch, SEED))
        await scratch.commitBlock(inputs.at(-1)!)
      }
      await store.initGenesis({ chainId: CHAIN_ID, stateWrites: genesisWrites(SEED) })
      const roots = await Promise.all([
        ...inputs.map((i) => store.commitBlock(i)),
        store.commitBlock(inputs[0]!).catch((e) => e.code),
      ])
      assert.equal(roots[3], 'STORE_BAD_HEIGHT')
      assert.equal(hex(roots[2]), hex(scratch.state.root()))
      assert.equal(store.height(), 3)
      await scratch.close()
    }))

  test(`${name}: reopening resumes at the same height, tip and root; another chain id is refused`, () =>
    withChain(name, async (be, store) => {
      await store.initGenesis({ chainId: CHAIN_ID, stateWrites: genesisWrites(SEED) })
      for (let h = 1; h <= 5; h++) await store.commitBlock(nextBlock(store, SEED))
      const root = hex(store.state.root())
      const tip = hex(store.tipHash())
      const kv = await be.reopen(store)
      assert.equal(await codeOf(() => ChainStore.open(kv, { chainId: 'someone-else' })), 'STORE_WRONG_CHAIN')
      const again = await ChainStore.open(kv, { chainId: CHAIN_ID })
      assert.equal(again.height(), 5)
      assert.equal(hex(again.state.root()), root)
      assert.equal(hex(again.tipHash()), tip)
      assert.equal(again.state.size, store.state.size)
      for (let n = 0; n < 300; n++) {
        const key = Buffer.from(stateKey(n), 'hex')
        assert.equal(
          again.state.get(key) && hex(again.state.get(key)!),
          store.state.get(key) && hex(store.state.get(key)!),
        )
      }
      // It carries on from there.
      const input = nextBlock(again, SEED)
      assert.equal(hex(input.block.header.parentHash), tip)
      await again.commitBlock(input)
      assert.equal(again.height(), 6)
      await again.close()
      assert.equal(await codeOf(() => again.commitBlock(input)), 'STORE_CLOSED')
    }))

  test(`${name}: genesis input is checked`, () =>
    withChain(name, async (be, store) => {
      const forOther = await ChainStore.open(be.kv, { chainId: 'other-chain' })
      assert.equal(
        await codeOf(() => forOther.initGenesis({ chainId: CHAIN_ID, stateWrites: new Map() })),
        'STORE_WRONG_CHAIN',
      )
      assert.equal(
        await codeOf(() => store.initGenesis({ chainId: 'Bad Id', stateWrites: new Map() })),
        'STORE_BAD_INPUT',
      )
      assert.equal(
        await codeOf(() =>
          store.initGenesis({ chainId: CHAIN_ID, genesisHash: new Uint8Array(3), stateWrites: new Map() }),
        ),
        'STORE_BAD_INPUT',
      )
      assert.equal(
        await codeOf(() => store.initGenesis({ chainId: CHAIN_ID, stateWrites: new Map([['x', null]]) })),
        'STORE_BAD_INPUT',
      )
      assert.equal(store.height(), -1)
      const genesisHash = new Uint8Array(32).fill(3)
      await store.initGenesis({ chainId: CHAIN_ID, genesisHash, stateWrites: writesFor(0, SEED, 30) })
      const input = nextBlock(store, SEED)
      assert.equal(
        hex(input.block.header.parentHash),
        hex(genesisHash),
        'block 1 names the genesis hash as parent',
      )
      await store.commitBlock(input)
    }))
}

test('a failed disk write leaves the store where it was, and the same block commits on retry', async () => {
  const inner = openMemoryKv()
  let failNext = false
  const flaky: KvStore = {
    get: (k) => inner.get(k),
    getMany: (ks) => inner.getMany(ks),
    iterate: (r) => inner.iterate(r),
    close: () => inner.close(),
    write: async (ops, o) => {
      if (failNext) {
        failNext = false
        throw new StoreError('STORE_IO', 'disk full (simulated)')
      }
      return inner.write(ops, o)
    },
  }
  const store = await ChainStore.open(flaky)
  await store.initGenesis({ chainId: CHAIN_ID, stateWrites: genesisWrites(SEED) })
  await store.commitBlock(nextBlock(store, SEED))
  const input = nextBlock(store, SEED, { txCount: 4 })
  const root = hex(store.state.root())
  const before = await dump(inner)
  failNext = true
  assert.equal(await codeOf(() => store.commitBlock(input)), 'STORE_IO')
  assert.equal(store.height(), 1)
  assert.equal(hex(store.state.root()), root)
  assert.equal(hex(store.tipHash()), hex(input.block.header.parentHash))
  assert.equal(await dump(inner), before)
  const key = Buffer.from([...input.stateWrites.keys()][0] ?? stateKey(1), 'hex')
  assert.equal(
    store.state.get(key) && hex(store.state.get(key)!),
    (await ChainStore.open(inner)).state.get(key) && hex((await ChainStore.open(inner)).state.get(key)!),
  )
  await store.commitBlock(input)
  assert.equal(store.height(), 2)
  const reopened = await ChainStore.open(inner)
  assert.equal(hex(reopened.state.root()), hex(store.state.root()))
})

test("a certificate of a later validator epoch (`<chainId>--e<N>`, signed by that epoch's set) is stored", async () => {
  const store = await ChainStore.open(openMemoryKv())
  await store.initGenesis({ chainId: CHAIN_ID, stateWrites: genesisWrites(SEED) })
  const input = nextBlock(store, SEED)
  const certificate = certWithChain(input, `${CHAIN_ID}--e3`)
  await store.commitBlock({ ...input, certificate })
  assert.equal(await store.getCertificate(1), certificate)
  await store.close()
})

function certWithChain(input: CommitInput, chainId: string): Uint8Array {
  return encodeCertificate({ ...decodeCertificate(input.certificate), chainId })
}

function nextBlockCertFor(input: CommitInput, height: number): Uint8Array {
  const c = decodeCertificate(input.certificate)
  return encodeCertificate({ ...c, height })
}

test.run()
