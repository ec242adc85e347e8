import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair, type KeyPair, toHex } from '@cityledger/core'
import { seedFor } from '@cityledger/core/testing'
import { PROTOCOL, protocolLimits } from '../src/node/protocols.ts'
import { createManualClock, createP2P, DEFAULT_PENALTY_WEIGHTS, type P2P } from '../src/p2p/index.ts'
import { Inbox, waitConnected, waitForEvent } from '../src/p2p/testing.ts'

// Floods from one allowed peer that stay under the message rate: the byte budget per peer and protocol
// must catch them. The receiver's clock is manual (no refill, no decay), so counts are exact.
const keys: KeyPair[] = Array.from({ length: 2 }, (_, i) => generateKeyPair(seedFor(`p2p-floods-${i}`)))
const hex = (i: number): string => toHex(keys[i]!.publicKey)
const KiB = 1024

async function pair(frameBytes: number): Promise<{ r: P2P; s: P2P; inbox: Inbox }> {
  const inbox = new Inbox()
  const r = createP2P({
    keyPair: keys[0]!,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    allowed: [hex(0), hex(1)],
    limits: protocolLimits({ consensusFrameBytes: frameBytes }),
    clock: createManualClock(),
  })
  await r.handle(PROTOCOL.consensus, inbox.handler)
  await r.start()
  // The sender has no byte budget of its own: it floods as fast as its stream drains.
  const s = createP2P({
    keyPair: keys[1]!,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    allowed: [hex(0), hex(1)],
    bootstrap: [{ publicKey: hex(0), addrs: r.multiaddrs() }],
    limits: { [PROTOCOL.consensus]: { maxMessageBytes: frameBytes, ratePerSecond: 1e6, burst: 1e6 } },
    maxPendingSends: 1000,
  })
  await s.start()
  await waitConnected(s, hex(0))
  await waitConnected(r, hex(1))
  return { r, s, inbox }
}

test('300 fake maximum-size pre-prepares from one allowed peer: 3 delivered, the rest dropped unbuffered, then a ban', async () => {
  // A 64 KiB consensus limit stands in for the real one (the limits scale with it).
  const frame = 64 * KiB
  const { r, s, inbox } = await pair(frame)
  try {
    let dropped = 0
    let held = 0
    r.events.on('peer:penalized', (e) => {
      if (e.peer !== hex(1)) return
      assert.match(e.reason, /byte budget exceeded on \/cityledger\/consensus/)
      assert.is(e.weight, DEFAULT_PENALTY_WEIGHTS.rateLimited)
      dropped++
      held = Math.max(held, r.bufferedBytes(hex(1)))
    })
    const banned = waitForEvent(r, 'peer:banned', (e) => e.peer === hex(1), 'r bans the flooder', 15_000)
    const fake = new Uint8Array(frame).fill(0xee)
    await Promise.allSettled(Array.from({ length: 300 }, () => s.send(hex(0), PROTOCOL.consensus, fake)))
    await banned
    // Far under the message rate (2000/s, burst 4000), yet only the byte burst (3 frames) got through.
    assert.is(inbox.messages.length, 3)
    assert.is(dropped, 100, 'one point per dropped frame; the 100th reaches the threshold')
    // A dropped frame is read past, never kept: at most one chunk of the frame being skipped is in memory.
    assert.ok(held <= 64 * KiB, `held ${held}`)
    assert.ok(!r.peers().some((p) => p.publicKey === hex(1)))
    assert.is(protocolLimits({ consensusFrameBytes: frame })[PROTOCOL.consensus]!.burstBytes, 3 * frame)
  } finally {
    await s.stop()
    await r.stop()
  }
})

test('the byte budget refills with time: a peer that slows down is served again without more penalties', async () => {
  const frame = 64 * KiB
  const clock = createManualClock()
  const inbox = new Inbox()
  const r = createP2P({
    keyPair: keys[0]!,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    allowed: [hex(0), hex(1)],
    limits: protocolLimits({ consensusFrameBytes: frame }),
    clock,
  })
  await r.handle(PROTOCOL.consensus, inbox.handler)
  await r.start()
  const s = createP2P({
    keyPair: keys[1]!,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    allowed: [hex(0), hex(1)],
    bootstrap: [{ publicKey: hex(0), addrs: r.multiaddrs() }],
    limits: { [PROTOCOL.consensus]: { maxMessageBytes: frame, ratePerSecond: 1e6, burst: 1e6 } },
  })
  try {
    await s.start()
    await waitConnected(s, hex(0))
    let penalties = 0
    r.events.on('peer:penalized', () => penalties++)
    const fake = new Uint8Array(frame)
    for (let i = 0; i < 3; i++) await s.send(hex(0), PROTOCOL.consensus, fake)
    await inbox.waitCount(3, 'the burst')
    // The bucket is empty now; half a second at 6 frames per second buys 3 more.
    clock.advance(500)
    for (let i = 0; i < 3; i++) await s.send(hex(0), PROTOCOL.consensus, fake)
    await inbox.waitCount(6, 'after the refill')
    assert.is(penalties, 0)
  } finally {
    await s.stop()
    await r.stop()
  }
})

test.run()
