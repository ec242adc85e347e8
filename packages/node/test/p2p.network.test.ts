import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { equalBytes, generateKeyPair, isCityError, type KeyPair, toHex, utf8 } from '@cityledger/core'
import { Rng, seedFor, testSeed } from '@cityledger/core/testing'
import { createManualClock, createP2P, type P2P, type P2POptions } from '../src/p2p/index.ts'
import { deferred, Inbox, waitConnected, waitForEvent } from '../src/p2p/testing.ts'

// Real libp2p nodes on 127.0.0.1, random ports. Every wait is on an event; timeouts only guard failures.
const SEED = testSeed(20260502)
const CONSENSUS = '/cityledger/consensus/1'
const TXS = '/cityledger/txs/1'
const SYNC = '/cityledger/sync/1'
const keys: KeyPair[] = Array.from({ length: 6 }, (_, i) => generateKeyPair(seedFor(`p2p-network-${i}`)))
const hex = (i: number): string => toHex(keys[i]!.publicKey)
const VALIDATORS = [0, 1, 2, 3].map(hex)

function node(i: number, over: Partial<P2POptions> = {}): P2P {
  return createP2P({
    keyPair: keys[i]!,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    allowed: VALIDATORS,
    limits: {
      [CONSENSUS]: { maxMessageBytes: 64 * 1024, ratePerSecond: 1000, burst: 1000 },
      [TXS]: { maxMessageBytes: 64 * 1024, ratePerSecond: 1000, burst: 1000 },
      [SYNC]: { maxMessageBytes: 256 * 1024, ratePerSecond: 100, burst: 100 },
    },
    reconnect: { initialMs: 20, maxMs: 200 },
    ...over,
  })
}

const boot = (p: P2P) => ({ publicKey: p.publicKey, addrs: p.multiaddrs() })

async function stopAll(nodes: (P2P | undefined)[]): Promise<void> {
  await Promise.all(nodes.map((n) => n?.stop()))
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p
  } catch (err) {
    assert.ok(isCityError(err, code), `expected ${code}, got ${isCityError(err) ? err.code : String(err)}`)
    return
  }
  assert.unreachable(`expected ${code}, but it resolved`)
}

test(`three validators connect, exchange on two protocols in order, and broadcast reaches all (seed ${SEED})`, async () => {
  const rng = new Rng(SEED)
  const nodes: P2P[] = []
  try {
    const inboxes = [0, 1, 2].map(() => ({ consensus: new Inbox(), txs: new Inbox() }))
    const a = node(0)
    nodes.push(a)
    await a.handle(CONSENSUS, inboxes[0]!.consensus.handler)
    await a.handle(TXS, inboxes[0]!.txs.handler)
    await a.start()
    const b = node(1, { bootstrap: [boot(a)] })
    nodes.push(b)
    await b.handle(CONSENSUS, inboxes[1]!.consensus.handler)
    await b.handle(TXS, inboxes[1]!.txs.handler)
    await b.start()
    const c = node(2, { bootstrap: [boot(a), boot(b)] })
    nodes.push(c)
    // Handlers registered after start work too.
    await c.start()
    await c.handle(CONSENSUS, inboxes[2]!.consensus.handler)
    await c.handle(TXS, inboxes[2]!.txs.handler)

    for (const [x, y] of [
      [0, 1],
      [0, 2],
      [1, 0],
      [1, 2],
      [2, 0],
      [2, 1],
    ] as const)
      await waitConnected(nodes[x]!, hex(y))
    assert.equal(
      a.peers().map((p) => p.publicKey),
      [hex(1), hex(2)].sort(),
    )
    assert.equal(
      c.peers().map((p) => p.publicKey),
      [hex(0), hex(1)].sort(),
    )
    assert.ok(c.peers().every((p) => p.bootstrap && p.addrs.length > 0))

    // a -> b on consensus: many messages arrive complete and in order.
    const sent = Array.from({ length: 60 }, (_, i) =>
      rng.bytes(rng.pick([0, 1, 100, 5000, rng.int(64 * 1024)])).map((v, j) => (j === 0 ? i : v)),
    )
    for (const m of sent) await a.send(hex(1), CONSENSUS, m)
    // c -> a on txs, in parallel with the above.
    const txs = Array.from({ length: 10 }, (_, i) => utf8.encode(`tx-${i}`))
    await Promise.all(txs.map((t) => c.send(hex(0), TXS, t)))
    await inboxes[1]!.consensus.waitCount(sent.length, 'a -> b consensus')
    await inboxes[0]!.txs.waitCount(txs.length, 'c -> a txs')
    const got = inboxes[1]!.consensus.messages
    assert.is(got.length, sent.length)
    got.forEach((m, i) => {
      assert.is(m.peer, hex(0))
      assert.is(m.protocol, CONSENSUS)
      assert.ok(equalBytes(m.data, sent[i]!), `seed ${SEED}: message ${i} differs`)
    })
    assert.equal(
      inboxes[0]!.txs.messages.map((m) => utf8.decode(m.data)),
      txs.map((t) => utf8.decode(t)),
    )
    assert.ok(inboxes[0]!.txs.messages.every((m) => m.peer === hex(2) && m.protocol === TXS))
    // Protocols are separate: nothing leaked across.
    assert.is(inboxes[1]!.txs.messages.length, 0)
    assert.is(inboxes[0]!.consensus.messages.length, 0)

    // Broadcast from b reaches a and c, on the protocol it was sent on.
    const vote = utf8.encode('prepare h=7 v=0')
    const reached = await b.broadcast(CONSENSUS, vote)
    assert.equal(reached.sort(), [hex(0), hex(2)].sort())
    await inboxes[0]!.consensus.waitCount(1, 'broadcast -> a')
    await inboxes[2]!.consensus.waitCount(1, 'broadcast -> c')
    assert.ok(equalBytes(inboxes[0]!.consensus.messages[0]!.data, vote))
    assert.is(inboxes[2]!.consensus.messages[0]!.peer, hex(1))

    // Sending to a validator we are not connected to fails fast, without dialing.
    await rejectsWith(a.send(hex(3), CONSENSUS, vote), 'P2P_NOT_CONNECTED')
    await rejectsWith(a.send(hex(1), CONSENSUS, new Uint8Array(64 * 1024 + 1)), 'P2P_MESSAGE_TOO_LARGE')
  } finally {
    await stopAll(nodes)
  }
})

