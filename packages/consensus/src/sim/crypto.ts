import { type SignatureCheck, equalBytes, sha256, toHex } from '@cityledger/core'

/** A validator key as the simulator sees it: a public key and a signing function for it. */
export interface SimKey {
  publicKey: Uint8Array
  sign: (message: Uint8Array) => Uint8Array
}

export interface SimCrypto {
  keys: SimKey[]
  verify: (check: SignatureCheck) => boolean
}

/**
 * Fast stand-in for Ed25519 in long simulations: a signature is SHA-256(secret || m) twice (64 bytes),
 * checked by an oracle that knows every secret. Unforgeable inside the simulator because a replica (even a
 * Byzantine one) only ever holds its own `sign`. Tests that need the real scheme pass `crypto` in SimOptions.
 */
export function simCrypto(n: number): SimCrypto {
  const secrets = new Map<string, Uint8Array>()
  const keys: SimKey[] = []
  for (let i = 0; i < n; i++) {
    const secret = sha256(new TextEncoder().encode(`cityledger/sim-key/${i}`))
    const publicKey = sha256(new TextEncoder().encode('pk'), secret)
    secrets.set(toHex(publicKey), secret)
    keys.push({ publicKey, sign: (m) => simSign(secret, m) })
  }
  const verify = (c: SignatureCheck): boolean => {
    const secret = secrets.get(toHex(c.publicKey))
    return (
      secret !== undefined && c.signature.length === 64 && equalBytes(c.signature, simSign(secret, c.message))
    )
  }
  return { keys, verify }
}

function simSign(secret: Uint8Array, m: Uint8Array): Uint8Array {
  const h = sha256(secret, m)
  const out = new Uint8Array(64)
  out.set(h)
  out.set(h, 32)
  return out
}
