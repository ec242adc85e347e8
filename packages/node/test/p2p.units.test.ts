import { pino } from 'pino'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { equalBytes, generateKeyPair, isCityError, toHex } from '@cityledger/core'
import { Rng, seedFor, testSeed } from '@cityledger/core/testing'
import {
  backoffDelay,
  createManualClock,
  createP2P,
  DEFAULT_BACKOFF,
  encodeFrame,
  FrameDecoder,
  PeerScores,
  peerIdFromValidatorKey,
  TokenBucket,
  validatorKeyOfPeerId,
} from '../src/p2p/index.ts'

const SEED = testSeed(20260501)

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return isCityError(err) ? err.code : `non-city error: ${String(err)}`
  }
  return undefined
}

test('manual clock fires timers in due order, including timers set by timers', () => {
  const clock = createManualClock(1000)
  const fired: string[] = []
  clock.setTimeout(() => fired.push('b@30'), 30)
  const h = clock.setTimeout(() => fired.push('never'), 20)
  clock.setTimeout(() => {
    fired.push(`a@${clock.now()}`)
    clock.setTimeout(() => fired.push(`c@${clock.now()}`), 5)
  }, 10)
  clock.clearTimeout(h)
  clock.advance(9)
  assert.equal(fired, [])
  clock.advance(100)
  assert.equal(fired, ['a@1010', 'c@1015', 'b@30'])
  assert.is(clock.now(), 1109)
  assert.is(clock.pending(), 0)
})

test(`frames: random payloads split at random points decode to the same payloads (seed ${SEED})`, () => {
  const rng = new Rng(SEED)
  for (let round = 0; round < 200; round++) {
    const payloads = Array.from({ length: rng.range(1, 8) }, () =>
      rng.bytes(rng.pick([0, 1, 127, 128, 300, rng.int(5000)])),
    )
    const wire = new Uint8Array(payloads.reduce((n, p) => n + encodeFrame(p).length, 0))
    let off = 0
    for (const p of payloads) {
      const f = encodeFrame(p)
      wire.set(f, off)
      off += f.length
    }
    const decoder = new FrameDecoder(5000)
    const got: Uint8Array[] = []
    for (let i = 0; i < wire.length; ) {
      const n = rng.range(1, 700)
      const chunk = Uint8Array.from(wire.subarray(i, i + n))
      decoder.push(chunk, (f) => got.push(f))
      chunk.fill(0xee) // the decoder must not keep views of chunks it was given
      i += n
    }
    assert.is(got.length, payloads.length, `seed ${SEED} round ${round}`)
    got.forEach((g, i) => {
      assert.ok(equalBytes(g, payloads[i]!), `seed ${SEED} round ${round} frame ${i}`)
    })
    assert.is(decoder.buffered, 0)
  }
})

test('frames: varint header encoding matches LEB128', () => {
  assert.equal([...encodeFrame(new Uint8Array(0))], [0])
  assert.equal([...encodeFrame(new Uint8Array(127)).subarray(0, 1)], [127])
  assert.equal([...encodeFrame(new Uint8Array(128)).subarray(0, 2)], [0x80, 0x01])
  assert.equal([...encodeFrame(new Uint8Array(300)).subarray(0, 2)], [0xac, 0x02])
})

test('frames: an oversized length is refused from the header alone, before any payload', () => {
  const decoder = new FrameDecoder(1000)
  const frames: Uint8Array[] = []
  // A good frame, then the first header byte of a 1001-byte frame: only the header is seen.
  const good = encodeFrame(new Uint8Array([1, 2, 3]))
  const bad = encodeFrame(new Uint8Array(1001))
  decoder.push(good, (f) => frames.push(f))
  let code: string | undefined
  let penalize = false
  try {
    decoder.push(bad.subarray(0, 2), (f) => frames.push(f))
  } catch (err) {
    code = isCityError(err) ? err.code : undefined
    penalize = isCityError(err) && err.penalize
  }
  assert.is(code, 'P2P_FRAME_TOO_LARGE')
  assert.ok(penalize)
  assert.is(frames.length, 1)
  assert.is(decoder.buffered, 0)
  // Poisoned: further input is refused.
  assert.is(
    codeOf(() => decoder.push(new Uint8Array([0]), () => {})),
    'P2P_BAD_FRAME',
  )
  // A 4 GiB claim is refused after the bits seen exceed the limit, without waiting for the whole header.
  assert.is(
    codeOf(() => new FrameDecoder(1000).push(new Uint8Array([0xff, 0xff]), () => {})),
    'P2P_FRAME_TOO_LARGE',
  )
})

