import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type Block, ZERO_HASH, equalBytes, sha256 } from '@cityledger/core'
import type { Output } from '@cityledger/consensus'
import { ConsensusDriver } from '../src/node/driver.ts'

// Case 8 of issue 10: the null filler a node stores for a height used to carry the view of the commit
// that created it, while commits are accepted from neighbouring views: two honest nodes holding
// certificates of different views for one null height stored different blocks (different hashes, so
// every later parent hash differed). A null filler is now canonical per height.

const noop = () => {}
const logger = new Proxy({}, { get: (_t, k) => (k === 'child' ? () => logger : noop) }) as never

/** Drives one commit of a null filler with a certificate of `view` and returns the block stored. */
async function storedNullBlock(view: number): Promise<Block> {
  let stored: Block | undefined
  const head = {
    height: 6,
    hash: sha256(new Uint8Array([6])),
    stateRoot: sha256(new Uint8Array([7])),
    time: 1_000,
  }
  const commit: Output = {
    type: 'commit',
    height: 7,
    view,
    digest: ZERO_HASH,
    block: new Uint8Array(0),
    isNull: true,
    certificate: { chainId: 'null-chain', view, height: 7, blockHash: ZERO_HASH, signatures: [] },
  }
  const driver = new ConsensusDriver({
    chainId: 'null-chain',
    publicKey: new Uint8Array(32),
    replica: { step: (input) => (input.type === 'start' ? [commit] : []) },
    journal: { append: async () => {}, compact: async () => {} } as never,
    ledger: {
      head,
      blockHashAt: async () => undefined,
      commit: async (block: Block) => {
        stored = block
        return { results: [], blockEvents: [], stateRoot: ZERO_HASH }
      },
    } as never,
    mempool: { update: noop, get: () => undefined, size: () => 0, reap: () => [] } as never,
    net: { broadcast: noop, send: noop, penalize: noop },
    clock: { now: () => 0, setTimeout: () => 0, clearTimeout: noop },
    logger,
    wallClock: () => 0,
    maxBlockTxs: 10,
    maxBlockBytes: 1024,
    blockIntervalMs: 100,
    emptyBlockIntervalMs: 100,
    onCommitted: noop,
    onSyncNeeded: noop,
    onFatal: (err) => {
      throw err
    },
  })
  driver.push({ type: 'start' })
  await driver.idle()
  driver.stop()
  assert.ok(stored, `no block stored for view ${view}`)
  return stored
}

test('two certificates of different views for one null height store the same filler bytes', async () => {
  const a = await storedNullBlock(3)
  const b = await storedNullBlock(4)
  assert.ok(equalBytes(a.bytes, b.bytes), 'filler bytes depend on the view')
  assert.ok(equalBytes(a.hash, b.hash))
  assert.is(a.header.height, 7)
  assert.is(a.header.time, 1_001)
  assert.is(a.txs.length, 0)
})

test.run()
