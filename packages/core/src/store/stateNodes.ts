import { EMPTY, type Hash32, bitAt, leafHash, nodeHash, sha256Str } from './stateHash.ts'

/**
 * The in-memory state tree: a binary tree over 256-bit paths where a leaf sits at the first depth at
 * which no other path shares its prefix, so the tree is canonical (its shape, and so its root, depends
 * only on the set of entries) and ~log2(n) deep. Nodes are copy-on-write: an update builds new nodes
 * along the touched paths and leaves the old tree intact until the caller swaps roots, so a failed
 * disk write never leaves memory ahead of the disk. `hash === null` marks a node built by the pending
 * update (not hashed or persisted yet).
 */
export class Leaf {
  hash: Hash32 | null
  readonly path: Hash32
  readonly value: Uint8Array
  constructor(path: Hash32, value: Uint8Array) {
    this.hash = null
    this.path = path
    this.value = value
  }
}

export class Inner {
  hash: Hash32 | null
  readonly left: TreeNode | null
  readonly right: TreeNode | null
  constructor(left: TreeNode | null, right: TreeNode | null) {
    this.hash = null
    this.left = left
    this.right = right
  }
}

export type TreeNode = Leaf | Inner

/**
 * Sets a side of an inner node that is not part of any live tree yet: state sync builds its tree page
 * by page, and a page's subtree arrives after the page that refers to it. Nothing else changes a node.
 */
export function setChild(parent: Inner, right: boolean, child: TreeNode | null): void {
  const writable = parent as { left: TreeNode | null; right: TreeNode | null }
  if (right) writable.right = child
  else writable.left = child
}

/**
 * Writes sorted by path, distinct paths: `leaves[i]` is the new leaf for `paths[i]` (its path), or
 * `null` to delete. Passing leaves rather than values lets the tree keep a leaf it already hashed.
 */
export interface SortedWrites {
  paths: readonly Hash32[]
  leaves: readonly (Leaf | null)[]
}

/** First index in [lo, hi) whose path has bit `depth` set (the paths are sorted and share the prefix). */
function splitIndex(paths: readonly Hash32[], depth: number, lo: number, hi: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (bitAt(paths[mid]!, depth) === 0) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** A canonical subtree at `depth` holding the non-null entries of [lo, hi). */
function build(depth: number, w: SortedWrites, lo: number, hi: number): TreeNode | null {
  let count = 0
  let only = -1
  for (let i = lo; i < hi && count < 2; i++) {
    if (w.leaves[i] !== null) {
      count++
      only = i
    }
  }
  if (count === 0) return null
  // A leaf's hash does not depend on its depth, so a leaf that moves (an old one pushed down by a new
  // neighbour) is reused as it is, hash included.
  if (count === 1) return w.leaves[only]!
  const mid = splitIndex(w.paths, depth, lo, hi)
  return join(build(depth + 1, w, lo, mid), build(depth + 1, w, mid, hi))
}

/** The canonical parent of two subtrees: an empty side lets a lone leaf move up. */
function join(left: TreeNode | null, right: TreeNode | null): TreeNode | null {
  if (left === null) return right === null || right instanceof Leaf ? right : new Inner(null, right)
  if (right === null) return left instanceof Leaf ? left : new Inner(left, null)
  return new Inner(left, right)
}

/** `next` unless it only rewrites `leaf`'s value with the same bytes: then the hashed `leaf`. */
function unlessSame(leaf: Leaf, next: Leaf | null): Leaf | null {
  return next !== null && Buffer.compare(next.value, leaf.value) === 0 ? leaf : next
}

function mergeIntoLeaf(leaf: Leaf, depth: number, w: SortedWrites, lo: number, hi: number): TreeNode | null {
  if (hi - lo === 1 && w.paths[lo] === leaf.path) return unlessSame(leaf, w.leaves[lo]!)
  const paths: Hash32[] = []
  const leaves: (Leaf | null)[] = []
  let placed = false
  for (let i = lo; i < hi; i++) {
    const p = w.paths[i]!
    if (!placed && leaf.path <= p) {
      placed = true
      // A write to the leaf's own path replaces (or deletes) it.
      if (leaf.path !== p) {
        paths.push(leaf.path)
        leaves.push(leaf)
      } else {
        paths.push(p)
        leaves.push(unlessSame(leaf, w.leaves[i]!))
        continue
      }
    }
    paths.push(p)
    leaves.push(w.leaves[i]!)
  }
  if (!placed) {
    paths.push(leaf.path)
    leaves.push(leaf)
  }
  return build(depth, { paths, leaves }, 0, paths.length)
}

/**
 * Applies sorted, distinct-path writes to the subtree `node` at `depth` and returns the new subtree;
 * untouched subtrees are shared, not copied. O(k log n) for k writes.
 */
export function updateTree(
  node: TreeNode | null,
  depth: number,
  w: SortedWrites,
  lo: number,
  hi: number,
): TreeNode | null {
  if (lo >= hi) return node
  if (node === null) return build(depth, w, lo, hi)
  if (node instanceof Leaf) return mergeIntoLeaf(node, depth, w, lo, hi)
  const mid = splitIndex(w.paths, depth, lo, hi)
  const left = updateTree(node.left, depth + 1, w, lo, mid)
  const right = updateTree(node.right, depth + 1, w, mid, hi)
  if (left === node.left && right === node.right) return node
  return join(left, right)
}

/**
 * Hashes every node the pending update built (post-order) and reports each new inner node at a depth
 * divisible by 4, which roots a storage page (see statePage.ts). Returns the subtree's hash.
 */
export function sealTree(
  node: TreeNode | null,
  depth: number,
  onPage: ((node: Inner) => void) | null,
): Hash32 {
  if (node === null) return EMPTY
  if (node.hash !== null) return node.hash
  if (node instanceof Leaf) {
    node.hash = leafHash(node.path, sha256Str(node.value))
  } else {
    const l = node.left === null ? EMPTY : (node.left.hash ?? sealTree(node.left, depth + 1, onPage))
    const r = node.right === null ? EMPTY : (node.right.hash ?? sealTree(node.right, depth + 1, onPage))
    node.hash = nodeHash(l, r)
    if (onPage !== null && (depth & 3) === 0) onPage(node)
  }
  return node.hash
}

/** Hash of a subtree that `sealTree` has already hashed. */
export function hashOf(node: TreeNode | null): Hash32 {
  if (node === null) return EMPTY
  if (node.hash === null) throw new Error('invariant broken: state node read before it was sealed')
  return node.hash
}
