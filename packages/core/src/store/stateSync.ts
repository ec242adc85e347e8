import { utf8 } from '../bytes/index.ts'
import { CityError } from '../errors/index.ts'
import { checkCertificate } from './commitChecks.ts'
import { corrupt } from './errors.ts'
import { META_KEYS, STORE_FORMAT, STORE_PREFIX, bytesKey, heightKey, metaKey, readU64, u64 } from './keys.ts'
import type { KvOp, KvStore } from './kv.ts'
import { PRUNED_BELOW_KEY } from './prune.ts'
import { type PageNode, decodePage } from './statePage.ts'
import { EMPTY, type Hash32, hashBytes, hashFromBytes, hashHex, sha256Str } from './stateHash.ts'
import { Inner, Leaf, type TreeNode, setChild } from './stateNodes.ts'
import type { SyncedState } from './stateTree.ts'
import { decodeStored, isBytes } from './storedValues.ts'

// State sync: a store built from the state tree of a certified height instead of from every block.
// The tree is fetched by content address: a page is accepted only when it hashes to the hash asked
// for, and the first hash asked for is the certified root, so every page is checked against the root
// by the Merkle structure. Leaves carry SHA-256(key), not the key: keys come in a second phase, each
// accepted only when its hash is the path of a leaf still without a key.

/**
 * `M syncedFrom` -> u64: the height a state-synced (or snapshot-restored) store starts at. Its block and
 * certificate are stored, its results, events and tx index are not (nothing certifies them), so open
 * checks that block without them and reads of them are `PRUNED`, like the heights below.
 */
export const SYNCED_FROM_KEY = metaKey('syncedFrom')

export type StateSyncErrorCode =
  | 'STATE_SYNC_BAD_TARGET'
  | 'STATE_SYNC_BAD_PAGE'
  | 'STATE_SYNC_NOT_EMPTY'
  | 'STATE_SYNC_INCOMPLETE'

const fail = (
  code: StateSyncErrorCode,
  message: string,
  details: Record<string, unknown> = {},
  penalize = false,
) => new CityError<StateSyncErrorCode>(code, message, details, penalize)

/** What a state-synced store starts from; the caller has checked the certificates (see node stateSync). */
export interface SyncTarget {
  chainId: string
  genesisHash: Uint8Array
  /** The height whose state this is. */
  height: number
  /** State root after `height` (certified by block `height + 1`'s header). */
  stateRoot: Uint8Array
  /** Block `height` (`[headerBytes, [tx...]]`) and its encoded commit certificate. */
  block: Uint8Array
  certificate: Uint8Array
}

/** Writes per batch while pages and keys arrive (a batch is also written at `PAGE_BATCH_BYTES`). */
const PAGE_BATCH_OPS = 5000
const PAGE_BATCH_BYTES = 8 * 1024 * 1024

/**
 * Keys kept while their leaf has not come yet (`addKeys` during the pages phase): at most this many
 * key bytes; later ones are dropped (and asked for again once the pages are in).
 */
export const STATE_SYNC_EARLY_KEY_BYTES = 256 * 1024 * 1024

/** A place in the tree under construction where a page not fetched yet goes: a side of an inner node. */
interface Hole {
  parent: Inner
  right: boolean
}

/** Progress of a build, for logs. */
export interface StateSyncProgress {
  pages: number
  pageBytes: number
  leaves: number
  keys: number
  keyBytes: number
}

/**
 * The chain metadata, block and certificate of a store that starts at `t.height` (shared by state sync
 * and snapshot import). Checks that the block is for that height and chain and that the certificate
 * certifies it (`STATE_SYNC_BAD_TARGET`).
 */
