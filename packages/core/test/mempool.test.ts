import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ed25519 } from '@noble/curves/ed25519.js'
import {
  BoundedHashSet,
  CityError,
  type KeyPair,
  type Mempool,
  type MempoolOptions,
  type SignatureCheck,
  type SignatureVerifier,
  type Tx,
  type TxBody,
  VerifiedCache,
  createMempool,
  decodeTx,
  encode,
  generateKeyPair,
  signTx,
  toHex,
} from '@cityledger/core'
import { seedFor } from '@cityledger/core/testing'

/** Verifies with noble (the reference) and records every call, so tests can count verifications. */
class CountingVerifier implements SignatureVerifier {
  readonly name = 'test-noble'
  batches: number[] = []
  singles = 0
  fail: Error | undefined
  get checked(): number {
    return this.batches.reduce((a, b) => a + b, 0) + this.singles
  }
  verify(c: SignatureCheck): boolean {
    this.singles++
    return ed25519.verify(c.signature, c.message, c.publicKey)
  }
  async verifyBatch(checks: readonly SignatureCheck[]): Promise<boolean[]> {
    this.batches.push(checks.length)
    if (this.fail) throw this.fail
    return checks.map((c) => ed25519.verify(c.signature, c.message, c.publicKey))
  }
  async close(): Promise<void> {}
}

const CHAIN = 'seoul-1'
const keys: KeyPair[] = Array.from({ length: 6 }, (_, i) => generateKeyPair(seedFor(`mempool-${i}`)))
const [alice, bob, carol] = keys as [KeyPair, KeyPair, KeyPair]

function txOf(key: KeyPair, nonce: number, over: Partial<TxBody> = {}): Tx {
  return signTx(
    {
      chainId: CHAIN,
      service: 'token',
      method: 'transfer',
      args: { amount: 1, memo: '' },
      signer: key.publicKey,
      nonce,
      expiry: 0,
      ...over,
    },
    key.secretKey,
  )
}

interface Harness {
  pool: Mempool
  verifier: CountingVerifier
  nonces: Map<string, number>
  state: { height: number; refuse: Set<string>; checks: number }
}

function setup(over: Partial<MempoolOptions> = {}, limits: Partial<MempoolOptions['limits']> = {}): Harness {
  const verifier = new CountingVerifier()
  const nonces = new Map<string, number>()
  const state = { height: 0, refuse: new Set<string>(), checks: 0 }
  const pool = createMempool({
    chainId: CHAIN,
    verifier,
    committedNonce: (signer) => nonces.get(toHex(signer)) ?? 0,
    height: () => state.height,
    check: (tx) => {
      state.checks++
      if (state.refuse.has(toHex(tx.body.signer)))
        throw new CityError('UNAUTHORIZED', 'signer may not call token.transfer')
    },
    limits: { maxTxs: 1000, maxBytes: 1 << 20, maxTxBytes: 4096, maxPerSigner: 16, ...limits },
    ...over,
  })
  return { pool, verifier, nonces, state }
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    if (err instanceof CityError) return err.code
    throw err
  }
  return 'OK'
}

function withSignature(tx: Tx, signature: Uint8Array): Uint8Array {
  return encode([tx.bodyBytes, signature])
}

test('admits a signed tx and answers size, bytes, has, get, stats and onAdded', async () => {
  const { pool, verifier } = setup()
  const seen: string[] = []
  const off = pool.onAdded((tx) => seen.push(toHex(tx.hash)))
  const tx = txOf(alice, 1)
  const { hash } = await pool.add(tx.bytes)
  assert.is(toHex(hash), toHex(tx.hash))
  assert.is(pool.size(), 1)
  assert.is(pool.bytes(), tx.bytes.length)
  assert.ok(pool.has(tx.hash))
  assert.ok(pool.has(toHex(tx.hash)))
  assert.is(pool.get(tx.hash)?.body.nonce, 1)
  assert.equal(seen, [toHex(tx.hash)])
  assert.is(verifier.checked, 1)
  assert.ok(pool.verifiedCache.has(tx.hash), 'a passed signature is remembered for block validation')
  off()
  await pool.add(txOf(alice, 2).bytes)
  assert.is(seen.length, 1, 'unsubscribed listener is not called')
  const s = pool.stats()
  assert.is(s.txs, 2)
  assert.is(s.added, 2)
  assert.is(s.admitting, 0)
  assert.is(s.signatures.checked, 2)
})

