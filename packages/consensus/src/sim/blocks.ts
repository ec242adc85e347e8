import { type Value, decodeStrict, encode, expectArray, expectUint, sha256 } from '@cityledger/core'

const TAG = 'cityledger/sim-block'

/**
 * A simulated block: unique per proposal, marked valid or not (Byzantine primaries propose invalid
 * ones), and padded with `padding` zero bytes so that blocks can be as large as the node's real ones.
 */
export interface SimBlock {
  height: number
  view: number
  proposer: number
  nonce: number
  valid: boolean
  /** Zero bytes after the header (default 0). */
  padding?: number
}

let zeros = new Uint8Array(0)
function zeroBytes(n: number): Uint8Array {
  if (zeros.length < n) zeros = new Uint8Array(Math.max(n, 2 * zeros.length))
  return zeros.subarray(0, n)
}

/** Wire form: 2-byte header length, msgpack header, then `padding` zero bytes. */
export function encodeSimBlock(b: SimBlock): Uint8Array {
  const padding = b.padding ?? 0
  const header = encode([TAG, b.height, b.view, b.proposer, b.nonce, b.valid ? 1 : 0, padding])
  const out = new Uint8Array(2 + header.length + padding)
  out[0] = header.length >> 8
  out[1] = header.length & 0xff
  out.set(header, 2)
  return out
}

interface Parsed {
  block: SimBlock
  digest: Uint8Array
}

/**
 * Parses per block bytes, by where they lie in memory (ArrayBuffer, offset, length): every replica gets
 * its own view of a block (each decodes the message that carries it) over the same buffer, and the zero
 * check of the padding costs milliseconds for big blocks. Sound because nothing writes into block bytes
 * once built; a copy of the header (which fixes the digest) is compared on every hit all the same.
 */
const parsed = new WeakMap<
  ArrayBufferLike,
  Map<number, { length: number; header: Uint8Array; p: Parsed | undefined }[]>
>()

function parse(bytes: Uint8Array): Parsed | undefined {
  let atOffset = parsed.get(bytes.buffer)
  if (!atOffset) parsed.set(bytes.buffer, (atOffset = new Map()))
  let entries = atOffset.get(bytes.byteOffset)
  if (!entries) atOffset.set(bytes.byteOffset, (entries = []))
  const header = headerOf(bytes)
  const hit = entries.find((e) => e.length === bytes.length)
  if (hit && Buffer.compare(hit.header, header) === 0) return hit.p
  const p = parseUncached(bytes)
  if (hit) Object.assign(hit, { header: header.slice(), p })
  else entries.push({ length: bytes.length, header: header.slice(), p })
  return p
}

/** The header bytes as `parseUncached` reads them (at most 258 bytes, whatever the block size). */
function headerOf(bytes: Uint8Array): Uint8Array {
  if (bytes.length < 2) return bytes
  // A length over 256 is refused whatever follows.
  const len = Math.min(256, (bytes[0]! << 8) | bytes[1]!)
  return bytes.subarray(0, Math.min(bytes.length, 2 + len))
}

function parseUncached(bytes: Uint8Array): Parsed | undefined {
  if (bytes.length < 2) return undefined
  const len = (bytes[0]! << 8) | bytes[1]!
  if (len > 256 || bytes.length < 2 + len) return undefined
  const header = bytes.subarray(2, 2 + len)
  try {
    const f = expectArray(decodeStrict(header, { maxBytes: 256, maxDepth: 1 }), 7, 'block') as Value[]
    if (f[0] !== TAG) return undefined
    const padding = expectUint(f[6], 'padding')
    if (bytes.length !== 2 + len + padding) return undefined
    // The padding must be zeros, so the header determines the whole block (and its digest).
    if (padding && Buffer.compare(bytes.subarray(2 + len), zeroBytes(padding)) !== 0) return undefined
    return {
      digest: sha256(header),
      block: {
        height: expectUint(f[1], 'height'),
        view: expectUint(f[2], 'view'),
        proposer: expectUint(f[3], 'proposer'),
        nonce: expectUint(f[4], 'nonce'),
        valid: f[5] === 1,
        padding,
      },
    }
  } catch {
    return undefined
  }
}

export function decodeSimBlock(bytes: Uint8Array): SimBlock | undefined {
  const b = parse(bytes)?.block
  // A copy: the parse is shared.
  return b && { ...b }
}

/**
 * Digest of a simulated block, as the node's `blockHashFromBytes` hashes a header that commits to the
 * txs: SHA-256 of the header (which states the padding length; the padding must be zeros). Throws on
 * anything that is not a well-formed simulated block, like the node's digest function does on garbage.
 */
export function simBlockDigest(bytes: Uint8Array): Uint8Array {
  const p = parse(bytes)
  if (!p) throw new Error('not a simulated block')
  return p.digest.slice()
}

/** What the simulated node's validation says: a well-formed block for the expected height, marked valid. */
export function simValidate(bytes: Uint8Array, height: number): boolean {
  const b = decodeSimBlock(bytes)
  return b !== undefined && b.valid && b.height === height
}