test('request/response: answers, missing answers, unknown protocols, oversized answers, timeout and abort', async () => {
  const nodes: P2P[] = []
  try {
    const held = deferred()
    const hangEntered = deferred()
    const a = node(0)
    nodes.push(a)
    await a.handle(SYNC, async ({ data }) => {
      const text = utf8.decode(data)
      if (text === 'silent') return undefined
      if (text === 'huge') return new Uint8Array(200 * 1024)
      if (text === 'hang') {
        hangEntered.resolve()
        await held.promise
        return utf8.encode('too late')
      }
      return Uint8Array.from(data).reverse()
    })
    await a.start()
    const clock = createManualClock()
    // b: a manual clock (timeouts move only when told) and a smaller response limit than a's.
    const b = node(1, {
      bootstrap: [boot(a)],
      clock,
      limits: { [SYNC]: { maxMessageBytes: 100 * 1024, ratePerSecond: 100, burst: 100 } },
    })
    nodes.push(b)
    await b.handle(TXS, () => {})
    await b.start()
    await waitConnected(b, hex(0))

    const answer = await b.request(hex(0), SYNC, utf8.encode('block 42'))
    assert.is(utf8.decode(answer), '24 kcolb')
    // Concurrent requests each get their own answer.
    const many = await Promise.all(
      Array.from({ length: 20 }, (_, i) => b.request(hex(0), SYNC, utf8.encode(`r${i}`))),
    )
    assert.equal(
      many.map((r) => utf8.decode(r)),
      Array.from({ length: 20 }, (_, i) => [...`r${i}`].reverse().join('')),
    )

    await rejectsWith(b.request(hex(0), SYNC, utf8.encode('silent')), 'P2P_NO_RESPONSE')
    await rejectsWith(b.request(hex(0), TXS, utf8.encode('x')), 'P2P_STREAM_ERROR') // a does not serve TXS
    // An answer over b's limit is refused from its header and a is penalised.
    const penalised = waitForEvent(
      b,
      'peer:penalized',
      (e) => e.peer === hex(0),
      'b penalises a for a huge answer',
    )
    await rejectsWith(b.request(hex(0), SYNC, utf8.encode('huge')), 'P2P_FRAME_TOO_LARGE')
    assert.match((await penalised).reason, /P2P_FRAME_TOO_LARGE/)

    // Timeout: the handler holds the answer; b's clock passes the deadline; the request fails cleanly.
    const hanging = b.request(hex(0), SYNC, utf8.encode('hang'), { timeoutMs: 5000 })
    hanging.catch(() => {})
    await hangEntered.promise
    clock.advance(4999)
    clock.advance(1)
    await rejectsWith(hanging, 'P2P_TIMEOUT')
    held.resolve()

    // Caller abort.
    const ac = new AbortController()
    const aborted = b.request(hex(0), SYNC, utf8.encode('silent-but-slow'), { signal: ac.signal })
    ac.abort()
    await rejectsWith(aborted, 'P2P_ABORTED')

    // The connection is still healthy afterwards.
    assert.is(utf8.decode(await b.request(hex(0), SYNC, utf8.encode('ok'))), 'ko')
    assert.equal(
      b.peers().map((p) => p.publicKey),
      [hex(0)],
    )
  } finally {
    await stopAll(nodes)
  }
})