test('each refusal has its code, and cheap checks run before the signature', async () => {
  const { pool, verifier, nonces, state } = setup({}, { maxPerSigner: 4, maxTxBytes: 400 })
  state.height = 10
  nonces.set(toHex(bob.publicKey), 5)
  const good = txOf(alice, 1)
  const big = txOf(alice, 1, { args: { memo: 'x'.repeat(500) } })
  const tooLarge = pool.add(big.bytes).catch((e: CityError) => e)
  const err = (await tooLarge) as CityError
  assert.is(err.code, 'TX_TOO_LARGE')
  assert.equal(err.details, { size: big.bytes.length, limit: 400 })
  assert.is(await codeOf(pool.add(new Uint8Array([0x92, 0xc4]))), 'MALFORMED')
  assert.is(await codeOf(pool.add(new Uint8Array([...good.bytes, 0]))), 'TRAILING_BYTES')
  assert.is(await codeOf(pool.add(txOf(alice, 1, { chainId: 'busan-1' }).bytes)), 'WRONG_CHAIN')
  assert.is(await codeOf(pool.add(txOf(alice, 1, { expiry: 10 }).bytes)), 'TX_EXPIRED')
  assert.is(await codeOf(pool.add(txOf(bob, 5).bytes)), 'NONCE_TOO_LOW')
  assert.is(await codeOf(pool.add(txOf(bob, 0).bytes)), 'NONCE_TOO_LOW')
  assert.is(await codeOf(pool.add(txOf(bob, 10).bytes)), 'NONCE_GAP')
  assert.is(await codeOf(pool.add(txOf(alice, 5).bytes)), 'NONCE_GAP')
  assert.is(verifier.checked, 0, 'nothing above reached the verifier')

  assert.is(await codeOf(pool.add(good.bytes)), 'OK')
  assert.is(await codeOf(pool.add(good.bytes)), 'DUPLICATE_TX')
  assert.is(await codeOf(pool.add(txOf(alice, 1, { args: { amount: 2, memo: '' } }).bytes)), 'NONCE_TAKEN')
  assert.is(
    await codeOf(pool.add(txOf(alice, 2, { expiry: 11 }).bytes)),
    'OK',
    'expiry above the height is fine',
  )
  assert.is(
    await codeOf(pool.add(txOf(alice, 4).bytes)),
    'OK',
    'committed + maxPerSigner is the last allowed nonce',
  )
  assert.is(await codeOf(pool.add(txOf(bob, 9).bytes)), 'OK')
  assert.is(verifier.checked, 4)

  const forged = txOf(carol, 1)
  const sig = Uint8Array.from(forged.signature)
  sig[0]! ^= 1
  const bad = (await pool.add(withSignature(forged, sig)).catch((e: CityError) => e)) as CityError
  assert.is(bad.code, 'BAD_SIGNATURE')
  assert.ok(bad.penalize, 'a bad signature penalises the sender')
  assert.ok(!pool.verifiedCache.has(decodeTx(withSignature(forged, sig)).hash))
  assert.is(await codeOf(pool.add(forged.bytes)), 'OK', 'a refused tx released its nonce')

  state.refuse.add(toHex(carol.publicKey))
  assert.is(await codeOf(pool.add(txOf(carol, 2).bytes)), 'UNAUTHORIZED', 'service check errors pass through')
  state.refuse.clear()
  const thrower = setup({
    check: () => {
      throw new Error('oops')
    },
  })
  assert.is(await codeOf(thrower.pool.add(txOf(alice, 1).bytes)), 'CHECK_FAILED')
  thrower.verifier.fail = new Error('worker died')
  assert.is(await codeOf(thrower.pool.add(txOf(alice, 2).bytes)), 'VERIFIER_FAILED')

  const rejected = pool.stats().rejected
  assert.equal(rejected, {
    TX_TOO_LARGE: 1,
    MALFORMED: 1,
    TRAILING_BYTES: 1,
    WRONG_CHAIN: 1,
    TX_EXPIRED: 1,
    NONCE_TOO_LOW: 2,
    NONCE_GAP: 2,
    DUPLICATE_TX: 1,
    NONCE_TAKEN: 1,
    BAD_SIGNATURE: 1,
    UNAUTHORIZED: 1,
  })
  assert.is(pool.size(), 5)
})

