import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CityError, generateKeyPair, isCityError, type KeyPair, toHex, utf8 } from '@cityledger/core'
import { Rng, seedFor, testSeed } from '@cityledger/core/testing'
import {
  createManualClock,
  createP2P,
  DEFAULT_PENALTY_WEIGHTS,
  type P2P,
  type P2POptions,
} from '../src/p2p/index.ts'
import { Inbox, waitConnected, waitForEvent } from '../src/p2p/testing.ts'

// Misbehaving peers against real libp2p nodes: every wait is on an event, timeouts only guard failures.
const SEED = testSeed(20260503)
const CONSENSUS = '/cityledger/consensus/1'
const SYNC = '/cityledger/sync/1'
const keys: KeyPair[] = Array.from({ length: 2 }, (_, i) => generateKeyPair(seedFor(`p2p-abuse-${i}`)))
const hex = (i: number): string => toHex(keys[i]!.publicKey)
const ALL = keys.map((k) => toHex(k.publicKey))

function node(i: number, over: Partial<P2POptions> = {}): P2P {
  return createP2P({
    keyPair: keys[i]!,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    allowed: ALL,
    limits: {
      [CONSENSUS]: { maxMessageBytes: 1024, ratePerSecond: 1000, burst: 1000 },
      [SYNC]: { maxMessageBytes: 1024, ratePerSecond: 1000, burst: 1000 },
    },
    reconnect: { initialMs: 20, maxMs: 200 },
    ...over,
  })
}

/** Receiver r (node 0) and sender s (node 1, bootstrapping to r), connected. */
async function pair(
  rOver: Partial<P2POptions>,
  sOver: Partial<P2POptions>,
  setup: (r: P2P) => Promise<void>,
): Promise<[P2P, P2P]> {
  const r = node(0, rOver)
  await setup(r)
  await r.start()
  const s = node(1, { bootstrap: [{ publicKey: r.publicKey, addrs: r.multiaddrs() }], ...sOver })
  await s.start()
  await waitConnected(s, hex(0))
  await waitConnected(r, hex(1))
  return [r, s]
}

test('an oversized frame is refused from its header, the stream reset and the sender penalised', async () => {
  const nodes: P2P[] = []
  try {
    const inbox = new Inbox()
    // The sender is misconfigured with a larger limit than the receiver enforces. The receiver's clock
    // stands still so the penalty can be compared exactly (no decay).
    const [r, s] = await pair(
      { clock: createManualClock() },
      { limits: { [CONSENSUS]: { maxMessageBytes: 1 << 20, ratePerSecond: 1000, burst: 1000 } } },
      async (r) => {
        await r.handle(CONSENSUS, inbox.handler)
        await r.handle(SYNC, ({ data }) => {
          // A strict decoder throwing a CityError marked `penalize` is reported like `penalize(peer, code)`.
          if (data[0] === 0xff) throw new CityError('BAD_SYNC_REQUEST', 'undecodable', {}, true)
          return data
        })
      },
    )
    nodes.push(r, s)
    const penalised = waitForEvent(r, 'peer:penalized', (e) => e.peer === hex(1), 'r penalises s')
    await s.send(hex(0), CONSENSUS, new Uint8Array(4096))
    const p = await penalised
    assert.match(p.reason, /frame too large/)
    assert.is(p.weight, DEFAULT_PENALTY_WEIGHTS.badFrame)
    assert.is(r.score(hex(1)), DEFAULT_PENALTY_WEIGHTS.badFrame)
    assert.is(inbox.messages.length, 0)
    // One oversized frame is not enough to ban: the peer stays connected and usable.
    assert.equal(
      r.peers().map((x) => x.publicKey),
      [hex(1)],
    )
    assert.is(utf8.decode(await s.request(hex(0), SYNC, utf8.encode('still here'))), 'still here')
    const thrown = waitForEvent(
      r,
      'peer:penalized',
      (e) => e.peer === hex(1) && /BAD_SYNC_REQUEST/.test(e.reason),
      'penalty from a thrown CityError',
    )
    try {
      await s.request(hex(0), SYNC, Uint8Array.of(0xff))
      assert.unreachable('no answer expected')
    } catch (err) {
      assert.ok(isCityError(err, 'P2P_NO_RESPONSE'), String(err))
    }
    assert.is((await thrown).weight, DEFAULT_PENALTY_WEIGHTS.default)
    assert.is(r.score(hex(1)), DEFAULT_PENALTY_WEIGHTS.badFrame + DEFAULT_PENALTY_WEIGHTS.default)
    // Our own node never sends what its limit refuses.
    try {
      await s.send(hex(0), CONSENSUS, new Uint8Array((1 << 20) + 1))
      assert.unreachable('should refuse')
    } catch (err) {
      assert.ok(isCityError(err, 'P2P_MESSAGE_TOO_LARGE'))
    }
  } finally {
    await Promise.all(nodes.map((n) => n.stop()))
  }
})