export function syncedChainOps(t: SyncTarget): KvOp[] {
  let block: ReturnType<typeof decodeStored>
  try {
    block = decodeStored(t.block, `block ${t.height}`, t.height)
    checkCertificate(t.certificate, block)
  } catch (err) {
    throw fail('STATE_SYNC_BAD_TARGET', `block ${t.height}: ${(err as Error).message}`)
  }
  if (block.header.chainId !== t.chainId)
    throw fail('STATE_SYNC_BAD_TARGET', `block ${t.height} is of chain ${block.header.chainId}`)
  if (!isBytes(t.genesisHash, 32) || !isBytes(t.stateRoot, 32))
    throw fail('STATE_SYNC_BAD_TARGET', 'genesisHash and stateRoot: expected 32 bytes')
  const h = t.height
  return [
    { type: 'put', key: heightKey(STORE_PREFIX.block, h), value: t.block },
    { type: 'put', key: bytesKey(STORE_PREFIX.blockHash, block.hash), value: u64(h) },
    { type: 'put', key: heightKey(STORE_PREFIX.certificate, h), value: t.certificate },
    { type: 'put', key: heightKey(STORE_PREFIX.stateRoot, h), value: Uint8Array.from(t.stateRoot) },
    { type: 'put', key: PRUNED_BELOW_KEY, value: u64(h) },
    { type: 'put', key: SYNCED_FROM_KEY, value: u64(h) },
    { type: 'put', key: META_KEYS.searchFrom, value: u64(h + 1) },
    { type: 'put', key: META_KEYS.format, value: Uint8Array.of(STORE_FORMAT) },
    { type: 'put', key: META_KEYS.chainId, value: utf8.encode(t.chainId) },
    { type: 'put', key: META_KEYS.genesisHash, value: Uint8Array.from(t.genesisHash) },
    // Last: a store is a chain once its height is written (the caller builds in a folder it renames).
    { type: 'put', key: META_KEYS.height, value: u64(h) },
  ]
}

/** Throws `STATE_SYNC_NOT_EMPTY` unless `kv` holds nothing at all. */
export async function checkEmpty(kv: KvStore): Promise<void> {
  for await (const _ of kv.iterate({ gte: Uint8Array.of(0), limit: 1 }))
    throw fail('STATE_SYNC_NOT_EMPTY', 'state sync builds into an empty store')
}

/**
 * Builds a store from the state tree under `target.stateRoot`, fetched by the caller in batches:
 * `nextHashes` says what to ask for, `addPages` takes the answers (all checked before anything is
 * written; a page that does not hash to the hash asked for is `STATE_SYNC_BAD_PAGE`, marked penalize),
 * and `addKeys` the keys (during the pages too: a key whose leaf has not come yet waits for it, within
 * `STATE_SYNC_EARLY_KEY_BYTES`), and `finish` writes the block, certificate and metadata. Memory: the
 * frontier of hashes still to fetch, the tree as it comes (handed to the store's open), and the keys
 * waiting for their leaf. Verified pages, and values under their keys, go to `kv` in batches as they come.
 *
 * @example
 * const b = await StateSyncBuilder.create(kv, target)
 * while (b.needsPages) { const hs = b.nextHashes(256); b.addPages(hs, await peer.pages(hs)) }
 * while (b.needsKeys) b.addKeys(await peer.keys(...))
 * await b.finish()
 */
export class StateSyncBuilder {
  readonly #kv: KvStore
  readonly #target: SyncTarget
  readonly #chainOps: KvOp[]
  /** Hashes of pages still to fetch (a stack: depth first keeps it about 16 x depth long). */
  readonly #frontier: Hash32[] = []
  /** Hashes handed out by `nextHashes` and neither answered (`addPages`) nor given back yet. */
  #out = 0
  /** Leaves by path: the leaf until its key comes, then null (its value is written under the key). */
  readonly #values = new Map<Hash32, Leaf | null>()
  #matched = 0
  /**
   * The tree, as the pages come: every node with the hash its page was checked against, so the finished
   * tree needs no hashing (`finish` hands it to `ChainStore.open`). `#top` is the root's page; `#holes`
   * says where each page still on the frontier (or handed out) goes.
   */
  #top: TreeNode | null = null
  readonly #holes = new Map<Hash32, Hole>()
  #twice = false
  readonly #rootHash: Hash32
  /** Matched leaves by key (lowercase hex), as the state tree keeps them. */
  readonly #byKey = new Map<string, Leaf>()
  /** Keys whose SHA-256 is no leaf's path yet, by path (a leaf may still come), and their bytes. */
  readonly #early = new Map<Hash32, Uint8Array>()
  #earlyBytes = 0
  #pending: KvOp[] = []
  #pendingBytes = 0
  #writing: Promise<void> = Promise.resolve()
  readonly progress: StateSyncProgress = { pages: 0, pageBytes: 0, leaves: 0, keys: 0, keyBytes: 0 }

  private constructor(kv: KvStore, target: SyncTarget, chainOps: KvOp[]) {
    this.#kv = kv
    this.#target = target
    this.#chainOps = chainOps
    const root = hashFromBytes(target.stateRoot)
    this.#rootHash = root
    if (root !== EMPTY) this.#frontier.push(root)
  }

