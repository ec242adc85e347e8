// Bounds on what RPC clients can make the server spend: event streams (cap, one serialisation per
// event, dropped when they fall behind), slow clients (request timeout, stop whatever they do) and
// per-client rate limits.
import { type Socket, connect } from 'node:net'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { RpcEvent } from '../src/rpc/index.ts'
import { type SseMessage, parseSse } from '../src/client/index.ts'
import { callFrom } from './nodeHarness.ts'
import { signed, startServer, withServer } from './rpcHarness.ts'

/**
 * A client that sends the headers of a POST announcing `length` body bytes, then one byte every
 * `everyMs`. Resolves with what the server answered once the server closes the connection.
 */
function trickle(url: string, length: number, everyMs: number) {
  const u = new URL(url)
  const socket: Socket = connect({ host: u.hostname, port: Number(u.port) })
  let sent = 0
  let answer = ''
  let timer: NodeJS.Timeout | undefined
  socket.on('connect', () => {
    socket.write(
      `POST /v1/txs HTTP/1.1\r\nHost: x\r\ncontent-type: application/octet-stream\r\ncontent-length: ${length}\r\n\r\n`,
    )
    timer = setInterval(() => {
      if (sent < length && !socket.destroyed) {
        socket.write('x')
        sent++
      }
    }, everyMs)
  })
  socket.on('data', (b: Buffer) => (answer += b.toString()))
  socket.on('error', () => {})
  const closed = new Promise<{ answer: string; sent: number }>((resolve) =>
    socket.on('close', () => {
      clearInterval(timer)
      resolve({ answer, sent })
    }),
  )
  return { closed, sent: () => sent, destroy: () => socket.destroy() }
}

test('event streams are capped: past maxEventSubscribers the next one gets 503 TOO_MANY_SUBSCRIBERS', async () => {
  await withServer(
    async ({ url, streams }) => {
      const ac = new AbortController()
      for (let i = 0; i < 3; i++)
        assert.is((await fetch(`${url}/v1/events`, { signal: ac.signal })).status, 200)
      assert.is(streams(), 3)
      const res = await fetch(`${url}/v1/events`)
      assert.is(res.status, 503)
      assert.is(res.headers.get('retry-after'), '1')
      assert.is(((await res.json()) as any).error.code, 'TOO_MANY_SUBSCRIBERS')
      assert.is(streams(), 3)
      ac.abort()
    },
    {},
    { maxEventSubscribers: 3 },
  )
})

test('each event is serialised once for all streams, through one backend subscription', async () => {
  let encoded = 0
  const encodeEvent = (e: RpcEvent) => {
    encoded++
    return JSON.stringify(e.data)
  }
  await withServer(
    async ({ fake, url }) => {
      const ac = new AbortController()
      const readers = await Promise.all(
        Array.from({ length: 5 }, async () => {
          const res = await fetch(`${url}/v1/events`, { signal: ac.signal })
          return parseSse(res.body!)[Symbol.asyncIterator]()
        }),
      )
      assert.is(fake.subscribers(), 1, 'one backend subscription for five streams')
      for (let n = 0; n < 10; n++) fake.emit({ type: 'event', data: { n } })
      for (const r of readers)
        for (let n = 0; n < 10; n++) {
          const m = (await r.next()).value as SseMessage
          assert.equal(JSON.parse(m.data), { n })
          assert.is(m.id, `0/${n}`, 'the id is the position at the height')
        }
      assert.is(encoded, 10, 'one serialisation per event, not per stream')
      ac.abort()
      await fake.whenSubscribers(0)
    },
    { encodeEvent },
  )
})

test('streams that never read are dropped once their backlog passes the bound; a reader keeps up', async () => {
  const backlog = 256 * 1024
  await withServer(
    async ({ fake, url, streams, buffered, logs }) => {
      const ac = new AbortController()
      // Ten subscribers that never read their body.
      const idle = await Promise.all(
        Array.from({ length: 10 }, () => fetch(`${url}/v1/events`, { signal: ac.signal })),
      )
      const reader = parseSse((await fetch(`${url}/v1/events`, { signal: ac.signal })).body!)[
        Symbol.asyncIterator
      ]()
      assert.is(streams(), 11)
      const payload = 'x'.repeat(64 * 1024)
      let sentBytes = 0
      let most = 0
      let n = 0
      // Each event is read by the reader before the next is sent: the reader is never behind.
      for (; n < 4000 && streams() > 1; n++) {
        fake.emit({ type: 'event', data: { n, payload } })
        sentBytes += payload.length
        most = Math.max(most, buffered())
        const m = (await reader.next()).value as SseMessage
        assert.is(JSON.parse(m.data).n, n)
      }
      assert.is(streams(), 1, `the ten non-readers were dropped (after ${n} events)`)
      assert.ok(sentBytes > backlog, 'none was dropped before it was a backlog behind')
      // The bound of the design: the shared window plus one socket buffer (16 KiB) and one event a stream.
      const bound = backlog + 11 * (16 * 1024 + payload.length + 1024)
      assert.ok(most <= bound, `held at most ${most} bytes for the streams (bound ${bound})`)
      assert.ok(most > 0)
      assert.is(logs.filter((l) => l.msg === 'event stream client too slow, disconnecting').length, 10)
      // The reader still gets what follows.
      fake.emit({ type: 'event', data: { n: 'last' } })
      assert.equal(JSON.parse(((await reader.next()).value as SseMessage).data), { n: 'last' })
      for (const res of idle) await res.body!.cancel().catch(() => {})
      ac.abort()
    },
    {},
    { maxEventBacklogBytes: backlog },
  )
})

