import { createHash } from 'node:crypto'

/** SHA-256 over the concatenation of `parts` (32 bytes). */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}

/**
 * Domains keep a signature or hash made for one purpose from being valid for another. Each signed
 * message is `domain || 0x00 || payload`, and every payload carries the chain id.
 */
export const DOMAIN = {
  tx: 'cityledger/tx/v1',
  vote: 'cityledger/vote/v1',
  consensus: 'cityledger/consensus/v1',
  merkleLeaf: 'cityledger/merkle/leaf',
  merkleNode: 'cityledger/merkle/node',
  stateLeaf: 'cityledger/state/leaf',
  stateNode: 'cityledger/state/node',
} as const

export type Domain = (typeof DOMAIN)[keyof typeof DOMAIN]

const domainPrefixes = new Map<string, Uint8Array>()

/** The bytes of `domain` followed by a 0x00 separator (cached). */
export function domainPrefix(domain: Domain): Uint8Array {
  let p = domainPrefixes.get(domain)
  if (!p) {
    const d = new TextEncoder().encode(domain)
    p = new Uint8Array(d.length + 1)
    p.set(d)
    domainPrefixes.set(domain, p)
  }
  return p
}

/** The exact message that is signed for `payload` under `domain`. */
export function signingMessage(domain: Domain, payload: Uint8Array): Uint8Array {
  const prefix = domainPrefix(domain)
  const out = new Uint8Array(prefix.length + payload.length)
  out.set(prefix)
  out.set(payload, prefix.length)
  return out
}

/** SHA-256 of `domain || 0x00 || parts...`. */
export function taggedHash(domain: Domain, ...parts: Uint8Array[]): Uint8Array {
  return sha256(domainPrefix(domain), ...parts)
}
