// GET /v1/txs/search on a real node (issue #15): the route is wired to the node's store index, finds
// committed txs by signer, service, service+method and event type, pages with `next`, and answers bad
// parameters with the uniform 400 body. The index itself is tested in core's storeSearch.test.ts.
import { generateKeyPair, toHex } from '@cityledger/core'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createClient } from '../src/client/index.ts'
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

test('three signers register subjects: search by signer, by service and method, and by event finds exactly their committed txs', async () => {
  const client = createClient({ url: local.url })
  const keys = [generateKeyPair(), generateKeyPair(), generateKeyPair()]
  const txs = keys.flatMap((k, i) => [
    subjectTx(local.chainId, k, 1, `s${i}a`),
    subjectTx(local.chainId, k, 2, `s${i}b`),
  ])
  for (const t of txs) await client.submit(t.bytes)
  const done = await Promise.all(txs.map((t) => client.waitForTx(t.hash, { timeoutMs: 20_000 })))
  assert.ok(
    done.every((d) => d.status === 'committed'),
    JSON.stringify(done),
  )
  const mine = new Set(txs.map((t) => toHex(t.hash)))

  const bySigner = await get(`/v1/txs/search?signer=${toHex(keys[1]!.publicKey)}`)
  assert.is(bySigner.status, 200, JSON.stringify(bySigner.body))
  assert.equal(
    bySigner.body.txs.map((t: { hash: string }) => t.hash),
    [txs[2]!, txs[3]!].map((t) => toHex(t.hash)),
  )
  assert.is(bySigner.body.indexedFrom, 1)

  const byMethod = await get('/v1/txs/search?service=identity&method=registerSubject&limit=100')
  assert.is(byMethod.status, 200)
  const found = byMethod.body.txs.map((t: { hash: string }) => t.hash).filter((h: string) => mine.has(h))
  assert.is(found.length, 6)
  // Heights as committed, ascending.
  const heights = byMethod.body.txs.map((t: { height: number }) => t.height)
  assert.equal(
    heights,
    [...heights].sort((a: number, b: number) => a - b),
  )

  // By event type, pages of 2 in descending order: the same txs, each once.
  const seen: string[] = []
  let cursor = ''
  for (let i = 0; i < 20; i++) {
    const page = await get(`/v1/txs/search?event=identity.subjectRegistered&order=desc&limit=2${cursor}`)
    assert.is(page.status, 200)
    seen.push(...page.body.txs.map((t: { hash: string }) => t.hash))
    if (!page.body.next) break
    cursor = `&cursor=${page.body.next}`
  }
  assert.is(new Set(seen).size, seen.length, 'no tx twice across pages')
  for (const h of mine) assert.ok(seen.includes(h), `page walk found ${h}`)
})

test('bad parameters: 400 with the uniform error body naming the parameter', async () => {
  for (const q of [
    'service=identity&limit=0',
    'service=identity&limit=101',
    'signer=zz',
    'service=identity&order=sideways',
    'method=x',
    'bogus=1',
    'event=nodot',
  ]) {
    const r = await get(`/v1/txs/search?${q}`)
    assert.is(r.status, 400, q)
    assert.type(r.body.error.code, 'string', q)
    assert.type(r.body.error.message, 'string', q)
  }
})

test.run()
