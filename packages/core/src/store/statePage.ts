import { corrupt } from './errors.ts'
import { EMPTY_HASH, sameBytes, sha256Fast, stateLeafHash, stateNodeHash } from './stateHash.ts'
import { Leaf, type TreeNode, hashOf } from './stateNodes.ts'

/**
 * On disk the tree is stored in pages, content-addressed by the hash of their top node: a page holds
 * a node at a depth divisible by 4 and its descendants down to 4 levels below, where inner nodes are
 * stored as references to their own pages; leaves (with their values) sit inline. One page instead of
 * one record per node cuts the records written per block about fourfold (LevelDB's cost is per record),
 * and pages are never overwritten or deleted, so every stored root stays provable.
 *
 * Encoding, pre-order: 0x00 empty | 0x01 inner, left, right | 0x02 leaf, path(32), length(u32), value |
 * 0x03 reference to the page of an inner node, hash(32). A page's top node is a leaf only when the
 * whole tree is one leaf.
 */

const PAGE_LEVELS = 4
const EMPTY = 0
const INNER = 1
const LEAF = 2
const REF = 3

function pageSize(node: TreeNode | null, rel: number): number {
  if (node === null) return 1
  if (node instanceof Leaf) return 37 + node.value.length
  if (rel === PAGE_LEVELS) return 33
  return 1 + pageSize(node.left, rel + 1) + pageSize(node.right, rel + 1)
}

function writePage(node: TreeNode | null, rel: number, out: Uint8Array, at: number): number {
  if (node === null) {
    out[at] = EMPTY
    return at + 1
  }
  if (node instanceof Leaf) {
    out[at] = LEAF
    out.set(node.path, at + 1)
    const n = node.value.length
    out[at + 33] = n >>> 24
    out[at + 34] = (n >>> 16) & 0xff
    out[at + 35] = (n >>> 8) & 0xff
    out[at + 36] = n & 0xff
    out.set(node.value, at + 37)
    return at + 37 + n
  }
  if (rel === PAGE_LEVELS) {
    out[at] = REF
    out.set(hashOf(node), at + 1)
    return at + 33
  }
  out[at] = INNER
  return writePage(node.right, rel + 1, out, writePage(node.left, rel + 1, out, at + 1))
}

/** The page whose top node is `node` (already sealed). */
export function encodePage(node: TreeNode): Uint8Array {
  const out = new Uint8Array(pageSize(node, 0))
  const end = writePage(node, 0, out, 0)
  if (end !== out.length) throw new Error('invariant broken: state page size')
  return out
}

/** A node of a decoded page. `ref` nodes stand for a subtree stored in another page. */
export type PageNode =
  | { kind: 'empty'; hash: Uint8Array }
  | { kind: 'leaf'; hash: Uint8Array; path: Uint8Array; value: Uint8Array; valueHash: Uint8Array }
  | { kind: 'inner'; hash: Uint8Array; left: PageNode; right: PageNode }
  | { kind: 'ref'; hash: Uint8Array }

const EMPTY_NODE: PageNode = { kind: 'empty', hash: EMPTY_HASH }

/**
 * Decodes the page stored under `hash` and checks that it hashes to it: a page that does not is
 * corrupt (`STORE_CORRUPT`), whatever is wrong with it.
 */
export function decodePage(bytes: Uint8Array, hash: Uint8Array): PageNode {
  const what = `state page ${Buffer.from(hash).toString('hex')}`
  let at = 0
  const read = (rel: number): PageNode => {
    if (at >= bytes.length) throw corrupt(what, 'truncated')
    const tag = bytes[at++]
    if (tag === EMPTY) return EMPTY_NODE
    if (tag === LEAF) {
      if (at + 36 > bytes.length) throw corrupt(what, 'truncated leaf')
      const path = bytes.slice(at, at + 32)
      const n = ((bytes[at + 32]! << 24) | (bytes[at + 33]! << 16) | (bytes[at + 34]! << 8) | bytes[at + 35]!) >>> 0
      at += 36
      if (at + n > bytes.length) throw corrupt(what, 'truncated value')
      const value = bytes.slice(at, at + n)
      at += n
      const valueHash = sha256Fast(value)
      return { kind: 'leaf', hash: stateLeafHash(path, valueHash), path, value, valueHash }
    }
    if (tag === REF) {
      if (rel !== PAGE_LEVELS) throw corrupt(what, 'reference inside a page')
      if (at + 32 > bytes.length) throw corrupt(what, 'truncated reference')
      const h = bytes.slice(at, at + 32)
      at += 32
      return { kind: 'ref', hash: h }
    }
    if (tag === INNER && rel < PAGE_LEVELS) {
      const left = read(rel + 1)
      const right = read(rel + 1)
      return { kind: 'inner', hash: stateNodeHash(left.hash, right.hash), left, right }
    }
    throw corrupt(what, `bad node tag ${tag}`)
  }
  const top = read(0)
  if (at !== bytes.length) throw corrupt(what, 'trailing bytes')
  if (!sameBytes(top.hash, hash)) throw corrupt(what, 'content does not match its hash')
  return top
}