test('frames: non-minimal and over-long headers are malformed', () => {
  assert.is(
    codeOf(() => new FrameDecoder(1 << 20).push(new Uint8Array([0x81, 0x00]), () => {})),
    'P2P_BAD_FRAME',
  )
  assert.is(
    codeOf(() =>
      new FrameDecoder(0xffffffff).push(new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), () => {}),
    ),
    'P2P_BAD_FRAME',
  )
  assert.is(
    codeOf(() => new FrameDecoder(-1)),
    'P2P_BAD_OPTIONS',
  )
})

test('token bucket: burst, refill at the configured rate, never above burst', () => {
  const clock = createManualClock()
  const b = new TokenBucket(10, 5, clock) // 10/s = one token per 100 ms
  for (let i = 0; i < 5; i++) assert.ok(b.tryTake(), `burst token ${i}`)
  assert.not.ok(b.tryTake())
  clock.advance(99)
  assert.not.ok(b.tryTake())
  clock.advance(1)
  assert.ok(b.tryTake())
  assert.not.ok(b.tryTake())
  clock.advance(10_000)
  assert.is(b.available(), 5)
  assert.not.ok(b.tryTake(6))
  assert.ok(b.tryTake(5))
  assert.is(
    codeOf(() => new TokenBucket(1, 0, clock)),
    'P2P_BAD_OPTIONS',
  )
  assert.is(
    codeOf(() => new TokenBucket(Number.NaN, 1, clock)),
    'P2P_BAD_OPTIONS',
  )
})

test('token bucket: a clock stepping backwards neither mints nor burns tokens', () => {
  let now = 1000
  const clock = { now: () => now, setTimeout: () => 0, clearTimeout: () => {} }
  const b = new TokenBucket(1000, 2, clock)
  assert.ok(b.tryTake(2))
  now = 0
  assert.not.ok(b.tryTake())
  now = 1000
  assert.not.ok(b.tryTake())
  now = 1001
  assert.ok(b.tryTake())
})

test('penalties: scores halve every half-life; the threshold bans for banMs, then the peer is clean', () => {
  const clock = createManualClock()
  const s = new PeerScores({ threshold: 100, halfLifeMs: 1000, banMs: 5000 }, clock)
  assert.is(s.add('p', 60).score, 60)
  clock.advance(1000)
  assert.ok(Math.abs(s.score('p') - 30) < 1e-9)
  clock.advance(1000)
  assert.ok(Math.abs(s.score('p') - 15) < 1e-9)
  // 15 + 60 = 75: still under.
  const r1 = s.add('p', 60)
  assert.not.ok(r1.banned)
  assert.ok(Math.abs(r1.score - 75) < 1e-9)
  const r2 = s.add('p', 30)
  assert.ok(r2.banned)
  assert.is(r2.bannedUntil, 2000 + 5000)
  assert.ok(s.isBanned('p'))
  // Penalties while banned do not extend or re-trigger the ban.
  assert.not.ok(s.add('p', 1000).banned)
  clock.advance(4999)
  assert.ok(s.isBanned('p'))
  clock.advance(1)
  assert.not.ok(s.isBanned('p'))
  assert.is(s.score('p'), 0)
  // Other peers are independent.
  assert.is(s.score('q'), 0)
  assert.is(
    codeOf(() => s.add('q', 0)),
    'P2P_BAD_OPTIONS',
  )
  assert.is(
    codeOf(() => new PeerScores({ halfLifeMs: 0 }, clock)),
    'P2P_BAD_OPTIONS',
  )
})

test('penalties: many small penalties spread out in time never reach the threshold', () => {
  const clock = createManualClock()
  const s = new PeerScores({ threshold: 100, halfLifeMs: 1000, banMs: 5000 }, clock)
  // One point every 100 ms settles near 1 / (1 - 2^-0.1) ~ 14.9, far below 100.
  for (let i = 0; i < 1000; i++) {
    assert.not.ok(s.add('p', 1).banned)
    clock.advance(100)
  }
  assert.ok(s.score('p') < 16)
})

