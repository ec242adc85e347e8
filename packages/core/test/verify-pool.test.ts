/*
 * The worker pool beyond its verdicts (those are in the contract suites): order of answers, bounded
 * queue (back-pressure), close(), crash of a worker and its replacement, pool sizing.
 */
import { availableParallelism } from 'node:os'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  type SignatureCheck,
  createVerifier,
  createVerifierPool,
  defaultPoolSize,
  generateKeyPair,
  isCityError,
  sign,
} from '@cityledger/core'
import { Rng, seedFor, testSeed } from '@cityledger/core/testing'

const SEED = testSeed(4096)
const rng = new Rng(SEED)
const keys = Array.from({ length: 8 }, (_, i) => generateKeyPair(seedFor(`verify-pool/${i}`)))

/** `n` checks, each valid or not at random; returns them with the expected verdicts. */
function mixed(n: number): { checks: SignatureCheck[]; want: boolean[] } {
  const checks: SignatureCheck[] = []
  const want: boolean[] = []
  for (let i = 0; i < n; i++) {
    const key = rng.pick(keys)
    const message = rng.bytes(rng.int(120))
    const signature = sign(key.secretKey, message)
    const good = rng.chance(0.5)
    if (!good) signature[rng.int(64)]! ^= 1 << rng.int(8)
    checks.push({ publicKey: key.publicKey, message, signature })
    want.push(good)
  }
  return { checks, want }
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection')
}

test(`answers keep the order of the checks, across chunks and workers (seed ${SEED})`, async () => {
  const pool = await createVerifierPool({ size: 2, chunkSize: 8 })
  try {
    const { checks, want } = mixed(301)
    // Malformed lengths travel too, and must come back false in their place.
    checks.push({ publicKey: keys[0]!.publicKey, message: new Uint8Array(3), signature: new Uint8Array(65) })
    want.push(false)
    checks.push({
      publicKey: keys[0]!.publicKey.subarray(1),
      message: new Uint8Array(0),
      signature: new Uint8Array(64),
    })
    want.push(false)
    const got = await pool.verifyBatch(checks)
    assert.equal(got, want, `seed ${SEED}`)
    assert.equal(await pool.verifyBatch([]), [])
    assert.ok(pool.stats().chunksDone >= 38)
    assert.is(pool.verify(checks[0]!), want[0])
  } finally {
    await pool.close()
  }
})

test(`back-pressure: concurrent callers wait, never more than maxQueue chunks outstanding (seed ${SEED})`, async () => {
  const pool = await createVerifierPool({ size: 2, maxQueue: 3, chunkSize: 4 })
  try {
    const batches = Array.from({ length: 20 }, () => mixed(1 + rng.int(40)))
    const running = batches.map((b) => pool.verifyBatch(b.checks))
    // Each call takes a place synchronously if one is free: 3 are in the workers, 17 callers wait.
    const during = pool.stats()
    assert.is(during.outstanding, 3)
    assert.is(during.waiting, 17)
    const results = await Promise.all(running)
    results.forEach((got, i) => {
      assert.equal(got, batches[i]!.want, `batch ${i}, seed ${SEED}`)
    })
    const after = pool.stats()
    assert.is(after.maxOutstanding, 3)
    assert.is(after.outstanding, 0)
    assert.is(after.waiting, 0)
    const expectedChunks = batches.reduce((n, b) => n + Math.ceil(b.checks.length / 4), 0)
    assert.ok(after.chunksDone >= expectedChunks - 20, `${after.chunksDone} chunks done`)
  } finally {
    await pool.close()
  }
})

test('close(): pending and waiting batches reject with VERIFIER_CLOSED, later calls too', async () => {
  const pool = await createVerifierPool({ size: 1, maxQueue: 1, chunkSize: 16 })
  const { checks } = mixed(200)
  const pending = [rejection(pool.verifyBatch(checks)), rejection(pool.verifyBatch(checks))]
  await pool.close()
  for (const p of pending) assert.ok(isCityError(await p, 'VERIFIER_CLOSED'))
  assert.ok(isCityError(await rejection(pool.verifyBatch(checks)), 'VERIFIER_CLOSED'))
  assert.throws(
    () => pool.verify(checks[0]!),
    (err: unknown) => isCityError(err, 'VERIFIER_CLOSED'),
  )
  await pool.close() // twice is fine
})