test('capacity limits (count and bytes) are errors, never silent drops', async () => {
  const byCount = setup({}, { maxTxs: 2 })
  await byCount.pool.add(txOf(alice, 1).bytes)
  await byCount.pool.add(txOf(bob, 1).bytes)
  const full = (await byCount.pool.add(txOf(carol, 1).bytes).catch((e: CityError) => e)) as CityError
  assert.is(full.code, 'MEMPOOL_FULL')
  assert.is(full.details.maxTxs, 2)
  assert.is(byCount.pool.size(), 2)
  assert.ok(!full.penalize)

  const one = txOf(alice, 1).bytes.length
  const byBytes = setup({}, { maxBytes: one * 2 + Math.floor(one / 2) })
  await byBytes.pool.add(txOf(alice, 1).bytes)
  await byBytes.pool.add(txOf(alice, 2).bytes)
  assert.is(await codeOf(byBytes.pool.add(txOf(alice, 3).bytes)), 'MEMPOOL_FULL')
  assert.is(byBytes.pool.bytes(), one * 2)

  // Transactions still being verified hold their place: concurrent adds cannot overshoot.
  const racing = setup({}, { maxTxs: 3 })
  const codes = await Promise.all(keys.map((k) => codeOf(racing.pool.add(txOf(k, 1).bytes))))
  assert.equal(codes, ['OK', 'OK', 'OK', 'MEMPOOL_FULL', 'MEMPOOL_FULL', 'MEMPOOL_FULL'])
  assert.is(racing.verifier.checked, 3)
})

test('duplicates are caught while in flight, while pending and after commit', async () => {
  const { pool, verifier } = setup()
  const tx = txOf(alice, 1)
  const results = await pool.addMany([tx.bytes, tx.bytes])
  assert.ok(results[0]!.ok)
  assert.is(!results[1]!.ok && results[1]!.error.code, 'DUPLICATE_TX')
  assert.is(verifier.checked, 1)
  pool.update({ committed: [tx], height: 1 })
  assert.is(pool.size(), 0)
  assert.is(await codeOf(pool.add(tx.bytes)), 'DUPLICATE_TX', 'recently committed bytes are duplicates')
})

test('reap: contiguous nonces from committed + 1 per signer, round-robin by arrival, within limits', async () => {
  const { pool, nonces } = setup()
  nonces.set(toHex(bob.publicKey), 2)
  const a = [1, 2, 3, 5].map((n) => txOf(alice, n))
  const b = [4, 3].map((n) => txOf(bob, n)) // arrives out of order
  const c = [2, 3].map((n) => txOf(carol, n)) // nonce 1 missing
  for (const tx of [...a, ...b, ...c]) await pool.add(tx.bytes)
  const label = (tx: Tx) => `${toHex(tx.body.signer) === toHex(alice.publicKey) ? 'a' : 'b'}${tx.body.nonce}`
  const batch = pool.reap({ maxTxs: 100, maxBytes: 1 << 20 })
  // Round 1: alice's 1 (arrived first), bob's 3 (arrived after bob's 4, but 4 is not next). Round 2: a2, b4. Round 3: a3.
  assert.equal(batch.map(label), ['a1', 'b3', 'a2', 'b4', 'a3'])
  assert.equal(
    pool.reap({ maxTxs: 100, maxBytes: 1 << 20 }).map(label),
    batch.map(label),
    'same pool, same batch',
  )
  assert.is(pool.size(), 8, 'reap removes nothing')
  assert.equal(pool.reap({ maxTxs: 3, maxBytes: 1 << 20 }).map(label), ['a1', 'b3', 'a2'])
  assert.equal(pool.reap({ maxTxs: 0, maxBytes: 1 << 20 }), [])
  const size = a[0]!.bytes.length
  assert.equal(pool.reap({ maxTxs: 100, maxBytes: size * 2 }).map(label), ['a1', 'b3'])
  assert.equal(pool.reap({ maxTxs: 100, maxBytes: size - 1 }), [])
  assert.throws(() => pool.reap({ maxTxs: Number.NaN, maxBytes: 1 }), /reap.maxTxs/)

  // A signer whose next tx does not fit stops; a smaller tx of another signer still goes in.
  const p2 = setup()
  await p2.pool.add(txOf(alice, 1, { args: { memo: 'x'.repeat(300) } }).bytes)
  await p2.pool.add(txOf(bob, 1).bytes)
  await p2.pool.add(txOf(alice, 2).bytes)
  const small = txOf(bob, 1).bytes.length
  const got = p2.pool.reap({ maxTxs: 10, maxBytes: small * 3 })
  assert.equal(
    got.map((t) => t.body.nonce),
    [1],
    'alice 1 is too big, so alice 2 must wait too',
  )
  assert.is(toHex(got[0]!.body.signer), toHex(bob.publicKey))
})

