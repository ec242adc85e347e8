import { ed25519 } from '@noble/curves/ed25519.js'
import { sha512 } from '@noble/hashes/sha2.js'
import { assertCheck, closedError } from './errors.ts'
import { ED25519_L, precheck } from './validity.ts'
import type { SignatureCheck, SignatureVerifier } from './verifier.ts'

const Point = ed25519.Point
const L = bytesToBigLE(ED25519_L, 0, 32)

function bytesToBigLE(bytes: Uint8Array, offset: number, length: number): bigint {
  let n = 0n
  for (let i = offset + length - 1; i >= offset; i--) n = (n << 8n) | BigInt(bytes[i]!)
  return n
}

/**
 * The validity rule (see `validity.ts`) computed step by step in pure JS: `precheck`, strict decoding
 * of A, then `encode([S]B - [k]A) == R` byte for byte. It is the reference every other path is tested
 * against. `ed25519.verify` of noble is deliberately not used: its default (ZIP-215) and strict modes
 * both give verdicts that differ from this rule on published edge cases.
 *
 * Bad lengths or encodings give `false`, never an exception.
 */
export function referenceVerdict(check: SignatureCheck): boolean {
  const { publicKey, message, signature } = check
  if (!precheck(publicKey, signature)) return false
  let A: InstanceType<typeof Point>
  try {
    // Strict (RFC 8032) decoding: y < p (already prechecked) and the x root must exist.
    A = Point.fromBytes(publicKey, false)
  } catch {
    return false
  }
  const R = signature.subarray(0, 32)
  const S = bytesToBigLE(signature, 32, 32)
  const h = sha512.create().update(R).update(publicKey).update(message).digest()
  const k = bytesToBigLE(h, 0, 64) % L
  // Variable time is fine: everything here is public.
  const rPrime = Point.BASE.multiplyUnsafe(S).subtract(A.multiplyUnsafe(k)).toBytes()
  for (let i = 0; i < 32; i++) if (rPrime[i] !== R[i]) return false
  return true
}

/**
 * The pure-JS verifier (name `'noble'`): about 800 verify/s on one core, for places without the
 * native library and as the reference in tests. `verifyBatch` runs on the calling thread.
 */
export function createPureVerifier(): SignatureVerifier {
  let closed = false
  const name = 'noble'
  return {
    name,
    verify(check) {
      if (closed) throw closedError(name)
      assertCheck(check)
      return referenceVerdict(check)
    },
    async verifyBatch(checks) {
      if (closed) throw closedError(name)
      checks.forEach(assertCheck)
      return checks.map(referenceVerdict)
    },
    async close() {
      closed = true
    },
  }
}