test('a client that trickles its body is cut off by the request timeout (408), before it is done', async () => {
  await withServer(
    async ({ url }) => {
      const t = trickle(url, 4_000, 10)
      const { answer, sent } = await t.closed
      assert.match(answer, /^HTTP\/1\.1 408/)
      assert.ok(sent < 4_000, `cut off after ${sent} of 4000 bytes`)
    },
    { timeoutCheckIntervalMs: 50 },
    { requestTimeoutMs: 300, headersTimeoutMs: 300 },
  )
})

test('stop() returns and closes every connection while 5 clients trickle bodies', async () => {
  // A request timeout far longer than the test: only stop() can end these connections.
  const h = await startServer(
    {},
    { requestTimeoutMs: 600_000, headersTimeoutMs: 600_000, shutdownGraceMs: 50 },
  )
  const clients = Array.from({ length: 5 }, () => trickle(h.url, 4_000, 20))
  try {
    await h.until(() => h.connections() === 5 && clients.every((c) => c.sent() > 0))
    await h.stop()
    const ends = await Promise.all(clients.map((c) => c.closed))
    for (const e of ends) assert.ok(e.sent < 4_000, 'closed by the server, not finished')
    await h.until(() => h.connections() === 0)
  } finally {
    for (const c of clients) c.destroy()
  }
})

test('one client flooding gets 429 RATE_LIMITED with retry-after; another client is still admitted', async () => {
  const now = 0
  await withServer(
    async ({ url }) => {
      const flood = Array.from({ length: 300 }, () => callFrom(url, '127.0.0.2', '/v1/status'))
      const txs = Array.from({ length: 5 }, (_, i) =>
        callFrom(url, '127.0.0.3', '/v1/txs', { method: 'POST', body: signed({ nonce: i + 1 }).bytes }),
      )
      const flooded = await Promise.all(flood)
      const admitted = await Promise.all(txs)
      const limited = flooded.filter((r) => r.status === 429)
      assert.is(flooded.filter((r) => r.status === 200).length, 20, 'the burst is served')
      assert.is(limited.length, 280)
      for (const r of limited) {
        assert.is(r.body.error.code, 'RATE_LIMITED')
        assert.ok(Number(r.headers['retry-after']) >= 1)
      }
      for (const r of admitted) assert.is(r.status, 202, JSON.stringify(r.body))
      // Health and metrics stay reachable for the flooder's address (monitoring).
      assert.is((await callFrom(url, '127.0.0.2', '/v1/health')).status, 200)
    },
    { now: () => now },
    { rateLimitPerSecond: 10, rateLimitBurst: 20 },
  )
})

test('retry-after says how long until the next token', async () => {
  await withServer(
    async ({ url }) => {
      assert.is((await callFrom(url, '127.0.0.4', '/v1/status')).status, 200)
      const r = await callFrom(url, '127.0.0.4', '/v1/status')
      assert.is(r.status, 429)
      assert.is(r.headers['retry-after'], '5', 'one token per 5 s')
    },
    { now: () => 0 },
    { rateLimitPerSecond: 0.2, rateLimitBurst: 1 },
  )
})

/** A raw connection from `localAddress`; `answer()` resolves with what came back once it closed. */
function connectFrom(url: string, localAddress: string) {
  const u = new URL(url)
  const socket = connect({ host: u.hostname, port: Number(u.port), localAddress })
  let got = ''
  socket.on('data', (b: Buffer) => (got += b.toString()))
  socket.on('error', () => {})
  const connected = new Promise<void>((r) => socket.on('connect', () => r()))
  const answer = new Promise<string>((r) => socket.on('close', () => r(got)))
  return { socket, connected, answer }
}

test('connection caps: per client address and in all; exempt clients are never turned away', async () => {
  await withServer(
    async ({ url, connections, until }) => {
      const held = Array.from({ length: 3 }, () => connectFrom(url, '127.0.0.5'))
      try {
        await Promise.all(held.map((c) => c.connected))
        await until(() => connections() === 3)
        // A fourth from the same address is closed without an answer.
        const extra = connectFrom(url, '127.0.0.5')
        extra.socket.write('GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n')
        assert.is(await extra.answer, '')
        // Another address is served.
        assert.is((await callFrom(url, '127.0.0.6', '/v1/status')).status, 200)
        // Two more from a third address fill the total cap of 5; the next address is turned away...
        held.push(connectFrom(url, '127.0.0.7'), connectFrom(url, '127.0.0.7'))
        await Promise.all(held.map((c) => c.connected))
        await until(() => connections() === 5)
        const late = connectFrom(url, '127.0.0.8')
        late.socket.write('GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n')
        assert.is(await late.answer, '')
        // ...but not an exempt one.
        assert.is((await callFrom(url, '127.0.0.9', '/v1/status')).status, 200)
      } finally {
        for (const c of held) c.socket.destroy()
      }
    },
    {},
    { maxConnectionsPerClient: 3, maxConnections: 5, exemptClients: ['127.0.0.9'] },
  )
})

test('a refused subscriber does not keep its connection', async () => {
  await withServer(
    async ({ url, connections, until }) => {
      const ac = new AbortController()
      assert.is((await fetch(`${url}/v1/events`, { signal: ac.signal })).status, 200)
      const c = connectFrom(url, '127.0.0.10')
      await c.connected
      c.socket.write('GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n')
      assert.match(await c.answer, /^HTTP\/1\.1 503[\s\S]*TOO_MANY_SUBSCRIBERS/)
      await until(() => connections() === 1)
      ac.abort()
    },
    {},
    { maxEventSubscribers: 1 },
  )
})

test.run()
