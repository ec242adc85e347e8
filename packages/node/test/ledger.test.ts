// Block-content rules of the ledger (issue #10, cases 4 to 6): block time, re-included txs and nonces.
// One ledger over a real ChainStore (memory backend) and the real runtime; the wall clock is a variable.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  type Block,
  ChainStore,
  type KeyPair,
  type Tx,
  VerifiedCache,
  createPureVerifier,
  createRuntime,
  defineService,
  encodeCertificate,
  generateKeyPair,
  makeBlock,
  merkleRoot,
  openMemoryKv,
  s,
  signTx,
} from '@cityledger/core'
import { seedFor } from '@cityledger/core/testing'
import { BLOCK_TIME, Ledger } from '../src/chain/index.ts'
import { ledgerStore } from '../src/chain/storeAdapter.ts'

const CHAIN = 'ledger-test'
const GENESIS_TIME = 1_700_000_000_000
const validators = [0, 1, 2, 3].map((i) => generateKeyPair(seedFor(`ledger-validator-${i}`)))
const alice = generateKeyPair(seedFor('ledger-alice'))
const bob = generateKeyPair(seedFor('ledger-bob'))

const counter = defineService({
  name: 'counter',
  version: '1.0.0',
  methods: {
    add: {
      args: s.object({ by: s.uint({ min: 1, max: 100 }) }),
      handler(ctx, { by }) {
        ctx.state.set('n', (ctx.state.get<number>('n') ?? 0) + by)
      },
    },
  },
})

async function setup() {
  const runtime = createRuntime({ services: [counter] })
  const store = await ChainStore.open(openMemoryKv())
  const g = runtime.genesis({ get: () => undefined }, {}, GENESIS_TIME)
  await store.initGenesis({ chainId: CHAIN, stateWrites: g.writes })
  const clock = { now: GENESIS_TIME + 60_000 }
  const ledger = await Ledger.open({
    chainId: CHAIN,
    validators: validators.map((v) => v.publicKey),
    store: await ledgerStore(store),
    runtime,
    verifier: createPureVerifier(),
    verifiedCache: new VerifiedCache(),
    genesisTime: GENESIS_TIME,
    maxBlockTxs: 1000,
    maxBlockBytes: 1 << 20,
    wallClock: () => clock.now,
  })
  return { ledger, store, clock }
}

const tx = (key: KeyPair, nonce: number, by = 1, expiry = 0): Tx =>
  signTx(
    { chainId: CHAIN, service: 'counter', method: 'add', args: { by }, signer: key.publicKey, nonce, expiry },
    key.secretKey,
  )

/** A proposal on the head by the primary of view 0, with any header field overridden. */
function proposal(ledger: Ledger, txs: Tx[], over: { time?: number } = {}): Block {
  const h = ledger.head
  return makeBlock(
    {
      chainId: CHAIN,
      height: h.height + 1,
      view: 0,
      time: over.time ?? h.time + 1000,
      parentHash: h.hash,
      txRoot: merkleRoot(txs.map((t) => t.hash)),
      prevStateRoot: h.stateRoot,
      proposer: validators[0]!.publicKey,
    },
    txs.map((t) => t.bytes),
  )
}

const certificate = (block: Block) =>
  encodeCertificate({
    chainId: CHAIN,
    view: block.header.view,
    height: block.header.height,
    blockHash: block.hash,
    signatures: [0, 1, 2].map((i) => ({
      validator: validators[i]!.publicKey,
      signature: new Uint8Array(64),
    })),
  })

async function commit(ledger: Ledger, block: Block) {
  const v = await ledger.validate(block.bytes, undefined, { certified: true })
  if (!v.ok) throw new Error(`${v.code}: ${v.message}`)
  return ledger.commit(v.block, v.txs, certificate(v.block))
}

async function codeOf(ledger: Ledger, block: Block, certified = false): Promise<string> {
  const v = await ledger.validate(block.bytes, undefined, { certified })
  return v.ok ? 'OK' : v.code
}

// --- block time -----------------------------------------------------------------------------------

test('a proposal timed more than the drift bound ahead of the local clock is invalid', async () => {
  const { ledger, clock } = await setup()
  const drift = BLOCK_TIME.maxDriftMs
  assert.is(await codeOf(ledger, proposal(ledger, [], { time: clock.now + drift })), 'OK')
  assert.is(await codeOf(ledger, proposal(ledger, [], { time: clock.now + drift + 1 })), 'BAD_TIME')
  assert.is(await codeOf(ledger, proposal(ledger, [], { time: Number.MAX_SAFE_INTEGER })), 'BAD_TIME')
  // Not after the parent: invalid whatever the clock says.
  assert.is(await codeOf(ledger, proposal(ledger, [], { time: GENESIS_TIME })), 'BAD_TIME')
})

