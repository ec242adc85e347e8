import { invariant } from '../errors/index.ts'
import { StoreError, corrupt } from './errors.ts'
import { STORE_PREFIX, bytesKey, heightKey, namespace, readU64 } from './keys.ts'
import type { KvOp, KvStore } from './kv.ts'
import { type PageNode, PageWriter, decodePage } from './statePage.ts'
import { EMPTY, type Hash32, bitAt, hashBytes, hashFromBytes, hashHex, sha256Str } from './stateHash.ts'
import { Inner, Leaf, type TreeNode, hashOf, sealTree, updateTree } from './stateNodes.ts'
import type { StateProof } from './stateProof.ts'

/** State writes of one block: lowercase hex of the key -> new value, or null to delete. */
export type StateWrites = ReadonlyMap<string, Uint8Array | null>

/**
 * An update computed but not yet applied: write `ops` (in the same batch as anything else of the
 * block), then call `commit()` to make it the tree's latest version. Dropping it undoes nothing,
 * because nothing was changed.
 */
export interface StagedState {
  /** The version (block height) this update creates. */
  readonly version: number
  /** State root after the update. */
  readonly root: Uint8Array
  /** Pages, latest values and the root for `version`, for the caller's atomic batch. */
  readonly ops: KvOp[]
  commit(): void
}

/** A proof with what it proves: `value` of the key (undefined = absent) under `root` at `height`. */
export interface StateProofResult {
  height: number
  root: Uint8Array
  value: Uint8Array | undefined
  proof: StateProof
}

const HEX_KEY_RE = /^(?:[0-9a-f]{2})*$/

/**
 * A state tree built and checked outside a store: state sync builds it from pages each checked against
 * its hash, so against the certified root (`StateSyncBuilder.finish`). `StateTree.open` (through
 * `ChainStore.open`'s `syncedState`) adopts it when its version and root are the store's latest,
 * instead of reading every value back and hashing the tree again.
 */
export interface SyncedState {
  readonly version: number
  readonly root: TreeNode | null
  /** Latest entries by key (lowercase hex): the tree's leaves. */
  readonly values: Map<string, Leaf>
}

const hexOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

function sortByPath(paths: Hash32[], leaves: (Leaf | null)[]): { paths: Hash32[]; leaves: (Leaf | null)[] } {
  const order = bucketOrder(paths)
  return { paths: order.map((i) => paths[i]!), leaves: order.map((i) => leaves[i]!) }
}

/** Indexes of `paths` in path order (distinct paths), bucketed as in `sortLeaves`. */
function bucketOrder(paths: readonly Hash32[]): number[] {
  const n = paths.length
  if (n < 4096) return Array.from(paths, (_, i) => i).sort((a, b) => (paths[a]! < paths[b]! ? -1 : 1))
  const bucket = (p: Hash32) => (p.charCodeAt(0) << 8) | p.charCodeAt(1)
  const starts = new Uint32Array(65537)
  for (let i = 0; i < n; i++) starts[bucket(paths[i]!) + 1]!++
  for (let b = 1; b <= 65536; b++) starts[b]! += starts[b - 1]!
  const next = starts.slice(0, 65536)
  const out: number[] = new Array(n)
  for (let i = 0; i < n; i++) out[next[bucket(paths[i]!)]!++] = i
  for (let b = 0; b < 65536; b++) {
    const lo = starts[b]!
    const hi = starts[b + 1]!
    if (hi - lo < 2) continue
    const part = out.slice(lo, hi).sort((x, y) => (paths[x]! < paths[y]! ? -1 : 1))
    for (let i = 0; i < part.length; i++) out[lo + i] = part[i]!
  }
  return out
}

/**
 * `leaves` sorted by path: bucketed by the first 16 bits of the path (uniform, as paths are SHA-256),
 * each bucket then sorted on its own. For the million leaves of an opening store this is ~5 times
 * faster than sorting an index array with a comparator (`sortByPath`).
 */
