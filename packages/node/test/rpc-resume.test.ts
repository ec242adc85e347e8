// GET /v1/events resume (Last-Event-ID, fromHeight), its bound, and filters, over the fake backend.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type SseMessage, parseSse } from '../src/client/index.ts'
import { type Harness, call, postBytes, signed, withServer } from './rpcHarness.ts'

let nonce = 0
/** Commits a block of `txs` token transfers (each emits one event), then identity ones. */
async function commitBlock(h: Harness, txs: number, identity = 0) {
  for (let i = 0; i < txs + identity; i++) {
    const t = signed({
      nonce: ++nonce,
      ...(i >= txs ? { service: 'identity', method: 'registerSubject' } : {}),
    })
    assert.is((await postBytes(h.url, t.bytes)).status, 202)
  }
  return h.fake.commit()
}

async function open(h: Harness, path: string, headers: Record<string, string> = {}) {
  const ac = new AbortController()
  const res = await fetch(`${h.url}${path}`, { signal: ac.signal, headers })
  assert.is(res.status, 200)
  const it = parseSse(res.body!)[Symbol.asyncIterator]()
  return {
    async take(n: number): Promise<SseMessage[]> {
      const out: SseMessage[] = []
      while (out.length < n) {
        const r = await it.next()
        assert.ok(!r.done, `stream ended after ${out.length} of ${n} messages`)
        out.push(r.value)
      }
      return out
    },
    close: () => ac.abort(),
  }
}

const ids = (ms: SseMessage[]) => ms.map((m) => m.id)

test('Last-Event-ID resumes right after that message: the rest of its block, then later blocks, then live', async () => {
  await withServer(async (h) => {
    for (let b = 0; b < 3; b++) await commitBlock(h, 2)
    const s = await open(h, '/v1/events', { 'last-event-id': '2/0' })
    assert.equal(ids(await s.take(4)), ['2/1', '3', '3/0', '3/1'])
    await commitBlock(h, 1)
    assert.equal(ids(await s.take(2)), ['4', '4/0'])
    s.close()
    await h.fake.whenSubscribers(0)
  })
})

test('fromHeight replays from that block; a block committed while replaying is sent once', async () => {
  await withServer(async (h) => {
    for (let b = 0; b < 2; b++) await commitBlock(h, 1)
    // The block that lands during the replay is both stored (read back) and queued live.
    const eventsAt = h.fake.eventsAt.bind(h.fake)
    let landed = false
    h.fake.eventsAt = async (height) => {
      if (!landed) {
        landed = true
        h.fake.commit()
      }
      return eventsAt(height)
    }
    const s = await open(h, '/v1/events?fromHeight=2')
    assert.equal(ids(await s.take(3)), ['2', '2/0', '3'])
    await commitBlock(h, 0)
    const [next] = await s.take(1)
    assert.is(next!.id, '4', 'block 3 was not repeated')
    s.close()
    await h.fake.whenSubscribers(0)
  })
})

test('a resume from further back than maxEventReplayBlocks is 410 RESUME_TOO_OLD, naming the oldest height', async () => {
  await withServer(
    async (h) => {
      for (let b = 0; b < 5; b++) await commitBlock(h, 0)
      const r = await call(`${h.url}/v1/events?fromHeight=1`)
      assert.is(r.status, 410)
      assert.is(r.body.error.code, 'RESUME_TOO_OLD')
      assert.match(r.body.error.message, /from 4/)
      const old = await call(`${h.url}/v1/events`, { headers: { 'last-event-id': '2/5' } })
      assert.is(old.status, 410)
      const s = await open(h, '/v1/events?fromHeight=4')
      assert.equal(ids(await s.take(2)), ['4', '5'])
      s.close()
      await h.fake.whenSubscribers(0)
    },
    {},
    { maxEventReplayBlocks: 2 },
  )
})

test('filters: types, service and eventType apply to replayed and live messages alike', async () => {
  await withServer(async (h) => {
    await commitBlock(h, 2, 1)
    const s = await open(h, '/v1/events?fromHeight=1&types=event&service=identity')
    const live = await open(h, '/v1/events?types=event&eventType=transfer.done')
    await h.fake.whenSubscribers(1)
    const [first] = await s.take(1)
    assert.is(first!.id, '1/2')
    assert.is(JSON.parse(first!.data).service, 'identity')
    await commitBlock(h, 1, 1)
    const [second] = await s.take(1)
    assert.is(second!.id, '2/1')
    assert.equal(ids(await live.take(1)), ['2/0'])
    s.close()
    live.close()
    await h.fake.whenSubscribers(0)
  })
})

test('bad resume points and filters are 400 BAD_REQUEST naming the parameter', async () => {
  await withServer(async (h) => {
    const cases: [string, Record<string, string>, RegExp][] = [
      ['/v1/events', { 'last-event-id': 'x' }, /Last-Event-ID/],
      ['/v1/events', { 'last-event-id': '1/-1' }, /Last-Event-ID/],
      ['/v1/events?fromHeight=-1', {}, /fromHeight/],
      ['/v1/events?types=blocks', {}, /types/],
      ['/v1/events?service=Bad%20Name', {}, /service/],
      ['/v1/events?eventType=', {}, /eventType/],
      ['/v1/events?since=1', {}, /unknown parameter/],
      ['/v1/events?types=block&types=event', {}, /more than once/],
    ]
    for (const [path, headers, why] of cases) {
      const r = await call(`${h.url}${path}`, { headers })
      assert.is(r.status, 400, `${path} ${JSON.stringify(headers)}`)
      assert.is(r.body.error.code, 'BAD_REQUEST')
      assert.match(r.body.error.message, why)
    }
    assert.is(h.streams(), 0)
  })
})

test('a replay the store cannot serve closes the stream and is logged; other streams live on', async () => {
  await withServer(async (h) => {
    await commitBlock(h, 0)
    const other = await open(h, '/v1/events')
    h.fake.failNext('eventsAt', new Error('disk gone'))
    const res = await fetch(`${h.url}/v1/events?fromHeight=1`)
    assert.is(res.status, 200)
    await res.text().catch(() => '')
    await h.until(() => h.streams() === 1)
    assert.ok(h.logs.some((l) => l.msg === 'event stream replay failed; closing the stream'))
    await commitBlock(h, 0)
    assert.equal(ids(await other.take(1)), ['2'])
    other.close()
    await h.fake.whenSubscribers(0)
  })
})

test.run()
