import { createHash } from 'node:crypto'

/**
 * Helpers for tests, simulators and benchmarks (exported as `@cityledger/core/testing`):
 * a seeded PRNG so every random run can be replayed from its printed seed.
 */

/** sfc32: small, fast, good enough for test inputs; the same seed gives the same stream everywhere. */
export class Rng {
  readonly seed: number
  private a: number
  private b: number
  private c: number
  private d: number

  constructor(seed: number) {
    this.seed = seed >>> 0
    this.a = 0x9e3779b9
    this.b = 0x243f6a88
    this.c = 0xb7e15162
    this.d = this.seed
    for (let i = 0; i < 15; i++) this.u32()
  }

  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0
    this.d = (this.d + 1) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.c = (this.c + t) | 0
    return t >>> 0
  }

  /** Uniform float in [0, 1). For test scheduling only, never for ledger state. */
  next(): number {
    return this.u32() / 4294967296
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n)
  }

  /** Integer in [lo, hi] inclusive. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1)
  }

  chance(p: number): boolean {
    return this.next() < p
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list')
    return items[this.int(items.length)]!
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff
    return out
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      ;[items[i], items[j]] = [items[j]!, items[i]!]
    }
    return items
  }

  /** A fresh generator derived from this one (for independent sub-streams). */
  fork(): Rng {
    return new Rng(this.u32())
  }
}

/** The seed for a randomised test: `SEED` from the environment when set, otherwise the given default. */
export function testSeed(fallback: number): number {
  const env = process.env.SEED
  return env !== undefined && env !== '' ? Number(env) >>> 0 : fallback >>> 0
}

/** A 32-byte seed for `generateKeyPair`, derived from a label (deterministic test keys). */
export function seedFor(label: string | number): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`cityledger/test-seed/${label}`).digest())
}
export * from './chain.ts'