function sortLeaves(leaves: Leaf[]): Leaf[] {
  const n = leaves.length
  const starts = new Uint32Array(65537)
  for (let i = 0; i < n; i++) {
    const p = leaves[i]!.path
    starts[((p.charCodeAt(0) << 8) | p.charCodeAt(1)) + 1]!++
  }
  for (let b = 1; b <= 65536; b++) starts[b]! += starts[b - 1]!
  const next = starts.slice(0, 65536)
  const out: Leaf[] = new Array(n)
  for (let i = 0; i < n; i++) {
    const p = leaves[i]!.path
    out[next[(p.charCodeAt(0) << 8) | p.charCodeAt(1)]!++] = leaves[i]!
  }
  for (let b = 0; b < 65536; b++) {
    const lo = starts[b]!
    const hi = starts[b + 1]!
    if (hi - lo < 2) continue
    if (hi - lo > 32) {
      // A crowded bucket (keys chosen to share a prefix): sorted in O(k log k), not by insertion.
      const part = out.slice(lo, hi).sort((x, y) => (x.path < y.path ? -1 : 1))
      for (let i = 0; i < part.length; i++) out[lo + i] = part[i]!
      continue
    }
    for (let i = lo + 1; i < hi; i++) {
      const x = out[i]!
      let j = i - 1
      while (j >= lo && out[j]!.path > x.path) {
        out[j + 1] = out[j]!
        j--
      }
      out[j + 1] = x
    }
  }
  return out
}

/** `sorted` without keys no longer in `live` (when given), with `added` merged in order. */
function mergeKeys(sorted: string[], added: string[], live: Map<string, unknown> | undefined): string[] {
  const kept = live ? sorted.filter((k) => live.has(k)) : sorted
  if (added.length === 0) return kept
  added.sort()
  const out: string[] = new Array(kept.length + added.length)
  let i = 0
  let j = 0
  let o = 0
  while (i < kept.length || j < added.length) {
    if (j >= added.length || (i < kept.length && kept[i]! < added[j]!)) out[o++] = kept[i++]!
    else out[o++] = added[j++]!
  }
  return out
}

/** Keeps `value` when it owns its whole buffer; copies a view so a big parent buffer is not retained. */
function own(value: Uint8Array): Uint8Array {
  return value.byteOffset === 0 &&
    value.byteLength === value.buffer.byteLength &&
    value.constructor === Uint8Array
    ? value
    : new Uint8Array(value)
}

/**
 * Read access to a committed state: what the service runtime (synchronous `get`), RPC (proofs) and
 * sync (roots) may use. `ChainStore.state` is typed as this, so only a commit changes the chain's state.
 */
export interface CommittedState {
  /** Latest committed version (block height); -1 before genesis. */
  readonly version: number
  /** Number of keys with a value. */
  readonly size: number
  /** Root of the latest version. */
  root(): Uint8Array
  /** Latest value of `key` (a copy), synchronously. */
  get(key: Uint8Array): Uint8Array | undefined
  entries(): IterableIterator<[Uint8Array, Uint8Array]>
  /**
   * Latest entries whose key starts with `prefix` and is greater than `after`, in ascending byte order,
   * at most `limit` (copies). The runtime's `state.list` reads through this.
   */
  range(prefix: Uint8Array, after: Uint8Array | undefined, limit: number): [Uint8Array, Uint8Array][]
  /** Root stored for `height`. */
  rootAt(height: number): Promise<Uint8Array | undefined>
  proveLatest(key: Uint8Array): StateProofResult
  /** Proof under the root of `height` (default latest); `STORE_UNKNOWN_HEIGHT` when none is stored. */
  prove(key: Uint8Array, height?: number): Promise<StateProofResult>
}

/**
 * The authenticated service state: a map from byte keys to byte values whose 32-byte root commits to
 * all of it (binary Merkle tree over SHA-256(key), see stateNodes.ts and stateHash.ts for the exact
 * definition). Latest values and the current tree live in memory, so reads are synchronous; every
 * version's pages stay in the KvStore, so any stored root can still prove entries.
 *
 * Versions are block heights: the first update creates version 0 (genesis), each later one the next.
 *
 * @example
 * const state = await StateTree.open(kv)
 * const root = await state.apply(new Map([[toHex(key), value]]))
 * state.get(key) // value
 * const { proof } = await state.prove(key)
 * verifyStateProof(root, key, value, proof) // true
 */
export class StateTree implements CommittedState {
  readonly #kv: KvStore
  #root: TreeNode | null
  /**
   * Latest entries by key (hex), as leaves: the value, and the key's path, so a write to an existing
   * key needs no SHA-256 of the key. (Mostly the very leaves of the tree, so this costs no memory.)
   */
  #values: Map<string, Leaf>
  #version: number
  /** Keys (hex) in order, for `range`: built on first use, then kept in step by `commit`. */
  #sorted: string[] | undefined