  /** Checks the target's block and certificate and that `kv` is empty. */
  static async create(kv: KvStore, target: SyncTarget): Promise<StateSyncBuilder> {
    const ops = syncedChainOps(target)
    await checkEmpty(kv)
    return new StateSyncBuilder(kv, target, ops)
  }

  get needsPages(): boolean {
    return this.#frontier.length > 0
  }

  get needsKeys(): boolean {
    return !this.needsPages && this.#matched < this.#values.size
  }

  /** Hashes of pages still to fetch (not counting those handed out by `nextHashes`). */
  get frontierSize(): number {
    return this.#frontier.length
  }

  /** Leaves still without a key. */
  get missingKeys(): number {
    return this.#values.size - this.#matched
  }

  /** Takes up to `max` hashes off the frontier; give them back with `returnHashes` if the fetch fails. */
  nextHashes(max: number): Uint8Array[] {
    const out: Uint8Array[] = []
    while (out.length < max && this.#frontier.length > 0) out.push(hashBytes(this.#frontier.pop()!))
    this.#out += out.length
    return out
  }

  returnHashes(hashes: readonly Uint8Array[]): void {
    this.#out = Math.max(0, this.#out - hashes.length)
    for (const h of hashes) this.#frontier.push(hashFromBytes(h))
  }

  /**
   * Accepts the pages answering `hashes` (same order). Every page is checked first; on the first that is
   * missing or does not hash to its hash, nothing of the answer is kept, the hashes go back on the
   * frontier and `STATE_SYNC_BAD_PAGE` (penalize, `details.index`) is thrown.
   */
  addPages(hashes: readonly Uint8Array[], pages: readonly (Uint8Array | undefined)[]): void {
    const decoded: PageNode[] = []
    try {
      if (pages.length !== hashes.length)
        throw fail('STATE_SYNC_BAD_PAGE', `${pages.length} pages for ${hashes.length} hashes`, {}, true)
      for (let i = 0; i < hashes.length; i++) {
        const page = pages[i]
        const h = hashFromBytes(hashes[i]!)
        if (!(page instanceof Uint8Array) || page.length === 0)
          throw fail('STATE_SYNC_BAD_PAGE', `page ${hashHex(h)} missing from the answer`, { index: i }, true)
        try {
          decoded.push(decodePage(page, h))
        } catch (err) {
          throw fail('STATE_SYNC_BAD_PAGE', `page ${i}: ${(err as Error).message}`, { index: i }, true)
        }
      }
    } catch (err) {
      this.returnHashes(hashes)
      throw err
    }
    this.#out = Math.max(0, this.#out - hashes.length)
    for (let i = 0; i < decoded.length; i++) {
      const h = decoded[i]!.hash
      const hole = this.#holes.get(h)
      const isRoot = this.#top === null && h === this.#rootHash
      // A page that has its place already (asked for twice): kept once.
      if (hole === undefined && !isRoot) continue
      const node = this.#build(decoded[i]!)
      if (hole === undefined) this.#top = node
      else {
        this.#holes.delete(h)
        setChild(hole.parent, hole.right, node)
      }
      const value = pages[i]!
      this.#pending.push({ type: 'put', key: bytesKey(STORE_PREFIX.stateNode, hashes[i]!), value })
      this.#pendingBytes += value.length + 33
      this.progress.pages++
      this.progress.pageBytes += value.length
    }
    if (this.#pending.length >= PAGE_BATCH_OPS || this.#pendingBytes >= PAGE_BATCH_BYTES) this.#flush()
  }

  /**
   * The tree nodes of a checked page (hashes as checked); each reference goes on the frontier, with
   * its place in the tree, and each new leaf waits for its key (or takes a key that came early).
   */
  #build(node: PageNode): TreeNode | null {
    if (node.kind === 'empty') return null
    if (node.kind === 'leaf') {
      const leaf = new Leaf(node.path, node.value)
      leaf.hash = node.hash
      if (!this.#values.has(node.path)) {
        this.#values.set(node.path, leaf)
        this.progress.leaves++
        const key = this.#early.get(node.path)
        if (key !== undefined) {
          this.#early.delete(node.path)
          this.#earlyBytes -= key.length
          this.#match(leaf, key)
        }
      }
      return leaf
    }
    if (node.kind === 'ref') throw new Error('invariant broken: a page reference outside an inner node')
    const inner = new Inner(this.#child(node.left), this.#child(node.right))
    inner.hash = node.hash
    if (node.left.kind === 'ref') this.#hole(node.left.hash, inner, false)
    if (node.right.kind === 'ref') this.#hole(node.right.hash, inner, true)
    return inner
  }

  #child(node: PageNode): TreeNode | null {
    return node.kind === 'ref' ? null : this.#build(node)
  }

  #hole(hash: Hash32, parent: Inner, right: boolean): void {
    // Two places for one page cannot happen in a tree of distinct paths; if it does, the tree built
    // here is not handed on (`finish`), and the open rebuilds the state from the values and checks it.
    if (this.#holes.has(hash)) this.#twice = true
    this.#holes.set(hash, { parent, right })
    this.#frontier.push(hash)
  }

  /** Queues the leaf's value for writing under `key` (whose SHA-256 is its path); the leaf has its key now. */
  #match(leaf: Leaf, key: Uint8Array): void {
    this.#values.set(leaf.path, null)
    this.#matched++
    const hex = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex')
    this.#byKey.set(hex, leaf)
    // bytesKey copies: the key may be a view into a whole answer, which must not stay in memory.
    this.#pending.push({ type: 'put', key: bytesKey(STORE_PREFIX.stateValue, key), value: leaf.value })
    this.#pendingBytes += key.length + leaf.value.length + 1
    this.progress.keys++
    this.progress.keyBytes += key.length
  }

