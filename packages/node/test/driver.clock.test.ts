// A committed block is applied whatever this node's clock says: the block-time drift bound
// (BLOCK_TIME.maxDriftMs) is for proposals only. Before the driver passed `certified` to validation, a
// node whose clock was more than the drift behind refused a block 2f+1 validators had committed
// ("committed block does not validate here: BAD_TIME") and stopped.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  ChainStore,
  VerifiedCache,
  ZERO_HASH,
  createPureVerifier,
  createRuntime,
  defineService,
  generateKeyPair,
  openMemoryKv,
  s,
} from '@cityledger/core'
import type { Output } from '@cityledger/consensus'
import { seedFor } from '@cityledger/core/testing'
import { BLOCK_TIME, Ledger } from '../src/chain/index.ts'
import { ledgerStore } from '../src/chain/storeAdapter.ts'
import { ConsensusDriver } from '../src/node/driver.ts'

const CHAIN = 'clock-test'
const GENESIS_TIME = 1_700_000_000_000
const validators = [0, 1, 2, 3].map((i) => generateKeyPair(seedFor(`clock-validator-${i}`)))
const noop = () => {}
const logger = new Proxy({}, { get: (_t, k) => (k === 'child' ? () => logger : noop) }) as never
const svc = defineService({
  name: 'noop',
  version: '1.0.0',
  methods: { ping: { args: s.object({}), handler() {} } },
})

async function ledgerWithClock(now: () => number): Promise<Ledger> {
  const runtime = createRuntime({ services: [svc] })
  const store = await ChainStore.open(openMemoryKv())
  const g = runtime.genesis({ get: () => undefined }, {}, GENESIS_TIME)
  await store.initGenesis({ chainId: CHAIN, stateWrites: g.writes })
  return Ledger.open({
    chainId: CHAIN,
    validators: validators.map((v) => v.publicKey),
    store: await ledgerStore(store),
    runtime,
    verifier: createPureVerifier(),
    verifiedCache: new VerifiedCache(),
    genesisTime: GENESIS_TIME,
    maxBlockTxs: 100,
    maxBlockBytes: 1 << 20,
    wallClock: now,
  })
}

test('a node whose clock is far behind still applies a block 2f+1 validators committed', async () => {
  const realNow = GENESIS_TIME + 600_000
  const behind = realNow - 10 * BLOCK_TIME.maxDriftMs
  // The proposer's clock is right; this node's is ten drift bounds behind.
  const proposer = await ledgerWithClock(() => realNow)
  const block = proposer.propose(0, [], realNow, validators[0]!.publicKey)
  const local = await ledgerWithClock(() => behind)
  const asProposal = await local.validate(block.bytes, () => undefined)
  assert.is(asProposal.ok, false, 'as a proposal the block is too far ahead of this clock')

  let fatal: Error | undefined
  const commit: Output = {
    type: 'commit',
    height: 1,
    view: 0,
    digest: block.hash,
    block: block.bytes,
    isNull: false,
    certificate: { chainId: CHAIN, view: 0, height: 1, blockHash: block.hash, signatures: [] },
  }
  const driver = new ConsensusDriver({
    chainId: CHAIN,
    publicKey: validators[1]!.publicKey,
    replica: { step: (input) => (input.type === 'start' ? [commit] : []) },
    journal: { append: async () => {}, compact: async () => {} } as never,
    ledger: local,
    mempool: { update: noop, get: () => undefined, size: () => 0, reap: () => [] } as never,
    net: { broadcast: noop, send: noop, penalize: noop },
    clock: { now: () => 0, setTimeout: () => 0, clearTimeout: noop },
    logger,
    wallClock: () => behind,
    maxBlockTxs: 100,
    maxBlockBytes: 1 << 20,
    blockIntervalMs: 100,
    emptyBlockIntervalMs: 100,
    onCommitted: noop,
    onSyncNeeded: noop,
    onFatal: (err) => {
      fatal = err
    },
  })
  driver.push({ type: 'start' })
  await driver.idle()
  driver.stop()
  assert.is(fatal, undefined, `the driver stopped: ${fatal?.message}`)
  assert.is(local.head.height, 1)
  assert.ok(local.head.hash.every((b, i) => b === block.hash[i]))
  assert.ok(!block.hash.every((b, i) => b === ZERO_HASH[i]))
})

test.run()
