/** Byte helpers shared by every package. Byte strings are lowercase hex wherever they become text. */

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

export function toHex(bytes: Uint8Array): string {
  let out = ''
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i]!]
  return out
}

const HEX_RE = /^(?:[0-9a-f]{2})*$/

/** Strict: lowercase or uppercase hex of even length, nothing else. Throws TypeError naming the field. */
export function fromHex(hex: string, field = 'hex'): Uint8Array {
  if (typeof hex !== 'string') throw new TypeError(`${field}: expected a hex string`)
  const h = hex.toLowerCase()
  if (!HEX_RE.test(h)) throw new TypeError(`${field}: not an even-length hex string`)
  return Uint8Array.from(Buffer.from(h, 'hex'))
}

export function isHex(value: unknown, bytes?: number): value is string {
  return (
    typeof value === 'string' &&
    HEX_RE.test(value.toLowerCase()) &&
    (bytes === undefined || value.length === bytes * 2)
  )
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let len = 0
  for (const p of parts) len += p.length
  const out = new Uint8Array(len)
  let off = 0
  for (const p of parts) {
    out.set(p, off)
    off += p.length
  }
  return out
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** Lexicographic order, shorter first on a common prefix. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return a.length - b.length
}

// One of each: neither keeps state between calls (no `stream: true`), and building them is not free.
const utf8Encoder = new TextEncoder()
const utf8Decoder = new TextDecoder('utf-8', { fatal: true })

export const utf8 = {
  encode: (s: string): Uint8Array => utf8Encoder.encode(s),
  decode: (b: Uint8Array): string => utf8Decoder.decode(b),
}

/** A plain Uint8Array view (never a Node Buffer) so equality and encoding behave the same everywhere. */
export function plainBytes(b: Uint8Array): Uint8Array {
  return b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
}
