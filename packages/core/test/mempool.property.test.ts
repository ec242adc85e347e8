import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  CityError,
  type SignatureCheck,
  type SignatureVerifier,
  type Tx,
  createMempool,
  decodeTx,
  encode,
  encodeTxBody,
  sha256,
  toHex,
} from '@cityledger/core'
import { Rng, testSeed } from '@cityledger/core/testing'

// Random adds, reaps and commits against a plain model of the rules. Signatures are fake: the verifier
// accepts exactly the signatures whose last byte is 0, so "bad signature" is a property of the bytes.

const SEED = testSeed(7_340_021)
const RUNS = 12
const STEPS = 300
const CHAIN = 'seoul-1'
const SIGNERS = 8
const LIMITS = { maxTxs: 16, maxBytes: 2000, maxTxBytes: 300, maxPerSigner: 4, maxGapWaitBlocks: 3 }

class MarkerVerifier implements SignatureVerifier {
  readonly name = 'test-marker'
  calls = 0
  verify(c: SignatureCheck): boolean {
    return c.signature[63] === 0
  }
  async verifyBatch(checks: readonly SignatureCheck[]): Promise<boolean[]> {
    this.calls++
    return checks.map((c) => this.verify(c))
  }
  async close(): Promise<void> {}
}

interface Candidate {
  bytes: Uint8Array
  hash: string
  signer: number
  nonce: number
  expiry: number
  chainId: string
  badSig: boolean
}

interface Held {
  c: Candidate
  seq: number
  /** Model height when it was added (how long it waits behind a gap). */
  since: number
}

class Model {
  committed: number[] = new Array(SIGNERS).fill(0)
  height = 0
  pending = new Map<string, Held>()
  recent = new Set<string>()
  refuse = new Set<number>()
  rejected: Record<string, number> = {}
  seq = 0

  pendingBytes(): number {
    let n = 0
    for (const h of this.pending.values()) n += h.c.bytes.length
    return n
  }

  private reject(code: string): string {
    this.rejected[code] = (this.rejected[code] ?? 0) + 1
    return code
  }

  /** Outcomes of a list of concurrent adds: synchronous checks in order, then signature and service check. */
  add(list: (Candidate | Uint8Array)[]): string[] {
    const out: string[] = []
    const reserved: Held[] = []
    const held = () => [...this.pending.values(), ...reserved]
    const slots: (Held | undefined)[] = []
    for (const item of list) {
      slots.push(undefined)
      if (item instanceof Uint8Array) {
        let code = 'OK'
        if (item.length > LIMITS.maxTxBytes) code = 'TX_TOO_LARGE'
        else {
          try {
            decodeTx(item, LIMITS.maxTxBytes)
          } catch (err) {
            code = (err as CityError).code
          }
        }
        assert.is.not(code, 'OK', 'garbage must not decode')
        out.push(this.reject(code))
        continue
      }
      const c = item
      const committed = this.committed[c.signer]!
      let code: string | undefined
      if (c.bytes.length > LIMITS.maxTxBytes) code = 'TX_TOO_LARGE'
      else if (c.chainId !== CHAIN) code = 'WRONG_CHAIN'
      else if (c.expiry !== 0 && c.expiry <= this.height) code = 'TX_EXPIRED'
      else if (held().some((h) => h.c.hash === c.hash) || this.recent.has(c.hash)) code = 'DUPLICATE_TX'
      else if (c.nonce <= committed) code = 'NONCE_TOO_LOW'
      else if (held().some((h) => h.c.signer === c.signer && h.c.nonce === c.nonce)) code = 'NONCE_TAKEN'
      else if (c.nonce > committed + LIMITS.maxPerSigner)
        code =
          held().filter((h) => h.c.signer === c.signer).length >= LIMITS.maxPerSigner
            ? 'MEMPOOL_FULL'
            : 'NONCE_GAP'
      else {
        const all = held()
        const bytes = all.reduce((n, h) => n + h.c.bytes.length, 0)
        if (all.length + 1 > LIMITS.maxTxs || bytes + c.bytes.length > LIMITS.maxBytes) code = 'MEMPOOL_FULL'
      }
      if (code) {
        out.push(this.reject(code))
        continue
      }
      const h = { c, seq: this.seq++, since: this.height }
      reserved.push(h)
      slots[slots.length - 1] = h
      out.push('OK')
    }
    for (let i = 0; i < list.length; i++) {
      const h = slots[i]
      if (!h) continue
      if (h.c.badSig) out[i] = this.reject('BAD_SIGNATURE')
      else if (this.refuse.has(h.c.signer)) out[i] = this.reject('UNAUTHORIZED')
      else this.pending.set(h.c.hash, h)
    }
    return out
  }