test(`garbage frames reported by the handler get the sender banned, disconnected and refused (seed ${SEED})`, async () => {
  const rng = new Rng(SEED)
  const nodes: P2P[] = []
  try {
    let accepted = 0
    let r!: P2P
    // r's clock stands still: no decay, so exactly ten penalties of 10 reach the threshold.
    const [rr, s] = await pair(
      { clock: createManualClock(), penalties: { threshold: 100, halfLifeMs: 60_000, banMs: 600_000 } },
      {},
      async (x) => {
        // A strict decoder stands in for the node's codec: anything not starting with 0x01 is garbage.
        await x.handle(CONSENSUS, ({ peer, data }) => {
          if (data[0] === 0x01) accepted++
          else r.penalize(peer, 'undecodable consensus message')
        })
      },
    )
    r = rr
    nodes.push(r, s)
    const banned = waitForEvent(r, 'peer:banned', (e) => e.peer === hex(1), 'r bans s')
    const sLost = waitForEvent(s, 'peer:disconnect', (e) => e.peer === hex(0), 's loses r')
    await s.send(hex(0), CONSENSUS, Uint8Array.of(0x01, 0x02))
    // Ten garbage messages at the default weight (10) reach the threshold of 100.
    const garbage = Array.from({ length: 10 }, () => {
      const g = rng.bytes(rng.range(1, 900))
      if (g[0] === 0x01) g[0] = 0x02
      return g
    })
    await Promise.allSettled(garbage.map((g) => s.send(hex(0), CONSENSUS, g)))
    const ban = await banned
    assert.is(ban.reason, 'undecodable consensus message')
    await sLost
    assert.is(accepted, 1, `seed ${SEED}`)
    assert.ok(!r.peers().some((p) => p.publicKey === hex(1)))
    // s keeps redialling r (it is a bootstrap peer) and r refuses it for the ban's duration.
    let sConnects = 0
    s.events.on('peer:connect', () => sConnects++)
    const refused = await waitForEvent(r, 'connection:denied', (e) => e.peer === hex(1), 'r refuses banned s')
    assert.is(refused.reason, 'banned')
    // Refused redials count as failures, so s backs off instead of reconnecting in a tight loop.
    await waitForEvent(s, 'dial:failed', (e) => e.peer === hex(0) && e.attempt >= 2, 's backs off against r')
    assert.is(sConnects, 0)
    assert.equal(r.peers(), [])
    assert.equal(s.peers(), [])
  } finally {
    await Promise.all(nodes.map((n) => n.stop()))
  }
})

test('a flood beyond the rate limit is dropped, penalised per message, and ends in a ban', async () => {
  const nodes: P2P[] = []
  try {
    const inbox = new Inbox()
    // The receiver's clock stands still, so no token refills and no penalty decays during the flood.
    const clock = createManualClock()
    const [r, s] = await pair(
      {
        clock,
        limits: { [CONSENSUS]: { maxMessageBytes: 1024, ratePerSecond: 10, burst: 5 } },
        penalties: { threshold: 100 },
      },
      {},
      (r) => r.handle(CONSENSUS, inbox.handler),
    )
    nodes.push(r, s)
    let rateLimited = 0
    r.events.on('peer:penalized', (e) => {
      if (e.peer === hex(1) && /rate-limited/.test(e.reason)) rateLimited++
    })
    const banned = waitForEvent(r, 'peer:banned', (e) => e.peer === hex(1), 'r bans flooding s')
    const rLost = waitForEvent(r, 'peer:disconnect', (e) => e.peer === hex(1), 'r drops s')
    await Promise.allSettled(
      Array.from({ length: 300 }, (_, i) => s.send(hex(0), CONSENSUS, utf8.encode(`m${i}`))),
    )
    const ban = await banned
    assert.match(ban.reason, /rate-limited/)
    await rLost
    // Burst of 5 passes; every dropped message costs 1; the 100th drop crosses the threshold.
    assert.is(rateLimited, 100)
    assert.ok(inbox.messages.length <= 5, `delivered ${inbox.messages.length} > burst`)
    assert.ok(!r.peers().some((p) => p.publicKey === hex(1)))
  } finally {
    await Promise.all(nodes.map((n) => n.stop()))
  }
})

test('penalties from a peer that behaves again decay away instead of adding up to a ban', async () => {
  const nodes: P2P[] = []
  try {
    const clock = createManualClock()
    const [r, s] = await pair({ clock, penalties: { threshold: 100, halfLifeMs: 1000 } }, {}, (r) =>
      r.handle(CONSENSUS, () => {}),
    )
    nodes.push(r, s)
    // 9 x 10 = 90 just under the threshold, then an hour later another 9 x 10: no ban.
    for (let i = 0; i < 9; i++) r.penalize(hex(1), 'late vote')
    assert.is(r.score(hex(1)), 90)
    clock.advance(3_600_000)
    assert.ok(r.score(hex(1)) < 1e-3)
    for (let i = 0; i < 9; i++) r.penalize(hex(1), 'late vote')
    assert.ok(r.score(hex(1)) < 100)
    assert.equal(
      r.peers().map((p) => p.publicKey),
      [hex(1)],
    )
  } finally {
    await Promise.all(nodes.map((n) => n.stop()))
  }
})

test.run()
