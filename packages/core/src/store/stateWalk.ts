import { corrupt } from './errors.ts'
import { STORE_PREFIX, bytesKey, namespace } from './keys.ts'
import type { KvStore } from './kv.ts'
import { type PageNode, decodePage } from './statePage.ts'
import { EMPTY, type Hash32, hashBytes, hashHex, sha256Str } from './stateHash.ts'

// Reads of stored tree versions, for rollback and snapshots: the pages (`N`) of every stored root stay
// in the store, so any version can be walked. Leaves carry SHA-256(key), not the key: the keys come
// from the latest values (`V`) and from the rollback records of deleted keys (`U`, see rollback.ts).

/** A leaf of a stored version: its path (SHA-256 of the key) and value. */
export interface StoredLeaf {
  path: Hash32
  value: Uint8Array
}

/** The page node for `hash` (empty for the empty root), loaded and checked against its hash. */
export async function loadNode(kv: KvStore, hash: Hash32): Promise<PageNode> {
  if (hash === EMPTY) return { kind: 'empty', hash: EMPTY }
  const bytes = await kv.get(bytesKey(STORE_PREFIX.stateNode, hashBytes(hash)))
  if (bytes === undefined) throw corrupt(`state page ${hashHex(hash)}`, 'missing')
  return decodePage(bytes, hash)
}

async function resolve(kv: KvStore, node: PageNode): Promise<PageNode> {
  return node.kind === 'ref' ? loadNode(kv, node.hash) : node
}

/** Every leaf under `node`, in path order (left before right). */
export async function* leavesOf(kv: KvStore, node: PageNode): AsyncGenerator<StoredLeaf> {
  const n = await resolve(kv, node)
  if (n.kind === 'leaf') yield { path: n.path, value: n.value }
  else if (n.kind === 'inner') {
    yield* leavesOf(kv, n.left)
    yield* leavesOf(kv, n.right)
  }
}

/**
 * The leaves that differ between two versions: `before` holds the leaves of `a` under subtrees whose
 * hash differs from `b`'s at the same place, `after` those of `b`. Equal subtrees are skipped, so the
 * cost is about the number of changed keys times the depth. A leaf that only moved (same path and value
 * in both) is in both maps; callers compare values.
 */
export async function diffVersions(
  kv: KvStore,
  a: Hash32,
  b: Hash32,
): Promise<{ before: Map<Hash32, Uint8Array>; after: Map<Hash32, Uint8Array> }> {
  const before = new Map<Hash32, Uint8Array>()
  const after = new Map<Hash32, Uint8Array>()
  const walk = async (x: PageNode, y: PageNode): Promise<void> => {
    if (x.hash === y.hash) return
    const rx = await resolve(kv, x)
    const ry = await resolve(kv, y)
    if (rx.kind === 'inner' && ry.kind === 'inner') {
      await walk(rx.left, ry.left)
      await walk(rx.right, ry.right)
      return
    }
    for await (const l of leavesOf(kv, rx)) before.set(l.path, l.value)
    for await (const l of leavesOf(kv, ry)) after.set(l.path, l.value)
  }
  await walk(await loadNode(kv, a), await loadNode(kv, b))
  return { before, after }
}

/** Path -> key (bytes without the prefix) of every latest value (`V`). */
export async function latestKeysByPath(kv: KvStore): Promise<Map<Hash32, Uint8Array>> {
  const out = new Map<Hash32, Uint8Array>()
  for await (const [k] of kv.iterate(namespace(STORE_PREFIX.stateValue))) {
    const key = k.slice(1)
    out.set(sha256Str(key), key)
  }
  return out
}
