import { randomBytes } from 'node:crypto'
import { ed25519 } from '@noble/curves/ed25519.js'
import { CityError } from '../errors/index.ts'

/** An Ed25519 key pair. `secretKey` is the 32-byte seed (RFC 8032), never the expanded key. */
export interface KeyPair {
  publicKey: Uint8Array
  secretKey: Uint8Array
}

/** A new key pair from 32 random bytes, or from the given 32-byte seed (deterministic). */
export function generateKeyPair(seed?: Uint8Array): KeyPair {
  const secretKey = seed ? Uint8Array.from(seed) : new Uint8Array(randomBytes(32))
  if (secretKey.length !== 32)
    throw new CityError('BAD_KEY', `seed must be 32 bytes, got ${secretKey.length}`)
  return { secretKey, publicKey: ed25519.getPublicKey(secretKey) }
}

export function publicKeyOf(secretKey: Uint8Array): Uint8Array {
  if (secretKey.length !== 32) throw new CityError('BAD_KEY', 'secret key must be 32 bytes')
  return ed25519.getPublicKey(secretKey)
}

/** Ed25519 signature (64 bytes) of `message`. Deterministic (RFC 8032). */
export function sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  if (secretKey.length !== 32) throw new CityError('BAD_KEY', 'secret key must be 32 bytes')
  return ed25519.sign(message, secretKey)
}