  reap(maxTxs: number, maxBytes: number): string[] {
    const runs: Held[][] = []
    for (let s = 0; s < SIGNERS; s++) {
      const run: Held[] = []
      for (let n = this.committed[s]! + 1; ; n++) {
        const h = [...this.pending.values()].find((x) => x.c.signer === s && x.c.nonce === n)
        if (!h) break
        run.push(h)
      }
      runs.push(run)
    }
    const stopped = new Set<number>()
    const out: string[] = []
    let bytes = 0
    for (let round = 0; ; round++) {
      const turn = runs
        .map((run, s) => ({ s, h: run[round] }))
        .filter((x): x is { s: number; h: Held } => x.h !== undefined && !stopped.has(x.s))
        .sort((a, b) => a.h.seq - b.h.seq)
      if (turn.length === 0) return out
      for (const { s, h } of turn) {
        if (out.length >= maxTxs) return out
        if (bytes + h.c.bytes.length > maxBytes) {
          stopped.add(s)
          continue
        }
        out.push(h.c.hash)
        bytes += h.c.bytes.length
      }
    }
  }

  /** Applies a block; returns the expected removals and re-check failures. */
  commit(included: Held[], external: { signer: number; hash: string }[]) {
    this.height++
    for (const h of included) this.committed[h.c.signer] = Math.max(this.committed[h.c.signer]!, h.c.nonce)
    for (const e of external) this.committed[e.signer]!++
    const removed = { committed: 0, nonce: 0, expired: 0, check: 0, gap: 0 }
    for (const key of [...included.map((h) => h.c.hash), ...external.map((e) => e.hash)]) {
      this.recent.add(key)
      if (this.pending.delete(key)) removed.committed++
    }
    let rechecked = 0
    for (const h of [...this.pending.values()].sort((a, b) => a.seq - b.seq)) {
      if (h.c.nonce <= this.committed[h.c.signer]!) {
        this.pending.delete(h.c.hash)
        removed.nonce++
      } else if (h.c.expiry !== 0 && h.c.expiry <= this.height) {
        this.pending.delete(h.c.hash)
        removed.expired++
      } else {
        rechecked++
        if (this.refuse.has(h.c.signer)) {
          this.pending.delete(h.c.hash)
          removed.check++
        }
      }
    }
    // Txs that waited more than maxGapWaitBlocks behind a missing nonce of their signer leave.
    for (let s = 0; s < SIGNERS; s++) {
      const mine = [...this.pending.values()].filter((h) => h.c.signer === s)
      let next = this.committed[s]! + 1
      while (mine.some((h) => h.c.nonce === next)) next++
      for (const h of mine) {
        if (h.c.nonce > next && this.height - h.since > LIMITS.maxGapWaitBlocks) {
          this.pending.delete(h.c.hash)
          removed.gap++
        }
      }
    }
    return { removed, rechecked, checkFailures: removed.check > 0 ? { UNAUTHORIZED: removed.check } : {} }
  }
}

