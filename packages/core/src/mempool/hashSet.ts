import { CityError } from '../errors/index.ts'

/** A hash as bytes or as lowercase hex (the form used in keys, logs and RPC). */
export type HashLike = Uint8Array | string

/** Lowercase hex of a hash, the key of every hash map in the mempool. */
export function hashKey(hash: HashLike): string {
  if (typeof hash === 'string') return hash.toLowerCase()
  // Native hex: several times faster than a JS loop on the admission path, same output as `toHex`.
  return Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength).toString('hex')
}

/**
 * A set of hashes with a fixed capacity that forgets the oldest insertion first. Re-adding a hash
 * makes it the newest again. Memory is bounded: about 150 bytes per entry for 32-byte hashes.
 */
export class BoundedHashSet {
  readonly capacity: number
  private readonly set = new Set<string>()

  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new CityError('BAD_CONFIG', `capacity: expected a positive integer, got ${String(capacity)}`)
    }
    this.capacity = capacity
  }

  get size(): number {
    return this.set.size
  }

  has(hash: HashLike): boolean {
    return this.set.has(hashKey(hash))
  }

  add(hash: HashLike): void {
    const key = hashKey(hash)
    this.set.delete(key)
    this.set.add(key)
    if (this.set.size > this.capacity) {
      // Sets iterate in insertion order: the first key is the oldest.
      const oldest = this.set.values().next().value
      if (oldest !== undefined) this.set.delete(oldest)
    }
  }

  delete(hash: HashLike): boolean {
    return this.set.delete(hashKey(hash))
  }

  clear(): void {
    this.set.clear()
  }
}
