import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair, isCityError, type KeyPair, toHex, utf8 } from '@cityledger/core'
import { seedFor } from '@cityledger/core/testing'
import type { Libp2p, Stream } from '@libp2p/interface'
import { observerProtocolLimits, PROTOCOL, protocolLimits } from '../src/node/protocols.ts'
import {
  createManualClock,
  createP2P,
  DEFAULT_PENALTY_WEIGHTS,
  type P2P,
  type P2POptions,
  peerIdFromValidatorKey,
} from '../src/p2p/index.ts'
import { Inbox, waitConnected, waitForEvent } from '../src/p2p/testing.ts'
import { closed, frameHeader, rawPeer, writeAll } from './p2pRawPeer.ts'

// An allowed peer that holds partial frames, opens many streams and connections, or (as an observer)
// reaches for consensus. The receiver runs with the node's own protocol limits (protocolLimits) and a
// manual clock; every wait is on an event or on the receiver having seen a marker frame.
const keys: KeyPair[] = Array.from({ length: 3 }, (_, i) => generateKeyPair(seedFor(`p2p-limits-${i}`)))
const hex = (i: number): string => toHex(keys[i]!.publicKey)
const MiB = 1024 * 1024

function receiver(over: Partial<P2POptions> = {}, frameBytes = 12 * MiB): P2P {
  return createP2P({
    keyPair: keys[0]!,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    allowed: [hex(0), hex(1)],
    limits: protocolLimits({ consensusFrameBytes: frameBytes }),
    observerLimits: observerProtocolLimits({ consensusFrameBytes: frameBytes }),
    clock: createManualClock(),
    ...over,
  })
}

/** Registers the node's three protocols on `r`; the txs inbox doubles as the marker a test waits for. */
async function handleAll(r: P2P): Promise<{ consensus: Inbox; txs: Inbox }> {
  const consensus = new Inbox()
  const txs = new Inbox()
  await r.handle(PROTOCOL.consensus, consensus.handler)
  await r.handle(PROTOCOL.txs, txs.handler)
  await r.handle(PROTOCOL.sync, ({ data }) => data)
  return { consensus, txs }
}

test('4 sync streams announcing 60 MiB each are refused from the header, penalised, and end in a ban', async () => {
  const r = receiver()
  const attacker = await rawPeer(keys[1]!)
  try {
    await handleAll(r)
    await r.start()
    const banned = waitForEvent(r, 'peer:banned', (e) => e.peer === hex(1), 'r bans the trickler', 20_000)
    let frameTooLarge = 0
    let held = 0
    r.events.on('peer:penalized', (e) => {
      if (/frame too large on \/cityledger\/sync/.test(e.reason)) frameTooLarge++
      held = Math.max(held, r.bufferedBytes(hex(1)))
    })
    const conn = await attacker.dial(r.multiaddrs()[0]!)
    const streams: Stream[] = []
    for (let i = 0; i < 4; i++) streams.push(await conn.newStream(PROTOCOL.sync))
    for (const s of streams) {
      s.send(frameHeader(60 * MiB))
      await writeAll(s, new Uint8Array(256 * 1024)).catch(() => {})
    }
    await banned
    // Each announcement cost badFrame (25): the fourth reached the threshold of 100.
    assert.is(frameTooLarge, 4)
    assert.is(held, 0, 'nothing of the 60 MiB frames was buffered')
    assert.is(r.bufferedBytes(hex(1)), 0)
  } finally {
    await attacker.stop()
    await r.stop()
  }
})

