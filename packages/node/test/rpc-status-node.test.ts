// GET /v1/status on a real node says what an operator compares across nodes: the version it runs, the
// genesis hash, and the latest block's hash and time (the same as GET /v1/blocks/latest).
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair, toHex } from '@cityledger/core'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { genesisHash, loadGenesis } from '../src/config/index.ts'
import { type LocalNode, startLocalNode, subjectTx } from './nodeHarness.ts'

const VERSION = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version

let local: LocalNode

test.before(async () => {
  local = await startLocalNode()
})

test.after(async () => {
  await local?.close()
})

const status = async () => (await (await fetch(`${local.url}/v1/status`)).json()) as Record<string, unknown>

test('status names the version, the genesis hash and the latest block, which moves with each commit', async () => {
  const genesis = loadGenesis(join(local.home, 'genesis.json'))
  const first = await status()
  assert.is(first.version, VERSION)
  assert.is(first.genesisHash, toHex(genesisHash(genesis)))
  const tx = subjectTx(local.chainId, generateKeyPair(), 1, 'status')
  const r = await fetch(`${local.url}/v1/txs?wait=commit`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: tx.bytes,
  })
  assert.is(r.status, 200, await r.text())
  const after = await status()
  const latest = (await (await fetch(`${local.url}/v1/blocks/${after.height}`)).json()) as {
    hash: string
    header: { time: number }
  }
  assert.ok((after.height as number) >= 1)
  assert.is(after.latestBlockHash, latest.hash)
  assert.is(after.latestBlockTime, latest.header.time)
  assert.is(after.genesisHash, first.genesisHash)
  // A validator set of one: nobody to connect to.
  const peers = (await (await fetch(`${local.url}/v1/peers`)).json()) as { peers: unknown[] }
  assert.equal(peers.peers, [])
})

test.run()
