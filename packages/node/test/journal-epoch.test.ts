// The consensus journal's epoch tag (journal.ts): an old journal is epoch 0's; `reset` empties it and
// tags it with the new epoch in one batch, and a reopened journal keeps both; a bad tag stops the node.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { encode, isCityError, openMemoryKv } from '@cityledger/core'
import { Journal } from '../src/node/journal.ts'

const entry = (view: number) => ({ type: 'view', view }) as never

test('untagged is epoch 0; reset empties and tags it durably; appends after it survive a reopen', async () => {
  const kv = openMemoryKv()
  const j = await Journal.open(kv)
  assert.is(j.epoch, 0)
  await j.append(entry(1))
  await j.append(entry(2))
  await j.reset(3)
  assert.is(j.epoch, 3)
  assert.equal(j.all(), [])
  await j.append(entry(7))
  const again = await Journal.open(kv)
  assert.is(again.epoch, 3)
  assert.equal(again.all(), [entry(7)])
  await again.compact(0)
  assert.is((await Journal.open(kv)).epoch, 3, 'compaction keeps the tag')
})

test("reset keeps the epoch's base checkpoint digest (a restart needs it once the base height is pruned)", async () => {
  const kv = openMemoryKv()
  const j = await Journal.open(kv)
  assert.is(j.baseDigest, undefined)
  const digest = new Uint8Array(32).fill(5)
  await j.reset(2, digest)
  await j.append(entry(1))
  const again = await Journal.open(kv)
  assert.equal([again.epoch, again.baseDigest], [2, digest])
  await again.reset(3)
  assert.equal([(await Journal.open(kv)).epoch, (await Journal.open(kv)).baseDigest], [3, undefined])
})

test('a tag that is not an epoch is JOURNAL_CORRUPT', async () => {
  const kv = openMemoryKv()
  for (const bad of ['one', [1, new Uint8Array(31)], [-1, new Uint8Array(32)], [1, 2, 3]]) {
    await kv.write([{ type: 'put', key: new TextEncoder().encode('epoch'), value: encode(bad) }])
    const err = await Journal.open(kv).catch((e) => e)
    assert.ok(isCityError(err, 'JOURNAL_CORRUPT'), `${JSON.stringify(bad)}: ${String(err)}`)
  }
})

test.run()
