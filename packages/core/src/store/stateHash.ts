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
const leafBuf = new Uint8Array(LEAF.length + 64)
leafBuf.set(LEAF)
const nodeBuf = new Uint8Array(NODE.length + 64)
nodeBuf.set(NODE)
const LEAF_AT = LEAF.length
const NODE_AT = NODE.length

export const EMPTY: Hash32 = '\0'.repeat(32)

/** SHA-256 of `data`. */
export function sha256Str(data: Uint8Array): Hash32 {
  return hash('sha256', data, 'binary')
}

// A JIT-compiled copy loop beats Buffer#write here: the strings are short and the call crosses into C++.
function put32(out: Uint8Array, at: number, h: Hash32): void {
  for (let i = 0; i < 32; i++) out[at + i] = h.charCodeAt(i)
}

export function leafHash(path: Hash32, valueHash: Hash32): Hash32 {
  put32(leafBuf, LEAF_AT, path)
  put32(leafBuf, LEAF_AT + 32, valueHash)
  return hash('sha256', leafBuf, 'binary')
}

export function nodeHash(left: Hash32, right: Hash32): Hash32 {
  put32(nodeBuf, NODE_AT, left)
  put32(nodeBuf, NODE_AT + 32, right)
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
