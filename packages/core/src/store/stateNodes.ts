import { EMPTY_HASH, bitAt, sha256Fast, stateLeafHash, stateNodeHash } from './stateHash.ts'

/**
 * The in-memory state tree: a binary tree over 256-bit paths where a leaf sits at the first depth at
 * which no other path shares its prefix, so the tree is canonical (its shape, and so its root, depends
 * only on the set of entries) and ~log2(n) deep. Nodes are copy-on-write: an update builds new nodes
 * along the touched paths and leaves the old tree intact until the caller swaps roots, so a failed
 * disk write never leaves memory ahead of the disk. `hash === null` marks a node built by the pending
 * update (not hashed or persisted yet).
 */
export class Leaf {
  hash: Uint8Array | null
  readonly path: Uint8Array
  readonly value: Uint8Array
  constructor(path: Uint8Array, value: Uint8Array) {
    this.hash = null
    this.path = path
    this.value = value
  }
}

export class Inner {
  hash: Uint8Array | null
  readonly left: TreeNode | null
  readonly right: TreeNode | null
  constructor(left: TreeNode | null, right: TreeNode | null) {
    this.hash = null
    this.left = left
    this.right = right
  }
}

export type TreeNode = Leaf | Inner

/** First index in [lo, hi) whose path has bit `depth` set (the paths are sorted and share the prefix). */
function splitIndex(paths: readonly Uint8Array[], depth: number, lo: number, hi: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (bitAt(paths[mid]!, depth) === 0) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** A canonical subtree at `depth` holding the non-null entries of [lo, hi). */
function build(depth: number, paths: readonly Uint8Array[], values: readonly (Uint8Array | null)[], lo: number, hi: number): TreeNode | null {
  let count = 0
  let only = -1
  for (let i = lo; i < hi && count < 2; i++) {
    if (values[i] !== null) {
      count++
      only = i
    }
  }
  if (count === 0) return null
  if (count === 1) return new Leaf(paths[only]!, values[only]!)
  const mid = splitIndex(paths, depth, lo, hi)
  return join(build(depth + 1, paths, values, lo, mid), build(depth + 1, paths, values, mid, hi))
}

/** The canonical parent of two subtrees: an empty side lets a lone leaf move up. */
function join(left: TreeNode | null, right: TreeNode | null): TreeNode | null {
  if (left === null) return right === null || right instanceof Leaf ? right : new Inner(null, right)
  if (right === null) return left instanceof Leaf ? left : new Inner(left, null)
  return new Inner(left, right)
}

function mergeIntoLeaf(leaf: Leaf, depth: number, paths: readonly Uint8Array[], values: readonly (Uint8Array | null)[], lo: number, hi: number): TreeNode | null {
  const ps: Uint8Array[] = []
  const vs: (Uint8Array | null)[] = []
  let placed = false
  for (let i = lo; i < hi; i++) {
    const c = placed ? -1 : Buffer.compare(leaf.path, paths[i]!)
    if (c < 0 && !placed) {
      ps.push(leaf.path)
      vs.push(leaf.value)
      placed = true
    } else if (c === 0) {
      placed = true // the write replaces or deletes the leaf
      if (hi - lo === 1 && values[i] !== null && Buffer.compare(values[i]!, leaf.value) === 0) return leaf
    }
    ps.push(paths[i]!)
    vs.push(values[i]!)
  }
  if (!placed) {
    ps.push(leaf.path)
    vs.push(leaf.value)
  }
  return build(depth, ps, vs, 0, ps.length)
}

/**
 * Applies sorted, distinct-path writes (`null` value = delete) to the subtree `node` at `depth` and
 * returns the new subtree; untouched subtrees are shared, not copied. O(k log n) for k writes.
 */
export function updateTree(
  node: TreeNode | null,
  depth: number,
  paths: readonly Uint8Array[],
  values: readonly (Uint8Array | null)[],
  lo: number,
  hi: number,
): TreeNode | null {
  if (lo >= hi) return node
  if (node === null) return build(depth, paths, values, lo, hi)
  if (node instanceof Leaf) return mergeIntoLeaf(node, depth, paths, values, lo, hi)
  const mid = splitIndex(paths, depth, lo, hi)
  const left = updateTree(node.left, depth + 1, paths, values, lo, mid)
  const right = updateTree(node.right, depth + 1, paths, values, mid, hi)
  if (left === node.left && right === node.right) return node
  return join(left, right)
}

/**
 * Hashes every node the pending update built (post-order) and reports each new node that roots a
 * storage page (`onPage`, see statePage.ts). Returns the subtree's hash.
 */
export function sealTree(node: TreeNode | null, depth: number, onPage: ((node: TreeNode, depth: number) => void) | null): Uint8Array {
  if (node === null) return EMPTY_HASH
  if (node.hash !== null) return node.hash
  if (node instanceof Leaf) {
    node.hash = stateLeafHash(node.path, sha256Fast(node.value))
  } else {
    const l = node.left === null ? EMPTY_HASH : node.left.hash ?? sealTree(node.left, depth + 1, onPage)
    const r = node.right === null ? EMPTY_HASH : node.right.hash ?? sealTree(node.right, depth + 1, onPage)
    node.hash = stateNodeHash(l, r)
    if (onPage !== null && (depth & 3) === 0) onPage(node, depth)
  }
  return node.hash
}

/** Hash of a subtree that `sealTree` has already hashed. */
export function hashOf(node: TreeNode | null): Uint8Array {
  if (node === null) return EMPTY_HASH
  if (node.hash === null) throw new Error('invariant broken: state node read before it was sealed')
  return node.hash
}