  private constructor(kv: KvStore, root: TreeNode | null, values: Map<string, Leaf>, version: number) {
    this.#kv = kv
    this.#root = root
    this.#values = values
    this.#version = version
  }

  /**
   * Loads the latest values from `kv`, rebuilds the tree and checks it against the stored root of the
   * latest version; any disagreement is `STORE_CORRUPT`, as is a latest version other than
   * `expectVersion` when that is given (the chain's height). A `synced` tree of the latest version whose
   * root is the stored root is taken as it is (see `SyncedState`); any other is ignored.
   */
  static async open(kv: KvStore, expectVersion?: number, synced?: SyncedState): Promise<StateTree> {
    let version = -1
    let storedRoot: Hash32 = EMPTY
    for await (const [k, v] of kv.iterate({
      ...namespace(STORE_PREFIX.stateRoot),
      reverse: true,
      limit: 1,
    })) {
      if (k.length !== 9) throw corrupt('state root index', `key of ${k.length} bytes`)
      version = readU64(k, 1)
      if (v.length !== 32) throw corrupt(`state root at height ${version}`, `${v.length} bytes instead of 32`)
      storedRoot = hashFromBytes(v)
    }
    if (expectVersion !== undefined && version !== expectVersion) {
      throw corrupt('state', `latest state root is for height ${version}, chain height is ${expectVersion}`)
    }
    if (synced && version >= 0 && synced.version === version && hashOf(synced.root) === storedRoot)
      return new StateTree(kv, synced.root, synced.values, version)
    const values = new Map<string, Leaf>()
    const leaves: Leaf[] = []
    for await (const [k, v] of kv.iterate(namespace(STORE_PREFIX.stateValue))) {
      const key = k.subarray(1)
      const leaf = new Leaf(sha256Str(key), own(v))
      values.set(hexOf(key), leaf)
      leaves.push(leaf)
    }
    if (version < 0) {
      if (values.size > 0) throw corrupt('state', `${values.size} values stored but no state root`)
      return new StateTree(kv, null, values, -1)
    }
    const sortedLeaves = sortLeaves(leaves)
    const sorted = { paths: sortedLeaves.map((l) => l.path), leaves: sortedLeaves }
    const root = updateTree(null, 0, sorted, 0, sortedLeaves.length)
    const rebuilt = sealTree(root, 0, null)
    if (rebuilt !== storedRoot) {
      throw corrupt(
        `state at height ${version}`,
        `stored values hash to ${hashHex(rebuilt)}, recorded root is ${hashHex(storedRoot)}`,
      )
    }
    return new StateTree(kv, root, values, version)
  }

  /** Latest committed version (block height); -1 before the first update. */
  get version(): number {
    return this.#version
  }

  /** Number of keys with a value. */
  get size(): number {
    return this.#values.size
  }

