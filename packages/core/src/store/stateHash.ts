import { hash } from 'node:crypto'
import { DOMAIN, domainPrefix } from '../crypto/hash.ts'

/**
 * Hashes of the state tree. By definition
 *   path(key)          = SHA-256(key)
 *   leaf(path, value)  = taggedHash(DOMAIN.stateLeaf, path, SHA-256(value))
 *   node(left, right)  = taggedHash(DOMAIN.stateNode, left, right)
 *   empty subtree      = 32 zero bytes
 *
 * Inside the tree a hash is a 32-character latin1 string (`Hash32`), not a Uint8Array: a large block
 * hashes hundreds of thousands of nodes, and a digest returned as a string is about three times
 * cheaper than one returned as a Buffer (no ArrayBuffer per hash for the GC to track). Latin1 strings
 * compare like the bytes they hold, so paths sort with `<`. Bytes come back out at the API boundary.
 */
export type Hash32 = string

const LEAF = domainPrefix(DOMAIN.stateLeaf)
const NODE = domainPrefix(DOMAIN.stateNode)
const leafBuf = Buffer.alloc(LEAF.length + 64)
leafBuf.set(LEAF)
const nodeBuf = Buffer.alloc(NODE.length + 64)
nodeBuf.set(NODE)
const LEAF_AT = LEAF.length
const NODE_AT = NODE.length

export const EMPTY: Hash32 = '\0'.repeat(32)

/** SHA-256 of `data`. */
export function sha256Str(data: Uint8Array): Hash32 {
  return hash('sha256', data, 'binary')
}

/**
 * `Buffer#latin1Write`: what `buf.write(s, at, n, 'latin1')` calls after sorting out its arguments, a
 * method of Buffer.prototype in every Node release (undocumented, so checked for). For 32 bytes it is
 * ~10 % of a whole update faster than a JS copy loop (which `Buffer#write` with its argument handling
 * does not beat). Past the end of `out` it throws a RangeError.
 */
type Latin1Write = (this: Buffer, s: string, at: number, length: number) => number
const latin1Write = (Buffer.prototype as unknown as { latin1Write?: Latin1Write }).latin1Write

/** Writes the 32 bytes of `h` into `out` at `at`. */
export const putHash: (out: Buffer, at: number, h: Hash32) => void =
  typeof latin1Write === 'function'
    ? (out, at, h) => {
        latin1Write.call(out, h, at, 32)
      }
    : (out, at, h) => {
        if (at + 32 > out.length) throw new RangeError('putHash: past the end of the buffer')
        for (let i = 0; i < 32; i++) out[at + i] = h.charCodeAt(i)
      }

export function leafHash(path: Hash32, valueHash: Hash32): Hash32 {
  putHash(leafBuf, LEAF_AT, path)
  putHash(leafBuf, LEAF_AT + 32, valueHash)
  return hash('sha256', leafBuf, 'binary')
}

export function nodeHash(left: Hash32, right: Hash32): Hash32 {
  putHash(nodeBuf, NODE_AT, left)
  putHash(nodeBuf, NODE_AT + 32, right)
  return hash('sha256', nodeBuf, 'binary')
}

/** Bit `depth` of a 256-bit path, most significant bit first. */
export function bitAt(path: Hash32, depth: number): number {
  return (path.charCodeAt(depth >> 3) >> (7 - (depth & 7))) & 1
}

/** A fresh plain Uint8Array of the hash. */
export function hashBytes(h: Hash32): Uint8Array {
  const out = new Uint8Array(32)
  for (let i = 0; i < 32; i++) out[i] = h.charCodeAt(i)
  return out
}

/** The Hash32 of 32 bytes (callers check the length). */
export function hashFromBytes(b: Uint8Array): Hash32 {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1')
}

export function hashHex(h: Hash32): string {
  return Buffer.from(h, 'latin1').toString('hex')
}