test('partial consensus frames beyond the per-peer budget are cut off and penalised; one held too long is cut too', async () => {
  const clock = createManualClock()
  // A 2 MiB consensus limit keeps the test light; the budget is derived from the limits the same way.
  const r = receiver({ clock, partialFrames: { maxAgeMs: 30_000 } }, 2 * MiB)
  const attacker = await rawPeer(keys[1]!)
  try {
    const { txs } = await handleAll(r)
    await r.start()
    const budget = r.partialBudget(hex(1))
    assert.ok(budget >= 2 * MiB && budget < 4 * MiB, `budget ${budget}`)
    const reasons: string[] = []
    const weights: number[] = []
    let held = 0
    r.events.on('peer:penalized', (e) => {
      if (e.peer !== hex(1)) return
      reasons.push(e.reason)
      weights.push(e.weight)
      held = Math.max(held, r.bufferedBytes(hex(1)))
    })
    const conn = await attacker.dial(r.multiaddrs()[0]!)
    const a = await conn.newStream(PROTOCOL.consensus)
    const b = await conn.newStream(PROTOCOL.consensus)
    // Two frames of 2 MiB - 1, each left 64 KiB short: together they exceed the budget.
    for (const s of [a, b]) {
      s.send(frameHeader(2 * MiB - 1))
      await writeAll(s, new Uint8Array(2 * MiB - 64 * 1024)).catch(() => {})
    }
    // A complete frame on another protocol, after everything above on the same connection.
    const marker = await conn.newStream(PROTOCOL.txs)
    marker.send(new Uint8Array([...frameHeader(1), 7]))
    await txs.waitCount(1, 'marker after the partial frames')
    assert.equal(
      reasons.filter((x) => /partial frames/.test(x)),
      [`partial frames over budget on ${PROTOCOL.consensus}`],
    )
    // The slice that crossed the budget is the most it is ever exceeded by (SLICE_BYTES, 64 KiB).
    assert.ok(held <= budget + 64 * 1024, `held ${held} > budget ${budget} + one chunk`)
    const left = r.bufferedBytes(hex(1))
    assert.ok(left > 0 && left <= budget, `one partial frame still held: ${left}`)
    // The one left never completes: after maxAgeMs it is cut off as well.
    clock.advance(30_000)
    assert.equal(reasons.filter((x) => /partial frame/.test(x)).length, 2, reasons.join('; '))
    assert.match(reasons.at(-1)!, /partial frame held too long/)
    assert.is(r.bufferedBytes(hex(1)), 0)
    assert.equal(weights, [DEFAULT_PENALTY_WEIGHTS.partialFrame, DEFAULT_PENALTY_WEIGHTS.partialFrame])
  } finally {
    await attacker.stop()
    await r.stop()
  }
})

test('few streams per protocol: a third consensus stream on one connection is refused', async () => {
  const r = receiver()
  const attacker = await rawPeer(keys[1]!)
  try {
    const { consensus, txs } = await handleAll(r)
    await r.start()
    const conn = await attacker.dial(r.multiaddrs()[0]!)
    for (let i = 1; i <= 3; i++) {
      try {
        const s = await conn.newStream(PROTOCOL.consensus)
        s.send(Uint8Array.of(...frameHeader(1), i))
      } catch {
        // Refused at negotiation: as good as a reset.
      }
    }
    const marker = await conn.newStream(PROTOCOL.txs)
    marker.send(Uint8Array.of(...frameHeader(1), 7))
    await txs.waitCount(1, 'marker after the three streams')
    assert.equal(
      consensus.messages.map((m) => m.data[0]).sort(),
      [1, 2],
      'only the first two streams were served',
    )
    assert.is(protocolLimits({ consensusFrameBytes: MiB })[PROTOCOL.consensus]!.maxStreams, 2)
  } finally {
    await attacker.stop()
    await r.stop()
  }
})

test('one connection per peer key: a second connection with the same key replaces the first', async () => {
  const r = receiver()
  const attacker = await rawPeer(keys[1]!)
  try {
    const { txs } = await handleAll(r)
    await r.start()
    const first = await attacker.dial(r.multiaddrs()[0]!)
    await waitConnected(r, hex(1))
    const second = await attacker.dial(r.multiaddrs()[0]!)
    assert.is.not(first.id, second.id)
    await closed(first)
    // The survivor works and is the only one r keeps.
    const s = await second.newStream(PROTOCOL.txs)
    s.send(new Uint8Array([...frameHeader(1), 9]))
    await txs.waitCount(1, 'message on the second connection')
    assert.equal(
      r.peers().map((p) => [p.publicKey, p.addrs.length]),
      [[hex(1), 1]],
    )
  } finally {
    await attacker.stop()
    await r.stop()
  }
})

/** Resolves once `p` has at most one open connection to `peer`, waiting on close events. */
async function untilOneConnection(p: P2P, peer: string): Promise<void> {
  const node = (p as unknown as { node: Libp2p }).node
  for (;;) {
    const open = node.getConnections(peerIdFromValidatorKey(peer)).filter((c) => c.status === 'open')
    if (open.length <= 1) return
    await Promise.race(open.map((c) => closed(c)))
  }
}

