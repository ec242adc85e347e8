// The chain read routes of issue 15 on a real node (NodeRpcBackend over its store): GET /v1/genesis
// hashes like the genesis file, GET /v1/txs/:hash decodes the committed envelope of committed and
// failed txs, GET /v1/blocks?from=&to= gives what the one-block route gives. Then NodeRpcBackend alone
// over a stub store and mempool: the pending body, the byte budget, and a tx index pointing elsewhere.
import { join } from 'node:path'
import { type Tx, generateKeyPair, makeBlock, toHex } from '@cityledger/core'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createClient } from '../src/client/index.ts'
import { genesisHash, loadGenesis, parseGenesis } from '../src/config/index.ts'
import { NodeRpcBackend } from '../src/node/backend.ts'
import { type LocalNode, startLocalNode, subjectTx } from './nodeHarness.ts'

let local: LocalNode

test.before(async () => {
  local = await startLocalNode()
})

test.after(async () => {
  await local?.close()
})

const get = async (path: string) => {
  const r = await fetch(`${local.url}${path}`)
  return { status: r.status, body: (await r.json()) as any }
}

const bodyOf = (tx: Tx) => ({
  chainId: tx.body.chainId,
  service: tx.body.service,
  method: tx.body.method,
  args: { subject: toHex((tx.body.args as { subject: Uint8Array }).subject) },
  signer: toHex(tx.body.signer),
  nonce: tx.body.nonce,
  expiry: tx.body.expiry,
})

test('GET /v1/genesis: the file the node runs; saved again it hashes to the status genesisHash', async () => {
  const g = await get('/v1/genesis')
  assert.is(g.status, 200)
  const status = (await get('/v1/status')).body
  assert.is(g.body.genesisHash, status.genesisHash)
  const file = loadGenesis(join(local.home, 'genesis.json'))
  assert.is(g.body.genesisHash, toHex(genesisHash(file)))
  // What the route gives is a genesis file: it parses, and hashes to the same.
  assert.is(toHex(genesisHash(parseGenesis(g.body.genesis, 'GET /v1/genesis'))), g.body.genesisHash)
  assert.equal(g.body.genesis, JSON.parse(JSON.stringify(file)))
})

test('GET /v1/validators/history: the node serves its stored history (none on a chain whose set never changed)', async () => {
  assert.equal(await get('/v1/validators/history'), { status: 200, body: { entries: [] } })
  assert.equal(await createClient({ url: local.url }).validatorHistory(1), [])
  const bad = await get('/v1/validators/history?from=0')
  assert.is(bad.status, 400)
  assert.is(bad.body.error.code, 'BAD_REQUEST')
})

test('GET /v1/txs/:hash: committed and failed txs carry their decoded body', async () => {
  // Two signers register the same subject in one go: the second to run fails SUBJECT_EXISTS.
  const a = subjectTx(local.chainId, generateKeyPair(), 1, 'dup')
  const b = subjectTx(local.chainId, generateKeyPair(), 1, 'dup')
  const client = createClient({ url: local.url })
  await Promise.all([client.submit(a.bytes), client.submit(b.bytes)])
  const done = await Promise.all([a, b].map((t) => client.waitForTx(t.hash, { timeoutMs: 20_000 })))
  const statuses = done.map((s) => s.status).sort()
  assert.equal(statuses, ['committed', 'failed'], JSON.stringify(done))
  for (const [t, waited] of [
    [a, done[0]!],
    [b, done[1]!],
  ] as const) {
    assert.equal(waited.tx, bodyOf(t), 'the wait=commit answer has the body')
    const s = (await get(`/v1/txs/${toHex(t.hash)}`)).body
    assert.equal(s.tx, bodyOf(t), `${s.status}: the stored body`)
    assert.equal((await client.tx(t.hash)).tx, bodyOf(t))
  }
  assert.is((await get(`/v1/txs/${'ef'.repeat(32)}`)).body.tx, undefined)
})