test('a worker crash rejects its batch with VERIFIER_WORKER_CRASHED, and a new worker takes over', async () => {
  const workerUrl = new URL('./fixtures/crashingVerifyWorker.ts', import.meta.url)
  const pool = await createVerifierPool({ size: 1, chunkSize: 1000, workerUrl })
  try {
    const first = mixed(50)
    assert.equal(await pool.verifyBatch(first.checks), first.want)
    const err = await rejection(pool.verifyBatch(mixed(50).checks))
    assert.ok(isCityError(err, 'VERIFIER_WORKER_CRASHED'), String(err))
    const third = mixed(50)
    assert.equal(await pool.verifyBatch(third.checks), third.want) // first chunk of the new worker
    assert.is(pool.stats().workerRestarts, 1)
    assert.is(pool.stats().outstanding, 0)
  } finally {
    await pool.close()
  }
})

test('workers that cannot start end in VERIFIER_BACKEND_UNAVAILABLE, not a restart loop', async () => {
  const workerUrl = new URL('./fixtures/brokenVerifyWorker.ts', import.meta.url)
  const pool = await createVerifierPool({ size: 1, workerUrl })
  try {
    const { checks } = mixed(4)
    let code = ''
    for (let i = 0; i < 10 && code !== 'VERIFIER_BACKEND_UNAVAILABLE'; i++) {
      const err = await rejection(pool.verifyBatch(checks))
      assert.ok(
        isCityError(err, 'VERIFIER_WORKER_CRASHED') || isCityError(err, 'VERIFIER_BACKEND_UNAVAILABLE'),
        String(err),
      )
      code = (err as { code: string }).code
    }
    assert.is(code, 'VERIFIER_BACKEND_UNAVAILABLE')
    assert.ok(pool.stats().workerRestarts <= 2)
    assert.ok(pool.verify(mixed(1).checks[0]!) !== undefined) // inline verification still works
  } finally {
    await pool.close()
  }
})

test('defaultPoolSize shares the cores between the validators of one machine', () => {
  const cores = availableParallelism()
  assert.is(defaultPoolSize(), cores)
  assert.is(defaultPoolSize({ nodesOnMachine: 1 }), cores)
  assert.is(defaultPoolSize({ nodesOnMachine: 4 }), Math.max(1, Math.floor(cores / 4)))
  assert.is(defaultPoolSize({ nodesOnMachine: cores * 10 }), 1)
  assert.throws(
    () => defaultPoolSize({ nodesOnMachine: 0 }),
    (err: unknown) => isCityError(err, 'VERIFIER_BAD_OPTIONS'),
  )
})

test('bad options and bad input are typed errors', async () => {
  for (const opts of [{ size: 0 }, { size: 1.5 }, { maxQueue: 0 }, { chunkSize: -1 }]) {
    assert.ok(
      isCityError(await rejection(createVerifierPool(opts)), 'VERIFIER_BAD_OPTIONS'),
      JSON.stringify(opts),
    )
  }
  assert.ok(isCityError(await rejection(createVerifier('fast' as 'pool')), 'VERIFIER_BAD_OPTIONS'))
  const pool = await createVerifierPool({ size: 1, nodesOnMachine: 99 })
  try {
    assert.is(pool.size, 1)
    const bad = {
      publicKey: 'ab',
      message: new Uint8Array(0),
      signature: new Uint8Array(64),
    } as unknown as SignatureCheck
    assert.ok(isCityError(await rejection(pool.verifyBatch([bad])), 'VERIFIER_BAD_INPUT'))
    assert.throws(
      () => pool.verify(bad),
      (err: unknown) => isCityError(err, 'VERIFIER_BAD_INPUT'),
    )
    assert.is(pool.stats().outstanding, 0)
  } finally {
    await pool.close()
  }
})

test.run()