  /** Root of the latest version (32 zero bytes for an empty state). */
  root(): Uint8Array {
    return hashBytes(hashOf(this.#root))
  }

  /** Latest value of `key` (a copy), synchronously. */
  get(key: Uint8Array): Uint8Array | undefined {
    if (!(key instanceof Uint8Array)) throw new StoreError('STORE_BAD_INPUT', 'key: expected bytes')
    return this.#values.get(hexOf(key))?.value.slice()
  }

  /** Every latest entry as [key, value] (copies), in no particular order. */
  *entries(): IterableIterator<[Uint8Array, Uint8Array]> {
    for (const [k, v] of this.#values) yield [Uint8Array.from(Buffer.from(k, 'hex')), v.value.slice()]
  }

  /** Latest entries under `prefix` after `after`, in byte order (lowercase hex sorts like the bytes). */
  range(prefix: Uint8Array, after: Uint8Array | undefined, limit: number): [Uint8Array, Uint8Array][] {
    if (!this.#sorted) this.#sorted = [...this.#values.keys()].sort()
    const keys = this.#sorted
    const p = hexOf(prefix)
    const a = after === undefined ? undefined : hexOf(after)
    const exclusive = a !== undefined && a >= p
    const from = exclusive ? a! : p
    // First key > from when starting after a key, >= the prefix otherwise.
    let lo = 0
    let hi = keys.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (keys[mid]! < from || (exclusive && keys[mid] === from)) lo = mid + 1
      else hi = mid
    }
    const out: [Uint8Array, Uint8Array][] = []
    for (let i = lo; i < keys.length && out.length < limit; i++) {
      const k = keys[i]!
      if (!k.startsWith(p)) break
      out.push([Uint8Array.from(Buffer.from(k, 'hex')), this.#values.get(k)!.value.slice()])
    }
    return out
  }

  /** Root stored for `height`, if that version exists. */
  async rootAt(height: number): Promise<Uint8Array | undefined> {
    if (!Number.isSafeInteger(height) || height < 0 || height > this.#version) return undefined
    if (height === this.#version) return this.root()
    const v = await this.#kv.get(heightKey(STORE_PREFIX.stateRoot, height))
    if (v !== undefined && v.length !== 32)
      throw corrupt(`state root at height ${height}`, `${v.length} bytes instead of 32`)
    return v
  }

  /**
   * Computes version `version + 1` from `writes` without changing anything. Throws `STORE_BAD_INPUT`
   * (before any work) for a key that is not lowercase hex or a value that is not bytes or null.
   * The tree keeps the value arrays it is given (copying only views into larger buffers): callers
   * must not modify them afterwards.
   */
  stage(writes: StateWrites): StagedState {
    if (!(writes instanceof Map)) throw new StoreError('STORE_BAD_INPUT', 'stateWrites: expected a Map')
    const n = writes.size
    const hexes: string[] = new Array(n)
    const vals: (Uint8Array | null)[] = new Array(n)
    const known: (Leaf | undefined)[] = new Array(n)
    let keyBytes = 0
    let i = 0
    for (const [hex, value] of writes) {
      if (typeof hex !== 'string' || !HEX_KEY_RE.test(hex)) {
        throw new StoreError(
          'STORE_BAD_INPUT',
          `stateWrites: key ${JSON.stringify(String(hex).slice(0, 80))} is not lowercase hex`,
        )
      }
      if (value !== null && !(value instanceof Uint8Array)) {
        throw new StoreError('STORE_BAD_INPUT', `stateWrites[${hex.slice(0, 80)}]: expected bytes or null`)
      }
      hexes[i] = hex
      vals[i] = value === null ? null : own(value)
      known[i] = this.#values.get(hex)
      keyBytes += 1 + hex.length / 2
      i++
    }
    // Keys of the value namespace in one allocation: new keys' paths are hashed straight from it.
    const keySlab = Buffer.allocUnsafeSlow(keyBytes)
    const valueKeys: Uint8Array[] = new Array(n)
    const paths: Hash32[] = new Array(n)
    const leaves: (Leaf | null)[] = new Array(n)
    let at = 0
    for (let j = 0; j < n; j++) {
      const len = hexes[j]!.length / 2
      keySlab[at] = STORE_PREFIX.stateValue
      keySlab.write(hexes[j]!, at + 1, len, 'hex')
      valueKeys[j] = new Uint8Array(keySlab.buffer, keySlab.byteOffset + at, 1 + len)
      const path = known[j]?.path ?? sha256Str(keySlab.subarray(at + 1, at + 1 + len))
      paths[j] = path
      leaves[j] = vals[j] === null ? null : new Leaf(path, vals[j]!)
      at += 1 + len
    }
    const sorted = sortByPath(paths, leaves)
    const base = this.#root
    const baseVersion = this.#version
    const next = updateTree(base, 0, sorted, 0, n)
    // Each page is encoded as soon as its top node is hashed (post-order), while its nodes are still in
    // cache, into one buffer for the whole update (~350 bytes of pages per write); the ops are views into it.
    const out = new PageWriter(n * 512 + 1024)
    const spans: number[] = []
    const writePage = (node: TreeNode): void => {
      spans.push(out.at)
      out.byte(STORE_PREFIX.stateNode)
      out.hash(hashOf(node))
      out.page(node)
    }
    const rootHash = sealTree(next, 0, writePage)
    // A lone leaf as the whole tree has no page of its own yet (leaves live inside their parent's page).
    if (next instanceof Leaf) writePage(next)
    const version = baseVersion + 1

    const rootAt = out.at
    out.bytes(heightKey(STORE_PREFIX.stateRoot, version))
    out.hash(rootHash)
    const slab = out.finish()
    const ops: KvOp[] = []
    for (let j = 0; j < spans.length; j++) {
      const from = spans[j]!
      const to = j + 1 < spans.length ? spans[j + 1]! : rootAt
      ops.push({ type: 'put', key: slab.subarray(from, from + 33), value: slab.subarray(from + 33, to) })
    }
    for (let j = 0; j < n; j++) {
      const value = vals[j]!
      ops.push(
        value === null ? { type: 'del', key: valueKeys[j]! } : { type: 'put', key: valueKeys[j]!, value },
      )
    }
    ops.push({
      type: 'put',
      key: slab.subarray(rootAt, rootAt + 9),
      value: slab.subarray(rootAt + 9, rootAt + 41),
    })
    return {
      version,
      root: hashBytes(rootHash),
      ops,
      commit: () => {
        invariant(
          this.#root === base && this.#version === baseVersion,
          'a staged state update commits onto the version it was computed from',
        )
        this.#root = next
        this.#version = version
        const added: string[] = []
        let removed = false
        for (let j = 0; j < n; j++) {
          const leaf = leaves[j]!
          if (leaf === null) removed = this.#values.delete(hexes[j]!) || removed
          else {
            if (this.#sorted && known[j] === undefined) added.push(hexes[j]!)
            this.#values.set(hexes[j]!, leaf)
          }
        }
        if (this.#sorted) this.#sorted = mergeKeys(this.#sorted, added, removed ? this.#values : undefined)
      },
    }
  }

  /** Stage, write durably, commit: the standalone way to update the state. Returns the new root. */
  async apply(writes: StateWrites): Promise<Uint8Array> {
    const staged = this.stage(writes)
    await this.#kv.write(staged.ops, { sync: true })
    staged.commit()
    return staged.root
  }

  /** Proof for `key` under the latest root, synchronously. */
  proveLatest(key: Uint8Array): StateProofResult {
    if (!(key instanceof Uint8Array)) throw new StoreError('STORE_BAD_INPUT', 'key: expected bytes')
    const path = sha256Str(key)
    const siblings: Uint8Array[] = []
    let node = this.#root
    let depth = 0
    while (node instanceof Inner) {
      const right = bitAt(path, depth) === 1
      siblings.push(hashBytes(hashOf(right ? node.left : node.right)))
      node = right ? node.right : node.left
      depth++
    }
    const result = { height: this.#version, root: this.root(), value: undefined as Uint8Array | undefined }
    if (node === null) return { ...result, proof: { siblings, leaf: null } }
    if (node.path === path) return { ...result, value: node.value.slice(), proof: { siblings, leaf: null } }
    return {
      ...result,
      proof: { siblings, leaf: { path: hashBytes(node.path), valueHash: hashBytes(sha256Str(node.value)) } },
    }
  }

  /**
   * Proof for `key` under the root of `height` (default: latest). Older versions are read from the
   * KvStore; `STORE_UNKNOWN_HEIGHT` when no root is stored for `height`.
   */
  async prove(key: Uint8Array, height?: number): Promise<StateProofResult> {
    if (height === undefined || height === this.#version) return this.proveLatest(key)
    if (!(key instanceof Uint8Array)) throw new StoreError('STORE_BAD_INPUT', 'key: expected bytes')
    const rootBytes = await this.rootAt(height)
    if (rootBytes === undefined)
      throw new StoreError('STORE_UNKNOWN_HEIGHT', `no state root stored for height ${height}`, { height })
    const root = hashFromBytes(rootBytes)
    const path = sha256Str(key)
    const siblings: Uint8Array[] = []
    let node: PageNode = root === EMPTY ? { kind: 'empty', hash: EMPTY } : { kind: 'ref', hash: root }
    let depth = 0
    for (;;) {
      if (node.kind === 'ref') {
        const bytes = await this.#kv.get(bytesKey(STORE_PREFIX.stateNode, hashBytes(node.hash)))
        if (bytes === undefined) throw corrupt(`state page ${hashHex(node.hash)}`, 'missing', { height })
        node = decodePage(bytes, node.hash)
        continue
      }
      if (node.kind !== 'inner') break
      const right = bitAt(path, depth) === 1
      siblings.push(hashBytes((right ? node.left : node.right).hash))
      node = right ? node.right : node.left
      depth++
    }
    const result = { height, root: rootBytes, value: undefined as Uint8Array | undefined }
    if (node.kind === 'empty') return { ...result, proof: { siblings, leaf: null } }
    if (node.path === path) return { ...result, value: node.value, proof: { siblings, leaf: null } }
    return {
      ...result,
      proof: { siblings, leaf: { path: hashBytes(node.path), valueHash: hashBytes(node.valueHash) } },
    }
  }
}