test('update removes included, stale and expired txs and re-checks the rest with zero signature checks', async () => {
  const { pool, verifier, nonces, state } = setup()
  const a = [1, 2, 3].map((n) => txOf(alice, n))
  const b = [1, 2].map((n) => txOf(bob, n))
  const c = [txOf(carol, 1, { expiry: 3 }), txOf(carol, 2)]
  const d = [txOf(keys[3]!, 1), txOf(keys[3]!, 2)]
  for (const tx of [...a, ...b, ...c, ...d]) await pool.add(tx.bytes)
  const verifiedBefore = verifier.checked
  assert.is(verifiedBefore, 9)

  // Block 3 includes alice 1, 2 and a bob 1 that travelled elsewhere (other bytes, same nonce).
  const otherBob1 = txOf(bob, 1, { args: { amount: 99, memo: 'elsewhere' } })
  nonces.set(toHex(alice.publicKey), 2)
  nonces.set(toHex(bob.publicKey), 1)
  state.refuse.add(toHex(keys[3]!.publicKey))
  state.checks = 0
  state.height = 3
  const res = pool.update({ committed: [a[0]!, a[1]!.hash, otherBob1], height: 3 })
  assert.equal(res.removed, { committed: 2, nonce: 1, expired: 1, check: 2, gap: 0 })
  assert.is(res.rechecked, 5, 'alice 3, bob 2, carol 2 and the two of keys[3]: each remaining tx once')
  assert.equal(res.checkFailures, { UNAUTHORIZED: 2 })
  assert.is(state.checks, 5)
  assert.is(verifier.checked, verifiedBefore, 'update never verifies a signature')
  assert.equal(
    pool.reap({ maxTxs: 10, maxBytes: 1 << 20 }).map((t) => t.body.nonce),
    [3, 2],
    'alice 3 and bob 2 are next; carol 2 waits for carol 1, which expired',
  )
  assert.is(pool.size(), 3)
  assert.equal(pool.stats().removed, { committed: 2, nonce: 1, expired: 1, check: 2, gap: 0 })
  // A tx dropped by the check can come back later without a second verification.
  state.refuse.clear()
  assert.is(await codeOf(pool.add(d[0]!.bytes)), 'OK')
  assert.is(verifier.checked, verifiedBefore)
  assert.is(pool.stats().signatures.cacheHits, 1)
})

test('update validates its input before changing anything', async () => {
  const { pool } = setup()
  const tx = txOf(alice, 1)
  await pool.add(tx.bytes)
  assert.throws(
    () => pool.update({ committed: [tx.hash, tx.bytes], height: 1 }),
    /committed\[1\]: expected a 32-byte hash/,
  )
  assert.is(pool.size(), 1)
  assert.throws(() => pool.update({ committed: [tx], height: -1 }), /update.height/)
  assert.is(pool.size(), 1)
})

test('a commit that lands while a signature is being checked settles the admission correctly', async () => {
  const { pool, nonces } = setup()
  const tx = txOf(alice, 1)
  const other = txOf(bob, 1)
  const pending = codeOf(pool.add(tx.bytes))
  const pendingOther = codeOf(pool.add(other.bytes))
  // The batch flushes on setImmediate: this update runs first.
  nonces.set(toHex(alice.publicKey), 1)
  nonces.set(toHex(bob.publicKey), 1)
  pool.update({ committed: [tx], height: 1 })
  assert.is(await pending, 'DUPLICATE_TX')
  assert.is(await pendingOther, 'NONCE_TOO_LOW')
  assert.is(pool.size(), 0)
  assert.is(pool.stats().admitting, 0)
})

