// rpc.maxRangeBlocks and rpc.maxRangeBytes (issue 15): the bounds of one GET /v1/blocks?from=&to=
// answer, fixed at 100 blocks and 8 MiB before, are config.json settings with those defaults, checked
// by the schema and passed to the node's RPC server.
import { generateKeyPair } from '@cityledger/core'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createClient } from '../src/client/index.ts'
import { DEFAULT_CONFIG, type NodeConfig, configProblems } from '../src/config/index.ts'
import { RPC_LIMIT_DEFAULTS } from '../src/rpc/index.ts'
import { startLocalNode, subjectTx } from './nodeHarness.ts'

test('defaults are the bounds the server had; 0, fractions and strings are refused naming the field', () => {
  assert.is(DEFAULT_CONFIG.rpc.maxRangeBlocks, 100)
  assert.is(DEFAULT_CONFIG.rpc.maxRangeBytes, 8 * 1024 * 1024)
  assert.is(DEFAULT_CONFIG.rpc.maxRangeBlocks, RPC_LIMIT_DEFAULTS.maxRangeBlocks)
  assert.is(DEFAULT_CONFIG.rpc.maxRangeBytes, RPC_LIMIT_DEFAULTS.maxRangeBytes)
  assert.equal(configProblems({ rpc: { maxRangeBlocks: 5, maxRangeBytes: 1 } }), [])
  for (const [k, v] of [
    ['maxRangeBlocks', 0],
    ['maxRangeBlocks', 1.5],
    ['maxRangeBytes', 0],
    ['maxRangeBytes', 'lots'],
  ] as const) {
    const p = configProblems({ rpc: { [k]: v } })
    assert.equal(
      p.map((x) => x.field),
      [`rpc.${k}`],
      JSON.stringify(p),
    )
    assert.match(p[0]!.message, /an integer >= 1/)
  }
})

/** A node with `edit` applied, `n` committed txs (so at least n blocks), and its client. */
async function nodeWithBlocks(edit: (rpc: NodeConfig['rpc']) => void, n: number) {
  const local = await startLocalNode((cfg) => edit(cfg.rpc))
  const client = createClient({ url: local.url })
  const key = generateKeyPair()
  for (let i = 1; i <= n; i++) {
    const tx = subjectTx(local.chainId, key, i, 'range')
    await client.submit(tx.bytes)
    assert.is((await client.waitForTx(tx.hash, { timeoutMs: 20_000 })).status, 'committed')
  }
  return { local, client }
}

test('rpc.maxRangeBlocks reaches the node: an answer has at most that many blocks, then next', async () => {
  const { local, client } = await nodeWithBlocks((rpc) => (rpc.maxRangeBlocks = 2), 3)
  try {
    const page = await client.blocks(1)
    assert.equal(
      page.blocks.map((b) => b.header.height),
      [1, 2],
    )
    assert.is(page.next, 3)
  } finally {
    await local.close()
  }
})

test('rpc.maxRangeBytes reaches the node: past the budget an answer stops after its first block', async () => {
  const { local, client } = await nodeWithBlocks((rpc) => (rpc.maxRangeBytes = 1), 2)
  try {
    const page = await client.blocks(1, 2)
    assert.is(page.blocks.length, 1)
    assert.is(page.next, 2)
  } finally {
    await local.close()
  }
})

test.run()
