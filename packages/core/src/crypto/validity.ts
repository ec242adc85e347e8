/**
 * The one Ed25519 validity rule of cityledger (full text: packages/core/docs/validity-rule.md).
 *
 * It is libsodium's `crypto_sign_verify_detached` in its default (non-compat) mode, written down so
 * that every verification path (pure JS, libsodium, OpenSSL, the worker pool) gives the same verdict
 * on every input. A signature `sig = R || S` of message `M` under public key `A` is valid iff:
 *
 * 1. `sig` is 64 bytes and `A` is 32 bytes;
 * 2. `S` (bytes 32..63, little-endian, all 256 bits) is `< L`, the group order
 *    `2^252 + 27742317777372353535851937790883648493`;
 * 3. `R` is not one of the seven small-order blacklist encodings below, compared on all 32 bytes with
 *    the top bit of byte 31 masked off (libsodium's `ge25519_has_small_order`);
 * 4. `A` is canonical: its y coordinate (top bit of byte 31 masked off) is `< p = 2^255 - 19`
 *    (libsodium's `ge25519_is_canonical`), and `A` is not in the same blacklist;
 * 5. `A` decodes to a curve point (x^2 = (y^2 - 1) / (d y^2 + 1) has a root);
 * 6. cofactorless equation: with `k = SHA-512(R || A || M) mod L` and `R' = [S]B - [k]A`, the
 *    canonical encoding of `R'` equals the 32 bytes of `R` exactly (so a non-canonical `R` never
 *    passes). `A` is NOT required to lie in the prime-order subgroup (mixed-order keys are accepted when
 *    the cofactorless equation holds, as libsodium does).
 *
 * Checks 1-4 are cheap byte comparisons: `precheck` applies them and every verifier runs it first, so
 * a verdict never depends on which OpenSSL or libsodium version a node links (older libsodium builds
 * and OpenSSL differ exactly on these edge cases).
 */

/** The prime order L of the Ed25519 base point, little-endian. */
export const ED25519_L = Uint8Array.from([
  0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
])

function fill(first: number[], rest: number, last: number): Uint8Array {
  const out = new Uint8Array(32).fill(rest)
  out.set(first)
  out[31] = last
  return out
}

/**
 * libsodium's small-order blacklist (`ge25519_has_small_order`), in its order: 0 (order 4), 1 (order 1),
 * the two order-8 y coordinates, p-1 (order 2), p (= 0, non-canonical) and p+1 (= 1, non-canonical).
 * Matched with the sign bit (top bit of byte 31) ignored, so each entry stands for two encodings.
 */
export const SMALL_ORDER_ENCODINGS: readonly Uint8Array[] = Object.freeze([
  fill([], 0x00, 0x00),
  fill([0x01], 0x00, 0x00),
  Uint8Array.from([
    0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5,
    0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
  ]),
  Uint8Array.from([
    0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a,
    0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a,
  ]),
  fill([0xec], 0xff, 0x7f),
  fill([0xed], 0xff, 0x7f),
  fill([0xee], 0xff, 0x7f),
])

/** Rule 2: the 32 bytes at `offset` read as a little-endian integer are `< L`. */
export function isCanonicalScalar(bytes: Uint8Array, offset = 0): boolean {
  for (let i = 31; i >= 0; i--) {
    const b = bytes[offset + i]!
    const l = ED25519_L[i]!
    if (b !== l) return b < l
  }
  return false // equal to L
}

/** Rule 3 (and half of rule 4): the point encoding at `offset` is in the small-order blacklist. */
export function hasSmallOrderEncoding(bytes: Uint8Array, offset = 0): boolean {
  outer: for (const entry of SMALL_ORDER_ENCODINGS) {
    for (let i = 0; i < 31; i++) if (bytes[offset + i] !== entry[i]) continue outer
    if ((bytes[offset + 31]! & 0x7f) === entry[31]) return true
  }
  return false
}

/** Rule 4: the y coordinate of the encoding (sign bit masked off) is `< p = 2^255 - 19`. */
export function isCanonicalPointEncoding(bytes: Uint8Array, offset = 0): boolean {
  // y >= p iff bytes 31..1 are all 0xff (byte 31 masked to 0x7f) and byte 0 >= 0xed.
  if ((bytes[offset + 31]! & 0x7f) !== 0x7f) return true
  for (let i = 30; i > 0; i--) if (bytes[offset + i] !== 0xff) return true
  return bytes[offset]! < 0xed
}

/**
 * Rules 1-4 of the validity rule: the byte checks every verifier applies before any curve arithmetic.
 * `false` means the signature is invalid whatever follows; `true` means the curve equation decides.
 *
 * @example
 * if (!precheck(publicKey, signature)) return false
 */
export function precheck(publicKey: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false
  if (!isCanonicalScalar(signature, 32)) return false
  if (hasSmallOrderEncoding(signature, 0)) return false
  if (!isCanonicalPointEncoding(publicKey, 0)) return false
  if (hasSmallOrderEncoding(publicKey, 0)) return false
  return true
}
