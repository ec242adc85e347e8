import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { toHex } from '@cityledger/core'
import { Rng, testSeed } from '@cityledger/core/testing'
import { type SseMessage, parseSse } from '../src/client/index.ts'
import { postBytes, signed, startServer, withServer } from './rpcHarness.ts'

const SEED = testSeed(20261125)

/** Opens `GET /v1/events` and returns a pull-based reader over its messages. */
async function openStream(url: string, signal: AbortSignal, path = '/v1/events', headers = {}) {
  const res = await fetch(`${url}${path}`, { signal, headers })
  assert.is(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/)
  const it = parseSse(res.body!)[Symbol.asyncIterator]()
  return {
    async next(): Promise<SseMessage | undefined> {
      const r = await it.next()
      return r.done ? undefined : r.value
    },
  }
}

test(`SSE delivers blocks and events in commit order, ids by height and position (seed ${SEED})`, async () => {
  await withServer(async ({ fake, url }) => {
    const rng = new Rng(SEED)
    const ac = new AbortController()
    const stream = await openStream(url, ac.signal)
    await fake.whenSubscribers(1)
    const expected: { event: string; check: (d: any) => boolean }[] = []
    let nonce = 1
    for (let height = 1; height <= 5; height++) {
      const txs = Array.from({ length: rng.int(4) }, () => signed({ nonce: nonce++ }))
      for (const t of txs) assert.is((await postBytes(url, t.bytes)).status, 202)
      const block = fake.commit()
      expected.push({ event: 'block', check: (d) => d.hash === block.hash && d.header.height === height })
      for (const t of txs)
        expected.push({
          event: 'event',
          check: (d) => d.tx === toHex(t.hash) && d.height === height && d.type === 'transfer.done',
        })
    }
    let index = 0
    for (const [i, e] of expected.entries()) {
      const m = await stream.next()
      assert.ok(m, `message ${i} arrived`)
      assert.is(m!.event, e.event, `message ${i} type (seed ${SEED})`)
      const d = JSON.parse(m!.data)
      assert.ok(e.check(d), `message ${i} content: ${m!.data.slice(0, 200)}`)
      if (e.event === 'block') index = 0
      assert.is(m!.id, e.event === 'block' ? String(d.header.height) : `${d.height}/${index++}`)
    }
    ac.abort()
    await fake.whenSubscribers(0)
  })
})

test('every connection gets every event through one backend subscription; closing one keeps the others', async () => {
  await withServer(async ({ fake, url, streams, until }) => {
    const a = new AbortController()
    const b = new AbortController()
    const sa = await openStream(url, a.signal)
    const sb = await openStream(url, b.signal)
    assert.is(streams(), 2)
    assert.is(fake.subscribers(), 1)
    fake.emit({ type: 'event', data: { n: 1 } })
    assert.equal(JSON.parse((await sa.next())!.data), { n: 1 })
    assert.equal(JSON.parse((await sb.next())!.data), { n: 1 })
    a.abort()
    await until(() => streams() === 1)
    assert.is(fake.subscribers(), 1)
    fake.emit({ type: 'event', data: { n: 2, bytes: new Uint8Array([255]) } })
    assert.equal(JSON.parse((await sb.next())!.data), { n: 2, bytes: 'ff' })
    b.abort()
    await fake.whenSubscribers(0)
  })
})

test('events the stream cannot carry are dropped and logged, the stream lives on', async () => {
  await withServer(async ({ fake, url, logs }) => {
    const ac = new AbortController()
    const s = await openStream(url, ac.signal)
    await fake.whenSubscribers(1)
    fake.emit({ type: 'bogus\ndata: injected' as 'event', data: 1 })
    fake.emit({ type: 'event', data: { f: () => 1 } })
    fake.emit({ type: 'event', data: 'multi\nline' })
    const m = await s.next()
    assert.is(JSON.parse(m!.data), 'multi\nline')
    assert.is(m!.id, '0/2', 'the third event emitted at height 0')
    assert.is(logs.filter((l) => l.level >= 50).length, 2)
    ac.abort()
    await fake.whenSubscribers(0)
  })
})

test('stop() ends open event streams and unsubscribes them', async () => {
  const h = await startServer()
  const s = await openStream(h.url, new AbortController().signal)
  await h.fake.whenSubscribers(1)
  await h.stop()
  assert.is(await s.next().catch(() => undefined), undefined)
  assert.is(h.fake.subscribers(), 0)
})

test('a client that does not read is cut off once its backlog passes the bound', async () => {
  await withServer(
    async ({ fake, url, logs }) => {
      const ac = new AbortController()
      // Opened but never read: the kernel and client buffers fill, then the server's.
      const res = await fetch(`${url}/v1/events`, { signal: ac.signal })
      assert.is(res.status, 200)
      await fake.whenSubscribers(1)
      const big = 'x'.repeat(1 << 20)
      for (let i = 0; i < 200 && fake.subscribers() > 0; i++) fake.emit({ type: 'event', data: big })
      assert.is(fake.subscribers(), 0, 'slow client unsubscribed')
      assert.ok(logs.some((l) => l.msg === 'event stream client too slow, disconnecting'))
      ac.abort()
    },
    {},
    { maxEventBacklogBytes: 1 << 20 },
  )
})

test('parseSse: CRLF, CR and LF line ends, comments, multi-line data, any chunking', async () => {
  const text =
    ': hello\r\n\r\nid: 1\r\nevent: block\r\ndata: {"a":1}\r\n\r\nevent: event\rdata: x\rdata: y\r\rdata:  two spaces\n\nevent: tail\ndata: unfinished'
  const want = [
    { event: 'block', data: '{"a":1}', id: '1' },
    { event: 'event', data: 'x\ny', id: '1' },
    { event: 'message', data: ' two spaces', id: '1' },
  ]
  const bytes = new TextEncoder().encode(text)
  const rng = new Rng(SEED)
  for (let round = 0; round < 200; round++) {
    const chunks: Uint8Array[] = []
    for (let i = 0; i < bytes.length; ) {
      const n = round === 0 ? 1 : rng.range(1, 12)
      chunks.push(bytes.subarray(i, i + n))
      i += n
    }
    const got: SseMessage[] = []
    for await (const m of parseSse(
      (async function* () {
        yield* chunks
      })(),
    ))
      got.push(m)
    assert.equal(got, want, `seed ${SEED} round ${round}`)
  }
})

test.run()