test('a certified block is not judged by the local clock, but its time stays below the ceiling', async () => {
  const { ledger, clock } = await setup()
  // 2f+1 validators accepted it: a node whose clock is behind must follow, not halt.
  assert.is(await codeOf(ledger, proposal(ledger, [], { time: clock.now + 10 * 60_000 }), true), 'OK')
  // A time past the ceiling is invalid even certified: a null filler after it must still be a safe integer.
  assert.is(await codeOf(ledger, proposal(ledger, [], { time: Number.MAX_SAFE_INTEGER }), true), 'BAD_TIME')
  assert.is(await codeOf(ledger, proposal(ledger, [], { time: BLOCK_TIME.maxTime + 1 }), true), 'BAD_TIME')
  assert.ok(Number.isSafeInteger(BLOCK_TIME.maxTime + 1_000_000_000))
})

test('propose builds a time after the parent that its own validation accepts', async () => {
  const { ledger, clock } = await setup()
  const a = ledger.propose(0, [], clock.now, validators[0]!.publicKey)
  assert.is(a.header.time, clock.now)
  assert.is(await codeOf(ledger, a), 'OK')
  await commit(ledger, a)
  // The clock went back (NTP step): the block still moves time forward by the minimum.
  clock.now -= 5_000
  const b = ledger.propose(1, [], clock.now, validators[1]!.publicKey)
  assert.is(b.header.time, a.header.time + 1)
  assert.is(await codeOf(ledger, b), 'OK')
  // A proposer whose clock is past the ceiling refuses to build rather than make an invalid block.
  assert.throws(() => ledger.propose(1, [], BLOCK_TIME.maxTime + 1, validators[1]!.publicKey), /time/)
})

// --- re-included txs ------------------------------------------------------------------------------

test('a proposal with an already-committed tx is invalid and the tx keeps its result', async () => {
  const { ledger, store } = await setup()
  const t1 = tx(alice, 1)
  await commit(ledger, proposal(ledger, [t1]))
  const before = await store.getTx(t1.hash)
  assert.is(before?.height, 1)
  assert.is(before?.result.code, null)
  assert.is(await codeOf(ledger, proposal(ledger, [t1])), 'TX_COMMITTED')
  assert.is(await codeOf(ledger, proposal(ledger, [tx(bob, 1), t1])), 'TX_COMMITTED')
  // Certified or not: the tx index is never rewritten.
  assert.is(await codeOf(ledger, proposal(ledger, [t1]), true), 'TX_COMMITTED')
  const after = await store.getTx(t1.hash)
  assert.is(after?.height, 1)
  assert.is(after?.result.code, null)
})

// --- nonces ---------------------------------------------------------------------------------------

test('nonces: a block holds each signer’s next nonces in order, without gaps or repeats', async () => {
  const { ledger } = await setup()
  assert.is(await codeOf(ledger, proposal(ledger, [tx(alice, 1), tx(alice, 2), tx(bob, 1)])), 'OK')
  assert.is(await codeOf(ledger, proposal(ledger, [tx(alice, 2)])), 'BAD_NONCE', 'gap from committed')
  assert.is(await codeOf(ledger, proposal(ledger, [tx(alice, 1), tx(alice, 3)])), 'BAD_NONCE', 'gap')
  assert.is(await codeOf(ledger, proposal(ledger, [tx(alice, 2), tx(alice, 1)])), 'BAD_NONCE', 'order')
  assert.is(await codeOf(ledger, proposal(ledger, [tx(alice, 1), tx(alice, 1, 2)])), 'BAD_NONCE', 'repeat')
  // The rule is part of validity, so a certified block is held to it too.
  assert.is(await codeOf(ledger, proposal(ledger, [tx(alice, 5)]), true), 'BAD_NONCE')
})

test('nonces: after a commit the next block continues from the committed nonce', async () => {
  const { ledger } = await setup()
  await commit(ledger, proposal(ledger, [tx(alice, 1), tx(alice, 2)]))
  assert.is(await codeOf(ledger, proposal(ledger, [tx(alice, 2, 3)])), 'BAD_NONCE', 'already committed nonce')
  assert.is(await codeOf(ledger, proposal(ledger, [tx(alice, 4)])), 'BAD_NONCE', 'gap')
  assert.is(await codeOf(ledger, proposal(ledger, [tx(alice, 3), tx(alice, 4)])), 'OK')
})

test('a Byzantine order (5 before 1 and 2) cannot kill a signer’s txs', async () => {
  const { ledger, store } = await setup()
  const [t1, t2, t5] = [tx(alice, 1), tx(alice, 2), tx(alice, 5)]
  assert.is(await codeOf(ledger, proposal(ledger, [t5, t1, t2])), 'BAD_NONCE')
  await commit(ledger, proposal(ledger, [t1, t2]))
  assert.is((await store.getTx(t1.hash))?.result.code, null)
  assert.is((await store.getTx(t2.hash))?.result.code, null)
})

test('an expired tx makes the block invalid', async () => {
  const { ledger } = await setup()
  await commit(ledger, proposal(ledger, []))
  await commit(ledger, proposal(ledger, []))
  // Expiry 2 is the last height that may include it; the next block is 3.
  assert.is(await codeOf(ledger, proposal(ledger, [tx(alice, 1, 1, 2)])), 'TX_EXPIRED')
  assert.is(await codeOf(ledger, proposal(ledger, [tx(alice, 1, 1, 3)])), 'OK')
})

test.run()
