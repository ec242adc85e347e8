import { createRequire } from 'node:module'
import {
  type Tx,
  type TxBody,
  encode,
  encodeTxBody,
  sha256,
  signTx,
  toHex,
  txSigningMessage,
} from '@cityledger/core'

/** The part of sodium-native the harness uses (the package ships no type declarations). */
export interface Sodium {
  crypto_sign_seed_keypair(pk: Uint8Array, sk: Uint8Array, seed: Uint8Array): void
  crypto_sign_detached(sig: Uint8Array, m: Uint8Array, sk: Uint8Array): void
  crypto_sign_verify_detached(sig: Uint8Array, m: Uint8Array, pk: Uint8Array): boolean
}

export const sodium = createRequire(import.meta.url)('sodium-native') as Sodium

/**
 * A bench signer: the 32-byte seed (what core's `sign` takes) and libsodium's 64-byte secret key.
 * Signing with libsodium is ~20x faster than noble; Ed25519 is deterministic, so the signatures are
 * the same bytes (checked once by `checkSignerMatchesNoble`).
 */
export interface BenchKey {
  publicKey: Uint8Array
  seed: Uint8Array
  sodiumSecret: Uint8Array
  hex: string
}

/** A key derived from a label, the same on every run. */
export function benchKey(label: string): BenchKey {
  return keyFromSeed(sha256(new TextEncoder().encode(`cityledger/bench/${label}`)))
}

/** A bench key from a 32-byte Ed25519 seed (e.g. a testnet's city key). */
export function keyFromSeed(seed: Uint8Array): BenchKey {
  const publicKey = new Uint8Array(32)
  const sodiumSecret = new Uint8Array(64)
  sodium.crypto_sign_seed_keypair(publicKey, sodiumSecret, seed)
  return { publicKey, seed, sodiumSecret, hex: toHex(publicKey) }
}

/** Signs a tx with libsodium; the result is what core's `signTx` would give. */
export function signFast(body: TxBody, key: BenchKey): Tx {
  const bodyBytes = encodeTxBody(body)
  const signature = new Uint8Array(64)
  sodium.crypto_sign_detached(signature, txSigningMessage(bodyBytes), key.sodiumSecret)
  const bytes = encode([bodyBytes, signature])
  return { body: { ...body }, bodyBytes, signature, bytes, hash: sha256(bytes) }
}

/** Throws unless libsodium and noble (core's `signTx`) produce the same envelope for one tx. */
export function checkSignerMatchesNoble(chainId: string): void {
  const key = benchKey('noble-check')
  const body: TxBody = {
    chainId,
    service: 'identity',
    method: 'registerSubject',
    args: { subject: sha256(key.publicKey) },
    signer: key.publicKey,
    nonce: 1,
    expiry: 0,
  }
  const a = signFast(body, key)
  const b = signTx(body, key.seed)
  if (toHex(a.bytes) !== toHex(b.bytes))
    throw new Error('invariant broken: libsodium and noble signatures differ')
}
