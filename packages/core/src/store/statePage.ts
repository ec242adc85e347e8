import { corrupt } from './errors.ts'
import {
  EMPTY,
  type Hash32,
  hashFromBytes,
  hashHex,
  leafHash,
  nodeHash,
  putHash,
  sha256Str,
} from './stateHash.ts'
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
const EMPTY_TAG = 0
const INNER_TAG = 1
const LEAF_TAG = 2
const REF_TAG = 3

/** Writes one page node at `at`; returns the end. Past the end of `out` it writes nothing or throws RangeError. */
function writeNode(out: Buffer, at: number, node: TreeNode | null, rel: number): number {
  if (node === null) {
    out[at] = EMPTY_TAG
    return at + 1
  }
  if (node instanceof Leaf) {
    const v = node.value
    const n = v.length
    out[at] = LEAF_TAG
    putHash(out, at + 1, node.path)
    out[at + 33] = n >>> 24
    out[at + 34] = (n >>> 16) & 0xff
    out[at + 35] = (n >>> 8) & 0xff
    out[at + 36] = n & 0xff
    at += 37
    // Most values are small: a plain loop beats TypedArray#set's fixed cost there.
    if (n <= 64) for (let i = 0; i < n; i++) out[at + i] = v[i]!
    else out.set(v, at)
    return at + n
  }
  if (rel === PAGE_LEVELS) {
    out[at] = REF_TAG
    putHash(out, at + 1, hashOf(node))
    return at + 33
  }
  out[at] = INNER_TAG
  return writeNode(out, writeNode(out, at + 1, node.left, rel + 1), node.right, rel + 1)
}

/**
 * Appends pages (and whatever else a batch needs) to one growing buffer in a single pass, so a block's
 * pages cost one allocation instead of one per page. Offsets stay valid across growth; `finish()`
 * returns the bytes written, which the caller slices into keys and values.
 */
export class PageWriter {
  // A Buffer for `putHash`; not from Buffer's shared pool, and every byte is written before it is read.
  buf: Buffer
  at = 0

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafeSlow(Math.max(64, capacity))
  }

  reserve(n: number): void {
    if (this.at + n <= this.buf.length) return
    const next = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.at + n))
    next.set(this.buf.subarray(0, this.at))
    this.buf = next
  }

  byte(b: number): void {
    this.reserve(1)
    this.buf[this.at++] = b
  }

  hash(h: Hash32): void {
    this.reserve(32)
    putHash(this.buf, this.at, h)
    this.at += 32
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length)
    this.buf.set(b, this.at)
    this.at += b.length
  }

  /** Appends the page whose top node is `node` (already sealed). */
  page(node: TreeNode): void {
    // Sizing a page first would walk it twice (each step a likely cache miss in a large tree), so
    // write optimistically and, in the rare case the buffer was too small, grow it and write again.
    for (;;) {
      try {
        const end = writeNode(this.buf, this.at, node, 0)
        if (end <= this.buf.length) {
          this.at = end
          return
        }
      } catch (err) {
        if (!(err instanceof RangeError)) throw err
      }
      this.reserve(this.buf.length - this.at + 1)
    }
  }

  /** The bytes written so far (a plain Uint8Array view of the internal buffer: write nothing more afterwards). */
  finish(): Uint8Array {
    return new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.at)
  }
}

/** A node of a decoded page. `ref` nodes stand for a subtree stored in another page. */
export type PageNode =
  | { kind: 'empty'; hash: Hash32 }
  | { kind: 'leaf'; hash: Hash32; path: Hash32; value: Uint8Array; valueHash: Hash32 }
  | { kind: 'inner'; hash: Hash32; left: PageNode; right: PageNode }
  | { kind: 'ref'; hash: Hash32 }

const EMPTY_NODE: PageNode = { kind: 'empty', hash: EMPTY }

/**
 * Decodes the page stored under `hash` and checks that it hashes to it: a page that does not is
 * corrupt (`STORE_CORRUPT`), whatever is wrong with it.
 */
export function decodePage(bytes: Uint8Array, hash: Hash32): PageNode {
  const what = `state page ${hashHex(hash)}`
  let at = 0
  const read = (rel: number): PageNode => {
    if (at >= bytes.length) throw corrupt(what, 'truncated')
    const tag = bytes[at++]
    if (tag === EMPTY_TAG) return EMPTY_NODE
    if (tag === LEAF_TAG) {
      if (at + 36 > bytes.length) throw corrupt(what, 'truncated leaf')
      const path = hashFromBytes(bytes.subarray(at, at + 32))
      const n =
        ((bytes[at + 32]! << 24) | (bytes[at + 33]! << 16) | (bytes[at + 34]! << 8) | bytes[at + 35]!) >>> 0
      at += 36
      if (at + n > bytes.length) throw corrupt(what, 'truncated value')
      const value = bytes.slice(at, at + n)
      at += n
      const valueHash = sha256Str(value)
      return { kind: 'leaf', hash: leafHash(path, valueHash), path, value, valueHash }
    }
    if (tag === REF_TAG) {
      if (rel !== PAGE_LEVELS) throw corrupt(what, 'reference inside a page')
      if (at + 32 > bytes.length) throw corrupt(what, 'truncated reference')
      const h = hashFromBytes(bytes.subarray(at, at + 32))
      at += 32
      return { kind: 'ref', hash: h }
    }
    if (tag === INNER_TAG && rel < PAGE_LEVELS) {
      const left = read(rel + 1)
      const right = read(rel + 1)
      return { kind: 'inner', hash: nodeHash(left.hash, right.hash), left, right }
    }
    throw corrupt(what, `bad node tag ${tag}`)
  }
  const top = read(0)
  if (at !== bytes.length) throw corrupt(what, 'trailing bytes')
  if (top.hash !== hash) throw corrupt(what, 'content does not match its hash')
  return top
}

/**
 * The pages a page refers to (its `ref` nodes' hashes), read without hashing anything: what a walk over
 * every page of many versions needs (see statePrune.ts), where `decodePage` would hash each node. A
 * malformed page is `STORE_CORRUPT`.
 */
export function pageRefs(bytes: Uint8Array, hash: Hash32): Hash32[] {
  const refs: Hash32[] = []
  const bad = (why: string) => corrupt(`state page ${hashHex(hash)}`, why)
  let at = 0
  const skip = (rel: number): void => {
    if (at >= bytes.length) throw bad('truncated')
    const tag = bytes[at++]
    if (tag === EMPTY_TAG) return
    if (tag === LEAF_TAG) {
      if (at + 36 > bytes.length) throw bad('truncated leaf')
      const n =
        ((bytes[at + 32]! << 24) | (bytes[at + 33]! << 16) | (bytes[at + 34]! << 8) | bytes[at + 35]!) >>> 0
      at += 36 + n
      if (at > bytes.length) throw bad('truncated value')
      return
    }
    if (tag === REF_TAG && rel === PAGE_LEVELS) {
      if (at + 32 > bytes.length) throw bad('truncated reference')
      refs.push(hashFromBytes(bytes.subarray(at, at + 32)))
      at += 32
      return
    }
    if (tag === INNER_TAG && rel < PAGE_LEVELS) {
      skip(rel + 1)
      skip(rel + 1)
      return
    }
    throw bad(`bad node tag ${tag}`)
  }
  skip(0)
  if (at !== bytes.length) throw bad('trailing bytes')
  return refs
}
