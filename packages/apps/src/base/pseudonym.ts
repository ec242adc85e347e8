import { type KeyPair, concatBytes, generateKeyPair, sha256, utf8 } from '@cityledger/core'

/**
 * Off-chain helpers for per-relationship pseudonyms (EDPB Guidelines 02/2025: public keys are personal
 * data). They run in wallets and agency tools, never inside a service: the chain only ever sees their
 * outputs (keys and commitments).
 */

const ZERO = new Uint8Array([0])

/** HMAC-SHA-256 (RFC 2104) over the project's SHA-256. */
export function hmacSha256(key: Uint8Array, message: Uint8Array): Uint8Array {
  const k = key.length > 64 ? sha256(key) : key
  const block = new Uint8Array(64)
  block.set(k)
  const inner = block.map((b) => b ^ 0x36)
  const outer = block.map((b) => b ^ 0x5c)
  return sha256(concatBytes(outer, sha256(concatBytes(inner, message))))
}

const text = (x: Uint8Array | string) => (typeof x === 'string' ? utf8.encode(x) : x)

/**
 * The keyed commitment an agency enrols for a citizen in `scope` (identity `enrol`):
 * HMAC(agencySecret, 'cityledger/pseudonym/v1' 0x00 scope 0x00 citizenRef). `citizenRef` is what the
 * agency knows the citizen by (a resident number, its own record id); it never leaves the agency.
 * One citizen gets one commitment per scope; without the secret, two scopes' commitments are unlinkable.
 */
export function pseudonymCommitment(
  agencySecret: Uint8Array,
  scope: string,
  citizenRef: Uint8Array | string,
): Uint8Array {
  return hmacSha256(
    agencySecret,
    concatBytes(utf8.encode('cityledger/pseudonym/v1'), ZERO, utf8.encode(scope), ZERO, text(citizenRef)),
  )
}

/**
 * A citizen's signing key for one relationship (scope), derived by their wallet from a master seed:
 * keys of two scopes share nothing visible on chain.
 */
export function relationshipKey(masterSeed: Uint8Array, scope: string): KeyPair {
  return generateKeyPair(
    sha256(
      concatBytes(utf8.encode('cityledger/relationship-key/v1'), ZERO, masterSeed, ZERO, utf8.encode(scope)),
    ),
  )
}

/**
 * The one vehicle id of a VIN (usedcar): HMAC(registrySecret, 'cityledger/usedcar/vehicle/v1' 0x00 VIN),
 * computed by the vehicle registry agency, which alone holds the secret. The same car always gets the
 * same id, whoever asks; nobody without the secret can tell a VIN from its id.
 */
export function vehicleIdOf(registrySecret: Uint8Array, vin: string): Uint8Array {
  return hmacSha256(
    registrySecret,
    concatBytes(utf8.encode('cityledger/usedcar/vehicle/v1'), ZERO, utf8.encode(vin.trim().toUpperCase())),
  )
}