test('GET /v1/blocks: a range is the one-block answers in order; client.blocks pages through', async () => {
  const head = (await get('/v1/status')).body.height as number
  assert.ok(head >= 1)
  const r = await get(`/v1/blocks?from=1&to=${head}`)
  assert.is(r.status, 200)
  assert.is(r.body.blocks.length, Math.min(head, 100))
  for (const [i, b] of r.body.blocks.entries())
    assert.equal(b, (await get(`/v1/blocks/${i + 1}`)).body, `block ${i + 1}`)
  const tail = await createClient({ url: local.url }).blocks(head, head + 50)
  assert.equal(
    tail.blocks.map((b) => b.header.height),
    [head],
  )
  assert.is(tail.next, undefined)
  assert.is((await get(`/v1/blocks?from=${head + 1000}`)).status, 404)
})

/** A NodeRpcBackend over a stub store holding `blocks` (and `index` as its tx index). */
function stubBackend(o: {
  blocks: ReturnType<typeof makeBlock>[]
  index?: Map<string, { height: number; index: number }>
  pending?: Tx[]
}) {
  const result = (hash: Uint8Array) => ({ hash, code: null, events: [], gasUsed: 0 })
  return new NodeRpcBackend({
    store: {
      height: () => o.blocks.length,
      getBlock: async (h: number) => o.blocks[h - 1],
      getCertificate: async () => undefined,
      getTx: async (hash: Uint8Array) => {
        const at = o.index?.get(toHex(hash))
        return at && { ...at, result: result(hash) }
      },
    },
    mempool: { get: (hash: Uint8Array) => o.pending?.find((t) => toHex(t.hash) === toHex(hash)) },
  } as unknown as ConstructorParameters<typeof NodeRpcBackend>[0])
}

const header = (height: number) => ({
  chainId: 'node-test',
  height,
  view: 0,
  time: 1_700_000_000_000 + height,
  parentHash: new Uint8Array(32),
  txRoot: new Uint8Array(32),
  prevStateRoot: new Uint8Array(32),
  proposer: new Uint8Array(32).fill(1),
})

test('NodeRpcBackend: pending body from the mempool; the byte budget; an index that points elsewhere', async () => {
  const key = generateKeyPair()
  const txs = [1, 2, 3, 4].map((n) => subjectTx('node-test', key, n, 'stub'))
  // Blocks 1-3 with one tx each, block 4 with two: sizes differ, the budget counts encoded bytes.
  const blocks = [
    makeBlock(header(1), [txs[0]!.bytes]),
    makeBlock(header(2), [txs[1]!.bytes]),
    makeBlock(header(3), [txs[2]!.bytes]),
    makeBlock(header(4), [txs[3]!.bytes, txs[0]!.bytes]),
  ]
  const size = blocks.map((b) => b.bytes.length)
  const backend = stubBackend({
    blocks,
    index: new Map([
      [toHex(txs[1]!.hash), { height: 2, index: 0 }],
      // Corrupt: the index names block 3's tx for txs[3].
      [toHex(txs[3]!.hash), { height: 3, index: 0 }],
    ]),
    pending: [txs[2]!],
  })
  const pending = await backend.txStatus(txs[2]!.hash)
  assert.equal(pending, { hash: toHex(txs[2]!.hash), status: 'pending', tx: bodyOf(txs[2]!) })
  assert.equal((await backend.txStatus(txs[1]!.hash)).tx, bodyOf(txs[1]!))
  try {
    await backend.txStatus(txs[3]!.hash)
    assert.unreachable('a tx index pointing at another tx is a broken invariant')
  } catch (err) {
    assert.match((err as Error).message, /invariant broken/)
  }

  const heights = (r: { blocks: { header: { height: number } }[] }) => r.blocks.map((b) => b.header.height)
  const all = await backend.blockRange(1, 4, 1 << 20)
  assert.equal(heights(all), [1, 2, 3, 4])
  assert.is(all.next, undefined)
  // Exactly two blocks' bytes: two go, next is 3; one byte less: one goes.
  const two = await backend.blockRange(1, 4, size[0]! + size[1]!)
  assert.equal([heights(two), two.next], [[1, 2], 3])
  const one = await backend.blockRange(1, 4, size[0]! + size[1]! - 1)
  assert.equal([heights(one), one.next], [[1], 2])
  // A first block over the budget still goes.
  const big = await backend.blockRange(4, 4, 1)
  assert.equal([heights(big), big.next], [[4], undefined])
  assert.equal(big.blocks[0]!.txs, [toHex(txs[3]!.hash), toHex(txs[0]!.hash)])
})

test.run()