  #flush(): void {
    const ops = this.#pending
    this.#pending = []
    this.#pendingBytes = 0
    // One write at a time, in order; an error surfaces at the next flush or at `finish`.
    this.#writing = this.#writing.then(() => this.#kv.write(ops))
  }

  /** Waits for the pages written so far (bounds what is queued in memory; callers may await it per batch). */
  settled(): Promise<void> {
    return this.#writing
  }

  /**
   * Takes candidate keys: a key counts when its SHA-256 is the path of a leaf without a key yet. Returns
   * how many counted. While pages are still missing (to fetch, or handed out by `nextHashes` and not answered), a key of no leaf yet is kept (within
   * `STATE_SYNC_EARLY_KEY_BYTES`) and counts when its leaf comes; after the pages, keys of no leaf (of
   * other heights, or made up) are ignored. Each value is queued for writing under its key at once (in
   * batches, like pages), so `finish` has only the chain metadata left to write.
   */
  addKeys(keys: readonly Uint8Array[]): number {
    let n = 0
    for (const key of keys) {
      if (!(key instanceof Uint8Array)) continue
      const path = sha256Str(key)
      const leaf = this.#values.get(path)
      if (leaf === undefined) {
        if (
          (this.needsPages || this.#out > 0) &&
          !this.#early.has(path) &&
          this.#earlyBytes + key.length <= STATE_SYNC_EARLY_KEY_BYTES
        ) {
          this.#early.set(path, new Uint8Array(key))
          this.#earlyBytes += key.length
        }
        continue
      }
      if (leaf === null) continue
      this.#match(leaf, key)
      n++
    }
    if (this.#pending.length >= PAGE_BATCH_OPS || this.#pendingBytes >= PAGE_BATCH_BYTES) this.#flush()
    return n
  }

  /**
   * Writes what is still queued, then the block and certificate of the target height and the chain
   * metadata (last, synced). `STATE_SYNC_INCOMPLETE` while pages or keys are missing. The result opens
   * with `ChainStore.open`; given the returned state (`syncedState`), the open takes the tree built here
   * instead of rebuilding it from the values just written (undefined: the open rebuilds it).
   */
  async finish(): Promise<SyncedState | undefined> {
    if (this.needsPages || this.missingKeys > 0)
      throw fail(
        'STATE_SYNC_INCOMPLETE',
        `${this.#frontier.length} pages and ${this.missingKeys} keys still missing`,
      )
    this.#early.clear()
    this.#flush()
    await this.#writing
    await this.#kv.write(this.#chainOps, { sync: true })
    if (this.#twice || this.#holes.size > 0) return undefined
    return { version: this.#target.height, root: this.#top, values: this.#byKey }
  }

  get target(): SyncTarget {
    return this.#target
  }
}

/** Whether `kv` holds a chain started from a synced height, and which (undefined: from genesis). */
export async function readSyncedFrom(kv: KvStore): Promise<number | undefined> {
  const v = await kv.get(SYNCED_FROM_KEY)
  if (v === undefined) return undefined
  if (v.length !== 8) throw corrupt('metadata syncedFrom', `${v.length} bytes instead of 8`)
  return readU64(v, 0)
}