test('a node whose key is not allowed cannot connect and is never listed', async () => {
  const nodes: P2P[] = []
  try {
    const a = node(0)
    nodes.push(a)
    await a.handle(CONSENSUS, () => {})
    await a.start()
    // The stranger (key 4) trusts a, but a does not list it.
    const denied = waitForEvent(a, 'connection:denied', (e) => e.peer === hex(4), 'a denies the stranger')
    const stranger = node(4, { allowed: [hex(0)], bootstrap: [boot(a)] })
    nodes.push(stranger)
    const failed = waitForEvent(stranger, 'dial:failed', (e) => e.peer === hex(0), 'stranger dial fails')
    // The dialer finishes Noise before the listener gates it: it must still never report a connection.
    let strangerConnects = 0
    stranger.events.on('peer:connect', () => strangerConnects++)
    await stranger.start()
    const d = await denied
    assert.is(d.reason, 'not-allowed')
    assert.is(d.direction, 'inbound')
    await failed
    // A second failure shows the stranger keeps being refused on retries too.
    await waitForEvent(
      stranger,
      'dial:failed',
      (e) => e.peer === hex(0) && e.attempt >= 1,
      'stranger retry fails',
    )
    assert.equal(a.peers(), [])
    assert.equal(stranger.peers(), [])
    assert.is(strangerConnects, 0)
    await rejectsWith(a.send(hex(4), CONSENSUS, new Uint8Array(1)), 'P2P_NOT_ALLOWED')
    await rejectsWith(stranger.send(hex(0), CONSENSUS, new Uint8Array(1)), 'P2P_NOT_CONNECTED')
  } finally {
    await stopAll(nodes)
  }
})

test('a bootstrap peer that stops and restarts on the same port is reconnected with backoff', async () => {
  const nodes: (P2P | undefined)[] = []
  try {
    const inbox = new Inbox()
    const b = node(1)
    nodes.push(b)
    await b.start()
    const bAddr = b.multiaddrs()[0]!
    const listenAddr = bAddr.slice(0, bAddr.indexOf('/p2p/'))
    const a = node(0, {
      bootstrap: [{ publicKey: hex(1), addrs: [listenAddr] }],
      reconnect: { initialMs: 20, maxMs: 160 },
    })
    nodes.push(a)
    const failures: number[] = []
    a.events.on('dial:failed', (e) => failures.push(e.retryInMs))
    await a.start()
    await waitConnected(a, hex(1))

    const dropped = waitForEvent(a, 'peer:disconnect', (e) => e.peer === hex(1), 'a sees b leave')
    await b.stop()
    await dropped
    assert.equal(a.peers(), [])
    // While b is down a's redials fail; wait for a few so the backoff has grown.
    await waitForEvent(
      a,
      'dial:failed',
      (e) => e.peer === hex(1) && e.attempt >= 3,
      'a retries b with backoff',
    )

    const back = waitForEvent(a, 'peer:connect', (e) => e.peer === hex(1), 'a reconnects to restarted b')
    const b2 = node(1, { listen: [listenAddr] }) // same key, same port, no bootstrap: a must do the redial
    nodes.push(b2)
    await b2.handle(CONSENSUS, inbox.handler)
    await b2.start()
    await back
    assert.equal(
      a.peers().map((p) => p.publicKey),
      [hex(1)],
    )
    await a.send(hex(1), CONSENSUS, utf8.encode('hello again'))
    await inbox.waitCount(1, 'a -> restarted b')
    assert.is(utf8.decode(inbox.messages[0]!.data), 'hello again')

    // Backoff grew exponentially and stayed under the cap.
    assert.ok(failures.length >= 4, `failures: ${failures}`)
    for (let i = 1; i < failures.length; i++)
      assert.ok(failures[i]! >= failures[i - 1]!, `backoff not monotonic: ${failures}`)
    assert.equal(failures.slice(0, 4), [20, 40, 80, 160])
    assert.ok(
      failures.every((d) => d <= 160),
      `backoff above cap: ${failures}`,
    )
  } finally {
    await stopAll(nodes)
  }
})

test.run()
