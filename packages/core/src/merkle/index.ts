import { equalBytes } from '../bytes/index.ts'
import { DOMAIN, taggedHash } from '../crypto/hash.ts'
import { CityError } from '../errors/index.ts'

/**
 * Binary Merkle tree over an ordered list of leaves, shaped as in RFC 6962 (the left subtree holds the
 * largest power of two below n), with domain-separated leaf and node hashes so that a leaf can never be
 * passed off as an inner node. The root of an empty list is SHA-256 of the leaf domain alone.
 */

export interface MerkleProof {
  /** Position of the leaf, 0-based. */
  index: number
  /** Number of leaves in the tree. */
  total: number
  /** Sibling hashes from the leaf up to the root. */
  siblings: Uint8Array[]
}

export function leafHash(data: Uint8Array): Uint8Array {
  return taggedHash(DOMAIN.merkleLeaf, data)
}

function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return taggedHash(DOMAIN.merkleNode, left, right)
}

function splitPoint(n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

function rootOfHashes(hashes: Uint8Array[], lo: number, hi: number): Uint8Array {
  if (hi - lo === 1) return hashes[lo]!
  const k = splitPoint(hi - lo)
  return nodeHash(rootOfHashes(hashes, lo, lo + k), rootOfHashes(hashes, lo + k, hi))
}

/** Root over `leaves` (each leaf is hashed with the leaf domain first). */
export function merkleRoot(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return taggedHash(DOMAIN.merkleLeaf)
  return rootOfHashes(leaves.map(leafHash), 0, leaves.length)
}

/** Inclusion proof for `leaves[index]`. */
export function merkleProof(leaves: readonly Uint8Array[], index: number): MerkleProof {
  if (!Number.isInteger(index) || index < 0 || index >= leaves.length) {
    throw new CityError('BAD_INDEX', `index ${index} out of range 0..${leaves.length - 1}`)
  }
  const hashes = leaves.map(leafHash)
  const siblings: Uint8Array[] = []
  const walk = (lo: number, hi: number): void => {
    if (hi - lo === 1) return
    const k = splitPoint(hi - lo)
    if (index < lo + k) {
      walk(lo, lo + k)
      siblings.push(rootOfHashes(hashes, lo + k, hi))
    } else {
      walk(lo + k, hi)
      siblings.push(rootOfHashes(hashes, lo, lo + k))
    }
  }
  walk(0, leaves.length)
  return { index, total: leaves.length, siblings }
}

/** Standalone check: does `proof` show that `leaf` is at `proof.index` under `root`? Never throws. */
export function verifyMerkleProof(root: Uint8Array, leaf: Uint8Array, proof: MerkleProof): boolean {
  const { index, total, siblings } = proof
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(total) || index < 0 || index >= total)
    return false
  // Recompute the path shape top-down, then fold the siblings bottom-up.
  const lefts: boolean[] = []
  let lo = 0
  let hi = total
  while (hi - lo > 1) {
    const k = splitPoint(hi - lo)
    if (index < lo + k) {
      lefts.push(true)
      hi = lo + k
    } else {
      lefts.push(false)
      lo = lo + k
    }
  }
  if (lefts.length !== siblings.length) return false
  let h = leafHash(leaf)
  for (let i = siblings.length - 1, j = 0; i >= 0; i--, j++) {
    const s = siblings[j]!
    if (!(s instanceof Uint8Array) || s.length !== 32) return false
    h = lefts[i] ? nodeHash(h, s) : nodeHash(s, h)
  }
  return equalBytes(h, root)
}