test('two validators dialling each other at once keep exactly one connection and stay usable', async () => {
  const a = createP2P({
    keyPair: keys[0]!,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    allowed: [hex(0), hex(1)],
    reconnect: { initialMs: 20, maxMs: 200 },
  })
  const inbox = new Inbox()
  await a.handle(PROTOCOL.txs, inbox.handler)
  await a.start()
  const b = createP2P({
    keyPair: keys[1]!,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    allowed: [hex(0), hex(1)],
    bootstrap: [{ publicKey: hex(0), addrs: a.multiaddrs() }],
    reconnect: { initialMs: 20, maxMs: 200 },
  })
  try {
    await b.start()
    await waitConnected(b, hex(0))
    // a dials b as well while b's connection is open: one of the two must go, on both sides alike.
    const raw = (a as unknown as { node: { dial(ma: unknown, o: unknown): Promise<unknown> } }).node
    const { multiaddr } = await import('@multiformats/multiaddr')
    await raw.dial(multiaddr(b.multiaddrs()[0]!), { force: true }).catch(() => {})
    // Each side closes one of the two (the same one): wait on the close events, then use the survivor.
    await untilOneConnection(a, hex(1))
    await untilOneConnection(b, hex(0))
    await b.send(hex(0), PROTOCOL.txs, utf8.encode('after the duplicate'))
    await inbox.waitCount(1, 'message after the duplicate dial')
    assert.is(utf8.decode(inbox.messages[0]!.data), 'after the duplicate')
    for (const [x, y] of [
      [a, 1],
      [b, 0],
    ] as const) {
      const info = x.peers()
      assert.is(info.length, 1)
      assert.is(info[0]!.publicKey, hex(y))
      assert.is(info[0]!.addrs.length, 1, `${x.publicKey.slice(0, 8)} keeps one connection`)
    }
  } finally {
    await b.stop()
    await a.stop()
  }
})

test('observers get lower limits than validators and no consensus protocol', async () => {
  const r = receiver({ allowed: [hex(0), hex(1)], observers: [hex(2)] })
  let obs: P2P | undefined
  const obsInbox = new Inbox()
  try {
    const { consensus, txs } = await handleAll(r)
    await r.start()
    obs = createP2P({
      keyPair: keys[2]!,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      allowed: [hex(0)],
      bootstrap: [{ publicKey: hex(0), addrs: r.multiaddrs() }],
      // The observer is misconfigured with generous limits: r's own limits must hold.
      defaultLimits: { maxMessageBytes: 16 * MiB, ratePerSecond: 1000, burst: 1000 },
    })
    await obs.handle(PROTOCOL.consensus, obsInbox.handler)
    await obs.start()
    await waitConnected(obs, hex(0))
    await waitConnected(r, hex(2))
    const refused = waitForEvent(
      r,
      'peer:penalized',
      (e) => e.peer === hex(2) && /not open to observers/.test(e.reason),
      'observer penalised for opening consensus',
    )
    await obs.send(hex(0), PROTOCOL.consensus, Uint8Array.of(1, 2, 3)).catch(() => {})
    const p = await refused
    assert.is(p.weight, DEFAULT_PENALTY_WEIGHTS.notPermitted)
    assert.is(consensus.messages.length, 0)
    // Sync and txs work for observers, within their (lower) limits.
    assert.equal(
      await obs.request(hex(0), PROTOCOL.sync, Uint8Array.of(0x91, 0xa6)),
      Uint8Array.of(0x91, 0xa6),
    )
    await obs.send(hex(0), PROTOCOL.txs, utf8.encode('tx from an observer'))
    await txs.waitCount(1, 'observer tx')
    const lim = protocolLimits({ consensusFrameBytes: 12 * MiB })
    const olim = r.limitsOf(hex(2), PROTOCOL.txs)
    const vlim = r.limitsOf(hex(1), PROTOCOL.txs)
    assert.ok(olim && vlim)
    assert.ok(
      olim.ratePerSecond < vlim.ratePerSecond && (olim.bytesPerSecond ?? 0) < (vlim.bytesPerSecond ?? 0),
    )
    assert.is(r.limitsOf(hex(2), PROTOCOL.consensus), undefined)
    assert.equal(vlim, lim[PROTOCOL.txs])
    // r's consensus broadcasts skip the observer.
    assert.equal(await r.broadcast(PROTOCOL.consensus, Uint8Array.of(5)), [])
    try {
      await r.send(hex(2), PROTOCOL.consensus, Uint8Array.of(5))
      assert.unreachable('consensus to an observer must be refused')
    } catch (err) {
      assert.ok(isCityError(err, 'P2P_NOT_ALLOWED'), String(err))
    }
    assert.is(obsInbox.messages.length, 0)
  } finally {
    await obs?.stop()
    await r.stop()
  }
})

test.run()
