import { CodecError, decodeStrict, encode, expectArray, expectBytes } from '../codec/msgpack.ts'
import { EMPTY, type Hash32, bitAt, hashFromBytes, leafHash, nodeHash, sha256Str } from './stateHash.ts'

/**
 * Proof that a key has a given value, or no value, under a state root.
 *
 * `siblings[i]` is the hash of the sibling subtree at depth `i + 1` along the key's path, from the
 * root down; the walk ends at depth `siblings.length` in either
 * - the key's own leaf (membership; `leaf` is null), or
 * - an empty subtree (non-membership; `leaf` is null), or
 * - the leaf of another key whose path shares the first `siblings.length` bits (non-membership;
 *   `leaf` gives that leaf's path and value hash, never its value).
 *
 * Plain bytes and arrays only, so it travels as msgpack (see `encodeStateProof`).
 */
export interface StateProof {
  siblings: Uint8Array[]
  leaf: { path: Uint8Array; valueHash: Uint8Array } | null
}

const MAX_DEPTH = 256

function isHash(x: unknown): x is Uint8Array {
  return x instanceof Uint8Array && x.length === 32
}

/**
 * Checks `proof` for `key` having `value` (or being absent when `value` is undefined) under `root`.
 * Needs nothing but its arguments; returns false, never throws, on any malformed input.
 */
export function verifyStateProof(
  root: Uint8Array,
  key: Uint8Array,
  value: Uint8Array | undefined,
  proof: StateProof,
): boolean {
  try {
    if (!isHash(root) || !(key instanceof Uint8Array)) return false
    if (value !== undefined && !(value instanceof Uint8Array)) return false
    if (proof === null || typeof proof !== 'object') return false
    const { siblings, leaf } = proof
    if (!Array.isArray(siblings) || siblings.length > MAX_DEPTH) return false
    for (const s of siblings) if (!isHash(s)) return false
    const path = sha256Str(key)
    const depth = siblings.length
    let h: Hash32
    if (value !== undefined) {
      if (leaf !== null) return false
      h = leafHash(path, sha256Str(value))
    } else if (leaf === null) {
      h = EMPTY
    } else {
      if (typeof leaf !== 'object' || !isHash(leaf.path) || !isHash(leaf.valueHash)) return false
      const other = hashFromBytes(leaf.path)
      if (other === path) return false
      // The other leaf must live in the subtree the walk reached: same first `depth` bits.
      for (let i = 0; i < depth; i++) if (bitAt(other, i) !== bitAt(path, i)) return false
      h = leafHash(other, hashFromBytes(leaf.valueHash))
    }
    for (let d = depth - 1; d >= 0; d--) {
      const s = hashFromBytes(siblings[d]!)
      h = bitAt(path, d) === 0 ? nodeHash(h, s) : nodeHash(s, h)
    }
    return h === hashFromBytes(root)
  } catch {
    return false
  }
}

/** `[siblings, leafPath | null, leafValueHash | null]` as canonical msgpack. */
export function encodeStateProof(proof: StateProof): Uint8Array {
  return encode([proof.siblings, proof.leaf?.path ?? null, proof.leaf?.valueHash ?? null])
}

/** Strict inverse of `encodeStateProof`; throws CodecError on anything else. */
export function decodeStateProof(bytes: Uint8Array): StateProof {
  const f = expectArray(
    decodeStrict(bytes, { maxBytes: 16 + 34 * (MAX_DEPTH + 2), maxDepth: 2 }),
    3,
    'state proof',
  )
  const list = f[0]
  if (!Array.isArray(list) || list.length > MAX_DEPTH) {
    throw new CodecError('BAD_FIELD', 'proof.siblings: expected an array of hashes', { field: 'siblings' })
  }
  const siblings = list.map((s, i) => Uint8Array.from(expectBytes(s, `proof.siblings[${i}]`, 32)))
  if (f[1] === null && f[2] === null) return { siblings, leaf: null }
  return {
    siblings,
    leaf: {
      path: Uint8Array.from(expectBytes(f[1], 'proof.leafPath', 32)),
      valueHash: Uint8Array.from(expectBytes(f[2], 'proof.leafValueHash', 32)),
    },
  }
}