test('backoff: exponential from initialMs, capped at maxMs', () => {
  const policy = { initialMs: 100, maxMs: 1000, factor: 2 }
  assert.equal(
    [0, 1, 2, 3, 4, 5, 20].map((a) => backoffDelay(a, policy)),
    [100, 200, 400, 800, 1000, 1000, 1000],
  )
  assert.is(backoffDelay(0, DEFAULT_BACKOFF), DEFAULT_BACKOFF.initialMs)
})

test('identity: the peer id embeds the validator key and maps back to it', () => {
  const kp = generateKeyPair(seedFor('p2p-identity'))
  const pid = peerIdFromValidatorKey(kp.publicKey)
  assert.is(pid.type, 'Ed25519')
  assert.is(validatorKeyOfPeerId(pid), toHex(kp.publicKey))
  assert.is(peerIdFromValidatorKey(toHex(kp.publicKey)).toString(), pid.toString())
  const p2p = createP2P({ keyPair: kp, listen: [], allowed: [] })
  assert.is(p2p.peerId, pid.toString())
  assert.is(p2p.publicKey, toHex(kp.publicKey))
  assert.is(
    codeOf(() => peerIdFromValidatorKey('abcd')),
    'P2P_BAD_PEER',
  )
})

test('options: malformed options are refused with a code naming the field', () => {
  const kp = generateKeyPair(seedFor('p2p-options'))
  const other = generateKeyPair(seedFor('p2p-options-other'))
  const base = { keyPair: kp, listen: ['/ip4/127.0.0.1/tcp/0'], allowed: [] as string[] }
  assert.is(
    codeOf(() => createP2P({ ...base, keyPair: { secretKey: kp.secretKey, publicKey: other.publicKey } })),
    'P2P_BAD_OPTIONS',
  )
  assert.is(
    codeOf(() => createP2P({ ...base, listen: ['not a multiaddr'] })),
    'P2P_BAD_OPTIONS',
  )
  assert.is(
    codeOf(() => createP2P({ ...base, allowed: ['xyz'] })),
    'P2P_BAD_PEER',
  )
  assert.is(
    codeOf(() =>
      createP2P({ ...base, limits: { '/x/1': { maxMessageBytes: 0, ratePerSecond: 1, burst: 1 } } }),
    ),
    'P2P_BAD_OPTIONS',
  )
  assert.is(
    codeOf(() => createP2P({ ...base, bootstrap: [{ publicKey: toHex(other.publicKey), addrs: [] }] })),
    'P2P_BAD_OPTIONS',
  )
  assert.is(
    codeOf(() => createP2P({ ...base, reconnect: { initialMs: 0 } })),
    'P2P_BAD_OPTIONS',
  )
})

test('a pino logger is accepted as the logger (type-checked) and gets a p2p child', () => {
  const kp = generateKeyPair(seedFor('p2p-pino'))
  const lines: string[] = []
  const logger = pino({ level: 'debug' }, { write: (l: string) => lines.push(l) })
  const p2p = createP2P({ keyPair: kp, listen: [], allowed: [], logger })
  assert.is(p2p.publicKey, toHex(kp.publicKey))
  p2p.penalize(toHex(generateKeyPair(seedFor('p2p-pino-peer')).publicKey), 'test')
  assert.ok(
    lines.some((l) => l.includes('"module":"p2p"') && l.includes('peer penalised')),
    lines.join(''),
  )
})

test('calls before start fail with P2P_NOT_STARTED', async () => {
  const kp = generateKeyPair(seedFor('p2p-not-started'))
  const p2p = createP2P({ keyPair: kp, listen: [], allowed: [] })
  for (const call of [
    () => p2p.send(toHex(kp.publicKey), '/x/1', new Uint8Array(1)),
    () => p2p.broadcast('/x/1', new Uint8Array(1)),
  ]) {
    try {
      await call()
      assert.unreachable('should have failed')
    } catch (err) {
      assert.ok(isCityError(err, 'P2P_NOT_STARTED'), String(err))
    }
  }
  assert.equal(p2p.peers(), [])
  assert.equal(p2p.multiaddrs(), [])
  await p2p.stop()
})

test.run()
