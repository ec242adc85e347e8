// GET /v1/events against a real one-validator node: what the stream carries is what the store holds.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type SseMessage, parseSse } from '../src/client/index.ts'
import { startLocalNode } from './nodeHarness.ts'

/** The first `n` messages of `GET <path>` (then the stream is closed). */
async function firstMessages(
  url: string,
  path: string,
  n: number,
  headers: Record<string, string> = {},
): Promise<SseMessage[]> {
  const ac = new AbortController()
  const res = await fetch(`${url}${path}`, { signal: ac.signal, headers })
  assert.is(res.status, 200, `${path}: ${res.status}`)
  const out: SseMessage[] = []
  try {
    for await (const m of parseSse(res.body!)) {
      out.push(m)
      if (out.length === n) break
    }
  } finally {
    ac.abort()
  }
  return out
}

test('a streamed block carries the same commit certificate as GET /v1/blocks/:height', async () => {
  const n = await startLocalNode()
  try {
    const [m] = await firstMessages(n.url, '/v1/events?types=block', 1)
    assert.is(m!.event, 'block')
    const streamed = JSON.parse(m!.data)
    assert.ok(streamed.certificate.signatures.length >= 1, 'the streamed certificate has signatures')
    const stored = await (await fetch(`${n.url}/v1/blocks/${streamed.header.height}`)).json()
    assert.equal(streamed, stored)
    assert.is(m!.id, String(streamed.header.height), 'a block message has its height as id')
  } finally {
    await n.close()
  }
})

test('a stream resumed from height 1 replays the stored blocks, certificates included, then goes on live', async () => {
  const n = await startLocalNode()
  try {
    // Three blocks committed before the stream opens (empty blocks come every few hundred ms).
    await firstMessages(n.url, '/v1/events?types=block', 3)
    const tip = ((await (await fetch(`${n.url}/v1/status`)).json()) as { height: number }).height
    const msgs = await firstMessages(n.url, '/v1/events?fromHeight=1&types=block', tip + 1)
    assert.equal(
      msgs.map((m) => m.id),
      Array.from({ length: tip + 1 }, (_, i) => String(i + 1)),
    )
    for (const m of msgs) {
      const b = JSON.parse(m.data)
      assert.ok(b.certificate.signatures.length >= 1, `block ${b.header.height} certificate`)
    }
    // Last-Event-ID (an EventSource's reconnect) wins over the URL's fromHeight.
    const again = await firstMessages(n.url, '/v1/events?fromHeight=1&types=block', 1, {
      'last-event-id': String(tip),
    })
    assert.is(again[0]!.id, String(tip + 1))
  } finally {
    await n.close()
  }
})

test.run()