async function run(seed: number, seen: Set<string>): Promise<void> {
  const rng = new Rng(seed)
  const signerKeys = Array.from({ length: SIGNERS }, () => rng.bytes(32))
  const signerOf = new Map(signerKeys.map((k, i) => [toHex(k), i]))
  const model = new Model()
  const verifier = new MarkerVerifier()
  const pool = createMempool({
    chainId: CHAIN,
    verifier,
    committedNonce: (signer) => model.committed[signerOf.get(toHex(signer))!]!,
    height: () => model.height,
    check: (tx) => {
      if (model.refuse.has(signerOf.get(toHex(tx.body.signer))!))
        throw new CityError('UNAUTHORIZED', 'refused by the service')
    },
    limits: LIMITS,
    maxSignatureBatch: 1 + rng.int(8),
  })
  const sent: Candidate[] = []

  const candidate = (): Candidate | Uint8Array => {
    const roll = rng.next()
    if (roll < 0.1 && sent.length > 0) return rng.pick(sent)
    if (roll < 0.13) {
      // Garbage, or a real envelope cut short.
      if (rng.chance(0.5) || sent.length === 0) return rng.bytes(rng.int(120))
      return rng.pick(sent).bytes.slice(0, rng.int(60))
    }
    const signer = rng.int(SIGNERS)
    const top = Math.max(
      model.committed[signer]!,
      ...[...model.pending.values()].filter((h) => h.c.signer === signer).map((h) => h.c.nonce),
    )
    const nonce = rng.chance(0.5)
      ? top + 1
      : model.committed[signer]! + rng.range(-1, LIMITS.maxPerSigner + 1)
    const expiry = rng.chance(0.7) ? 0 : Math.max(0, model.height + rng.range(-1, 4))
    const chainId = rng.chance(0.03) ? 'busan-1' : CHAIN
    const memo = 'm'.repeat(rng.chance(0.03) ? 400 : rng.int(100))
    const bodyBytes = encodeTxBody({
      chainId,
      service: 'token',
      method: 'transfer',
      args: { n: rng.u32(), memo },
      signer: signerKeys[signer]!,
      nonce: Math.max(0, nonce),
      expiry,
    })
    const badSig = rng.chance(0.1)
    const sig = new Uint8Array(64)
    sig[63] = badSig ? 1 : 0
    const bytes = encode([bodyBytes, sig])
    const c = {
      bytes,
      hash: toHex(sha256(bytes)),
      signer,
      nonce: Math.max(0, nonce),
      expiry,
      chainId,
      badSig,
    }
    sent.push(c)
    return c
  }

  const where = (step: number, what: string) => `seed ${seed} step ${step}: ${what}`
  for (let step = 0; step < STEPS; step++) {
    const op = rng.next()
    if (op < 0.55) {
      const list = Array.from({ length: rng.range(1, 8) }, candidate)
      const expected = model.add(list)
      const bytes = list.map((x) => (x instanceof Uint8Array ? x : x.bytes))
      let got: string[]
      if (rng.chance(0.5)) got = (await pool.addMany(bytes)).map((r) => (r.ok ? 'OK' : r.error.code))
      else
        got = await Promise.all(
          bytes.map((b) =>
            pool.add(b).then(
              () => 'OK',
              (e: CityError) => e.code,
            ),
          ),
        )
      assert.equal(got, expected, where(step, 'add outcomes'))
      for (const code of got) seen.add(code)
    } else if (op < 0.75) {
      const maxTxs = rng.int(20)
      const maxBytes = rng.int(3000)
      const got = pool.reap({ maxTxs, maxBytes }).map((t) => toHex(t.hash))
      assert.equal(got, model.reap(maxTxs, maxBytes), where(step, `reap(${maxTxs}, ${maxBytes})`))
      if (got.length > 0) seen.add('reap:nonempty')
      if (got.length < model.reap(1000, 1 << 20).length) seen.add('reap:cut')
    } else {
      const reaped = pool.reap({ maxTxs: 1 + rng.int(15), maxBytes: 4000 })
      const included = reaped.slice(0, rng.int(reaped.length + 1))
      const external = rng.chance(0.3) ? [{ signer: rng.int(SIGNERS), hash: toHex(rng.bytes(32)) }] : []
      if (rng.chance(0.2)) {
        const s = rng.int(SIGNERS)
        if (model.refuse.has(s)) model.refuse.delete(s)
        else model.refuse.add(s)
      }
      const held = included.map((t) => model.pending.get(toHex(t.hash))!)
      const expected = model.commit(held, external)
      const committed: (Tx | Uint8Array)[] = [
        ...included.map((t) => (rng.chance(0.5) ? t : t.hash)),
        ...external.map((e) => Uint8Array.from(Buffer.from(e.hash, 'hex'))),
      ]
      const verifications = verifier.calls
      assert.equal(pool.update({ committed, height: model.height }), expected, where(step, 'update'))
      for (const [reason, n] of Object.entries(expected.removed)) if (n > 0) seen.add(`removed:${reason}`)
      assert.is(verifier.calls, verifications, where(step, 'update verified signatures'))
    }
    assert.is(pool.size(), model.pending.size, where(step, 'size'))
    assert.is(pool.bytes(), model.pendingBytes(), where(step, 'bytes'))
    for (const key of model.pending.keys()) assert.ok(pool.has(key), where(step, `missing ${key}`))
    const stats = pool.stats()
    assert.is(stats.admitting, 0, where(step, 'nothing left half-admitted'))
    assert.equal(stats.rejected, model.rejected, where(step, 'rejections by code'))
  }
}

test(`property: the mempool follows the model through random adds, reaps and commits (seed ${SEED})`, async () => {
  const seen = new Set<string>()
  for (let r = 0; r < RUNS; r++) await run((SEED + r) >>> 0, seen)
  // Guards the generator: a change that stopped exercising a path would make this test pass vacuously.
  const wanted = [
    'OK',
    'TX_TOO_LARGE',
    'MALFORMED',
    'WRONG_CHAIN',
    'TX_EXPIRED',
    'DUPLICATE_TX',
    'NONCE_TOO_LOW',
    'NONCE_TAKEN',
    'NONCE_GAP',
    'MEMPOOL_FULL',
    'BAD_SIGNATURE',
    'UNAUTHORIZED',
    'removed:committed',
    'removed:nonce',
    'removed:expired',
    'removed:check',
    'removed:gap',
    'reap:nonempty',
    'reap:cut',
  ]
  for (const w of wanted) assert.ok(seen.has(w), `seed ${SEED}: the random runs never produced ${w}`)
})

test.run()