test('micro-batching: concurrent adds share verifyBatch calls, flushed per tick or per full batch', async () => {
  const { pool, verifier } = setup({}, { maxPerSigner: 1000 })
  const txs = Array.from({ length: 100 }, (_, i) =>
    txOf(keys[i % keys.length]!, Math.floor(i / keys.length) + 1),
  )
  const codes = await Promise.all(txs.map((tx) => codeOf(pool.add(tx.bytes))))
  assert.ok(codes.every((c) => c === 'OK'))
  assert.ok(
    verifier.batches.length >= 1 && verifier.batches.length <= 2,
    `100 concurrent adds made ${verifier.batches.length} batches`,
  )
  assert.is(verifier.checked, 100)
  assert.is(verifier.singles, 0)

  const small = setup({ maxSignatureBatch: 40 }, { maxPerSigner: 1000 })
  const many = Array.from({ length: 100 }, (_, i) =>
    txOf(keys[i % keys.length]!, Math.floor(i / keys.length) + 1),
  )
  await Promise.all(many.map((tx) => small.pool.add(tx.bytes)))
  assert.equal(small.verifier.batches, [40, 40, 20])
  assert.equal(small.pool.stats().signatures, { batches: 3, checked: 100, cacheHits: 0 })
})

test('addMany reports per item, in order, with one verifyBatch call', async () => {
  const { pool, verifier } = setup()
  const good = txOf(alice, 1)
  const forged = txOf(bob, 1)
  const sig = Uint8Array.from(forged.signature)
  sig[10]! ^= 0x40
  const results = await pool.addMany([
    good.bytes,
    withSignature(forged, sig),
    new Uint8Array([0x92]),
    good.bytes,
    txOf(carol, 1).bytes,
  ])
  assert.equal(
    results.map((r) => (r.ok ? 'OK' : r.error.code)),
    ['OK', 'BAD_SIGNATURE', 'MALFORMED', 'DUPLICATE_TX', 'OK'],
  )
  assert.equal(verifier.batches, [3])
  assert.is(results[0]!.ok && toHex(results[0]!.hash), toHex(good.hash))
})

test('the verified cache is shared: block validation sees it, admission skips known bytes', async () => {
  const shared = new VerifiedCache(1000)
  const tx = txOf(alice, 1)
  shared.add(tx.hash)
  const { pool, verifier } = setup({ verifiedCache: shared })
  assert.is(pool.verifiedCache, shared)
  await pool.add(tx.bytes)
  assert.is(verifier.checked, 0)
  await pool.add(txOf(alice, 2).bytes)
  assert.is(verifier.checked, 1)
  assert.ok(shared.has(txOf(alice, 2).hash), 'signing is deterministic: the same bytes, the same hash')
})

test('bounded hash sets forget the oldest insertion first', () => {
  const set = new BoundedHashSet(3)
  const h = (i: number) => new Uint8Array(32).fill(i)
  for (let i = 1; i <= 3; i++) set.add(h(i))
  set.add(h(1)) // refreshed: now the newest
  set.add(h(4))
  assert.ok(!set.has(h(2)))
  assert.ok(set.has(h(1)) && set.has(h(3)) && set.has(toHex(h(4))))
  assert.is(set.size, 3)
  assert.throws(() => new BoundedHashSet(0), /capacity/)
})

test('a throwing listener cannot fail an admission', async () => {
  const { pool } = setup()
  pool.onAdded(() => {
    throw new Error('gossip down')
  })
  assert.is(await codeOf(pool.add(txOf(alice, 1).bytes)), 'OK')
  assert.is(pool.stats().listenerErrors, 1)
})

test('bad configuration is refused up front', () => {
  assert.throws(() => setup({}, { maxTxs: 0 }), /limits.maxTxs/)
  assert.throws(() => setup({}, { maxPerSigner: 1.5 }), /limits.maxPerSigner/)
})

test.run()
