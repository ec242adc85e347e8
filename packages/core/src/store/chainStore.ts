import { utf8 } from '../bytes/index.ts'
import { type Block, ZERO_HASH } from '../codec/block.ts'
import { CHAIN_ID_RE } from '../codec/limits.ts'
import type { ServiceEvent, TxResult } from '../runtime/executor.ts'
import { checkBlock, checkBlockEvents, checkCertificate, checkResults } from './commitChecks.ts'
import { StoreError, corrupt } from './errors.ts'
import {
  META_KEYS,
  STORE_FORMAT,
  STORE_PREFIX,
  bytesKey,
  heightKey,
  readU32,
  readU64,
  resultKey,
  u64,
  writeU32,
  writeU64,
} from './keys.ts'
import type { KvOp, KvStore } from './kv.ts'
import { checkRecent, readChainMeta } from './openChecks.ts'
import { type StoredTx, decodeBlockEvents } from './results.ts'
import { type PruneResult, checkRetained, pruneBlocks, readPrunedBelow } from './prune.ts'
import { pushUndoOps } from './rollback.ts'
import { type Hash32, hashFromBytes } from './stateHash.ts'
import { type SweepResult, sweepStatePages } from './statePrune.ts'
import { readSyncedFrom } from './stateSync.ts'
import { type CommittedState, StateTree } from './stateTree.ts'
import { decodeResult, decodeStored, hex, isBytes, same } from './storedValues.ts'
import {
  type TxSearchPage,
  type TxSearchQuery,
  checkSearchQuery,
  pushSearchOps,
  runSearch,
} from './txSearch.ts'

export { CHECKED_AT_OPEN } from './openChecks.ts'

import type { ChainStoreOptions, CommitInput, GenesisInput } from './chainStoreTypes.ts'
export type { ChainStoreOptions, CommitInput, GenesisInput } from './chainStoreTypes.ts'

/**
 * Blocks, certificates, transaction index, results and the authenticated state of one chain, over a
 * KvStore. Each block commits in one atomic batch written with `sync: true`, so after a crash the
 * store is at the last block whose `commitBlock` resolved (or a later one), never in between.
 *
 * Heights: 0 is genesis (state only), blocks start at 1. The state root after height h is
 * `stateRoot(h)`, and block h + 1 must carry it as `prevStateRoot`.
 *
 * @example
 * const store = await ChainStore.open(await openLevelKv(dir), { chainId: 'seoul-1' })
 * if (store.height() < 0) await store.initGenesis({ chainId: 'seoul-1', stateWrites: new Map() })
 * const root = await store.commitBlock({ block, certificate, results, stateWrites })
 */
export class ChainStore {
  readonly #kv: KvStore
  /** The authenticated state: synchronous reads of the latest values, roots and proofs. Commits change it. */
  readonly state: CommittedState
  readonly #state: StateTree
  #chainId: string | undefined
  /** The chain id the opener asked for (an empty store must be initialised with it). */
  #expectChainId: string | undefined
  #genesisHash: Uint8Array | undefined
  #height: number
  #tipHash: Uint8Array
  #queue: Promise<unknown> = Promise.resolve()
  #closed = false
  /**
   * Hashes `hasTxs` last found absent from the tx index, and the height then: while the height is the
   * same (no commit since), `commitBlock` need not look them up again (validation, then commit).
   */
  #absent: { height: number; keys: Set<string> } | undefined
  /** First height the tx search index covers; undefined until a store older than the index commits. */
  #searchFrom: number | undefined
  /** First height whose block history is kept (0: never pruned; see prune.ts). */
  #prunedBelow = 0
  /** The state sweep in progress, and the pages commits write meanwhile (see `pruneState`). */
  #sweep: Promise<SweepResult> | undefined
  #watch: Set<Hash32> | undefined
  /** The height a state-synced store starts at: its block is kept, its results and events are not. */
  #syncedFrom: number | undefined

  private constructor(
    kv: KvStore,
    state: StateTree,
    chainId: string | undefined,
    genesisHash: Uint8Array | undefined,
    height: number,
    tipHash: Uint8Array,
  ) {
    this.#kv = kv
    this.state = state
    this.#state = state
    this.#chainId = chainId
    this.#genesisHash = genesisHash
    this.#height = height
    this.#tipHash = tipHash
  }

  /**
   * Opens the chain stored in `kv` and checks that its metadata, its last `CHECKED_AT_OPEN` blocks
   * (with their links, certificates, results and tx index) and its state (every value, against the
   * recorded root) agree; anything inconsistent or truncated is `STORE_CORRUPT` naming what is wrong.
   * (Damaged LevelDB table files are found by `openLevelKv` before this.)
   */
  static async open(kv: KvStore, options: ChainStoreOptions = {}): Promise<ChainStore> {
    const meta = await readChainMeta(kv, options.chainId)
    if (meta === undefined) {
      const empty = new ChainStore(kv, await StateTree.open(kv, -1), undefined, undefined, -1, ZERO_HASH)
      empty.#expectChainId = options.chainId
      return empty
    }
    const { chainId, genesisHash, height } = meta
    const tipHash = height > 0 ? await checkRecent(kv, chainId, height, genesisHash) : genesisHash
    const state = await StateTree.open(kv, height, options.syncedState)
    const store = new ChainStore(kv, state, chainId, genesisHash, height, tipHash)
    store.#searchFrom = meta.searchFrom
    store.#prunedBelow = await readPrunedBelow(kv)
    store.#syncedFrom = await readSyncedFrom(kv)
    return store
  }

  /** Last committed height: 0 = genesis only, -1 = not initialised yet. */
  height(): number {
    return this.#height
  }

  get chainId(): string | undefined {
    return this.#chainId
  }

  /** Hash of the block at `height()` (the genesis hash at height 0). */
  tipHash(): Uint8Array {
    return Uint8Array.from(this.#tipHash)
  }

  get genesisHash(): Uint8Array | undefined {
    return this.#genesisHash && Uint8Array.from(this.#genesisHash)
  }

  /**
   * First height whose block, certificate, results, events, tx index and state root are kept: reads
   * below it are `PRUNED` (0 in a store that never pruned; see `prune`).
   */
  get prunedBelow(): number {
    return this.#prunedBelow
  }

  /** State root after `height` (default: the latest). */
  async stateRoot(height: number = this.#height): Promise<Uint8Array | undefined> {
    this.#live()
    this.#retained(height, 'state root')
    const root = await this.state.rootAt(height)
    this.#retained(height, 'state root')
    return root
  }

  /**
   * Deletes the block history below `keepFrom` (see `pruneBlocks` in prune.ts: bounded atomic batches,
   * then compaction; state pages and latest values stay). Each batch runs under the commit lock, so
   * commits go on between batches; `close()` ends a prune at the next batch. `keepFrom` may be at most
   * `height() - 1` (`PRUNE_BAD_HEIGHT`); at or below `prunedBelow` it does nothing.
   */
  async prune(keepFrom: number): Promise<PruneResult> {
    this.#live()
    return pruneBlocks(
      {
        kv: this.#kv,
        height: () => this.#height,
        serial: (fn) => this.#serial(fn),
        setMark: (mark) => {
          this.#prunedBelow = mark
        },
      },
      keepFrom,
    )
  }

  /**
   * Deletes the tree pages no stored state root reaches (state history below `prunedBelow`, whose roots
   * `prune` deleted), then compacts them away: see `sweepStatePages` in statePrune.ts. Runs beside
   * commits; one at a time (a second call while one runs gets the same result). Proofs and reads at every
   * kept height work as before.
   */
  pruneState(): Promise<SweepResult> {
    this.#live()
    this.#sweep ??= sweepStatePages({
      kv: this.#kv,
      serial: (fn) => this.#serial(fn),
      watch: () => (this.#watch = new Set()),
      unwatch: () => {
        this.#watch = undefined
      },
    }).finally(() => {
      this.#sweep = undefined
    })
    return this.#sweep
  }

  /** Writes height 0: chain id, genesis hash and the genesis state. Once per store. Returns the state root. */
  initGenesis(input: GenesisInput): Promise<Uint8Array> {
    return this.#serial(async () => {
      if (this.#height >= 0)
        throw new StoreError(
          'STORE_GENESIS_EXISTS',
          `store already holds chain ${this.#chainId} at height ${this.#height}`,
        )
      if (input === null || typeof input !== 'object')
        throw new StoreError('STORE_BAD_INPUT', 'genesis: expected an object')
      const { chainId, genesisHash = ZERO_HASH, stateWrites } = input
      if (typeof chainId !== 'string' || !CHAIN_ID_RE.test(chainId))
        throw new StoreError('STORE_BAD_INPUT', `genesis.chainId: invalid ${JSON.stringify(chainId)}`)
      if (!isBytes(genesisHash, 32))
        throw new StoreError('STORE_BAD_INPUT', 'genesis.genesisHash: expected 32 bytes')
      if (this.#expectChainId !== undefined && chainId !== this.#expectChainId) {
        throw new StoreError(
          'STORE_WRONG_CHAIN',
          `store was opened for chain ${this.#expectChainId}, not ${chainId}`,
        )
      }
      const staged = this.#state.stage(stateWrites)
      if (staged.version !== 0) throw corrupt('state', `holds version ${staged.version - 1} before genesis`)
      const ops: KvOp[] = [
        { type: 'put', key: META_KEYS.format, value: Uint8Array.of(STORE_FORMAT) },
        { type: 'put', key: META_KEYS.chainId, value: utf8.encode(chainId) },
        { type: 'put', key: META_KEYS.genesisHash, value: Uint8Array.from(genesisHash) },
        { type: 'put', key: META_KEYS.height, value: u64(0) },
        { type: 'put', key: META_KEYS.searchFrom, value: u64(1) },
        ...staged.ops,
      ]
      await this.#kv.write(ops, { sync: true })
      staged.commit()
      this.#chainId = chainId
      this.#genesisHash = Uint8Array.from(genesisHash)
      this.#tipHash = this.#genesisHash
      this.#height = 0
      this.#searchFrom = 1
      return staged.root
    })
  }

  /**
   * Persists block `height() + 1` with its certificate, results and state writes in one atomic synced
   * batch, after checking that it extends the chain (`STORE_BAD_HEIGHT`, `STORE_BAD_PARENT`,
   * `STORE_BAD_STATE_ROOT`) and that its parts agree (`STORE_BAD_BLOCK`, `STORE_BAD_CERTIFICATE`,
   * `STORE_BAD_RESULTS`, `STORE_BAD_INPUT`), that no tx of it was committed before (`STORE_TX_COMMITTED`:
   * the tx index is never overwritten), and that everything written decodes again when read (so no
   * committed value can make the store refuse to reopen). Nothing is written when a check fails. Calls are
   * serialised. Returns the new state root.
   */
  commitBlock(input: CommitInput): Promise<Uint8Array> {
    return this.#serial(async () => {
      if (this.#height < 0 || this.#chainId === undefined)
        throw new StoreError('STORE_NOT_INITIALIZED', 'commitBlock before initGenesis')
      if (input === null || typeof input !== 'object')
        throw new StoreError('STORE_BAD_INPUT', 'commit: expected an object')
      const { block, certificate, results, stateWrites, blockEvents = [] } = input
      const height = this.#height + 1
      checkBlock(block)
      const header = block.header
      if (header.chainId !== this.#chainId) {
        throw new StoreError(
          'STORE_WRONG_CHAIN',
          `block is for chain ${header.chainId}, store holds ${this.#chainId}`,
        )
      }
      if (header.height !== height) {
        throw new StoreError('STORE_BAD_HEIGHT', `expected block ${height}, got block ${header.height}`, {
          expected: height,
          got: header.height,
        })
      }
      if (!same(header.parentHash, this.#tipHash)) {
        throw new StoreError(
          'STORE_BAD_PARENT',
          `block ${height} names parent ${hex(header.parentHash)}, block ${height - 1} is ${hex(this.#tipHash)}`,
        )
      }
      const prevRoot = this.state.root()
      if (!same(header.prevStateRoot, prevRoot)) {
        throw new StoreError(
          'STORE_BAD_STATE_ROOT',
          `block ${height} carries state root ${hex(header.prevStateRoot)}, state after ${height - 1} is ${hex(prevRoot)}`,
        )
      }
      checkCertificate(certificate, block)
      const { txHashes, encoded } = checkResults(results, block)
      const eventBytes = checkBlockEvents(blockEvents)
      // The tx index is written once per tx, ever: a tx committed before may not be committed again.
      const absent = this.#absent?.height === this.#height ? this.#absent.keys : undefined
      const indexKeys = txHashes.map((h) => bytesKey(STORE_PREFIX.txIndex, h))
      const unsure = absent ? txHashes.filter((h) => !absent.has(hex(h))) : txHashes
      const indexed = await this.#lookUp(
        unsure,
        absent ? unsure.map((h) => bytesKey(STORE_PREFIX.txIndex, h)) : indexKeys,
      )
      const found = indexed.indexOf(true)
      const again = found < 0 ? -1 : txHashes.indexOf(unsure[found]!)
      if (again >= 0) {
        throw new StoreError(
          'STORE_TX_COMMITTED',
          `block.txs[${again}] (${hex(txHashes[again]!)}) was committed in an earlier block`,
          { index: again, hash: hex(txHashes[again]!) },
        )
      }
      const staged = this.#state.stage(stateWrites)

      const ops: KvOp[] = [
        { type: 'put', key: heightKey(STORE_PREFIX.block, height), value: block.bytes },
        { type: 'put', key: bytesKey(STORE_PREFIX.blockHash, block.hash), value: u64(height) },
        { type: 'put', key: heightKey(STORE_PREFIX.certificate, height), value: certificate },
      ]
      for (let i = 0; i < results.length; i++) {
        const at = new Uint8Array(12)
        writeU64(at, 0, height)
        writeU32(at, 8, i)
        ops.push({ type: 'put', key: indexKeys[i]!, value: at })
        ops.push({ type: 'put', key: resultKey(height, i), value: encoded[i]! })
      }
      if (eventBytes !== undefined)
        ops.push({ type: 'put', key: heightKey(STORE_PREFIX.blockEvents, height), value: eventBytes })
      // The search index of the block rides in the same batch: it exists exactly when the block does.
      pushSearchOps(ops, height, block.txs, txHashes, results)
      // A store written before the index starts it at this block (see `searchTxs`).
      const startsIndex = this.#searchFrom === undefined
      if (startsIndex) ops.push({ type: 'put', key: META_KEYS.searchFrom, value: u64(height) })
      // The keys this block deletes, so that `rollbackChain` can put them back (tree pages hold no keys).
      pushUndoOps(ops, height, stateWrites, this.state)
      for (const op of staged.ops) ops.push(op)
      // A state sweep in progress must not delete a page this block (re)writes.
      if (this.#watch)
        for (const op of staged.ops)
          if (op.key[0] === STORE_PREFIX.stateNode) this.#watch.add(hashFromBytes(op.key.subarray(1)))
      ops.push({ type: 'put', key: META_KEYS.height, value: u64(height) })
      await this.#kv.write(ops, { sync: true })
      staged.commit()
      if (startsIndex) this.#searchFrom = height
      this.#height = height
      this.#tipHash = Uint8Array.from(block.hash)
      return staged.root
    })
  }

  async getBlock(height: number): Promise<Block | undefined> {
    this.#live()
    this.#retained(height, 'block')
    if (!Number.isSafeInteger(height) || height < 1 || height > this.#height) return undefined
    const bytes = await this.#kv.get(heightKey(STORE_PREFIX.block, height))
    if (bytes === undefined) this.#retained(height, 'block')
    if (bytes === undefined) throw corrupt(`block at height ${height}`, 'missing')
    return decodeStored(bytes, `block at height ${height}`, height)
  }

  async getBlockByHash(hash: Uint8Array): Promise<Block | undefined> {
    this.#live()
    if (!isBytes(hash, 32)) return undefined
    const at = await this.#kv.get(bytesKey(STORE_PREFIX.blockHash, hash))
    if (at === undefined) return undefined
    if (at.length !== 8) throw corrupt(`height of block ${hex(hash)}`, `${at.length} bytes instead of 8`)
    const block = await this.getBlock(readU64(at, 0))
    if (block === undefined || !same(block.hash, hash))
      throw corrupt(`block ${hex(hash)}`, 'hash index points to another block')
    return block
  }

  async getCertificate(height: number): Promise<Uint8Array | undefined> {
    this.#live()
    this.#retained(height, 'certificate')
    if (!Number.isSafeInteger(height) || height < 1 || height > this.#height) return undefined
    const c = await this.#kv.get(heightKey(STORE_PREFIX.certificate, height))
    if (c === undefined) this.#retained(height, 'certificate')
    if (c === undefined) throw corrupt(`certificate at height ${height}`, 'missing')
    return c
  }

  /** Results of every transaction of block `height`, in block order. */
  async getResults(height: number): Promise<TxResult[] | undefined> {
    this.#live()
    this.#retained(height, 'results')
    this.#notSynced(height, 'results')
    if (!Number.isSafeInteger(height) || height < 1 || height > this.#height) return undefined
    const out: TxResult[] = []
    for await (const [k, v] of this.#kv.iterate({
      gte: resultKey(height, 0),
      lt: heightKey(STORE_PREFIX.result, height + 1),
    })) {
      const index = readU32(k, 9)
      if (index !== out.length) throw corrupt(`results of block ${height}`, `result ${out.length} missing`)
      out.push(decodeResult(v, height, index))
    }
    this.#retained(height, 'results')
    return out
  }

  /** Events of the end-of-block hooks of block `height` (empty when there were none). */
  async getBlockEvents(height: number): Promise<ServiceEvent[] | undefined> {
    this.#live()
    this.#retained(height, 'end-of-block events')
    this.#notSynced(height, 'end-of-block events')
    if (!Number.isSafeInteger(height) || height < 1 || height > this.#height) return undefined
    const bytes = await this.#kv.get(heightKey(STORE_PREFIX.blockEvents, height))
    this.#retained(height, 'end-of-block events')
    if (bytes === undefined) return []
    try {
      return decodeBlockEvents(bytes)
    } catch (err) {
      throw corrupt(`end-of-block events of block ${height}`, `do not decode (${(err as Error).message})`)
    }
  }

  /** For each 32-byte hash, whether a committed tx has it (one batched read of the tx index). */
  async hasTxs(hashes: readonly Uint8Array[]): Promise<boolean[]> {
    this.#live()
    if (hashes.length === 0) return []
    const keys = hashes.map((h, i) => {
      if (!isBytes(h, 32)) throw new StoreError('STORE_BAD_INPUT', `hashes[${i}]: expected 32 bytes`)
      return bytesKey(STORE_PREFIX.txIndex, h)
    })
    return this.#lookUp(hashes, keys)
  }

  /** `hasTxs` for checked hashes and their tx index keys (`commitBlock` builds those once for both uses). */
  async #lookUp(hashes: readonly Uint8Array[], keys: Uint8Array[]): Promise<boolean[]> {
    if (hashes.length === 0) return []
    // Read before the lookup: a commit that lands meanwhile moves the height, so nothing is cached.
    const height = this.#height
    const found = (await this.#kv.getMany(keys)).map((v) => v !== undefined)
    const keysAbsent = new Set<string>()
    for (let i = 0; i < hashes.length; i++) if (!found[i]) keysAbsent.add(hex(hashes[i]!))
    this.#absent = { height, keys: keysAbsent }
    return found
  }

  /** Where the transaction with envelope hash `hash` was committed, and its result. */
  async getTx(hash: Uint8Array): Promise<StoredTx | undefined> {
    this.#live()
    if (!isBytes(hash, 32)) return undefined
    const at = await this.#kv.get(bytesKey(STORE_PREFIX.txIndex, hash))
    if (at === undefined) return undefined
    if (at.length !== 12) throw corrupt(`tx index of ${hex(hash)}`, `${at.length} bytes instead of 12`)
    const height = readU64(at, 0)
    const index = readU32(at, 8)
    this.#retained(height, `tx ${hex(hash)}`)
    const bytes = await this.#kv.get(resultKey(height, index))
    if (bytes === undefined) this.#retained(height, `tx ${hex(hash)}`)
    if (bytes === undefined)
      throw corrupt(`result of tx ${hex(hash)}`, `missing at height ${height} index ${index}`)
    const result = decodeResult(bytes, height, index)
    if (!same(result.hash, hash))
      throw corrupt(`result of tx ${hex(hash)}`, `belongs to another tx at height ${height} index ${index}`)
    return { height, index, result }
  }

  /**
   * Committed txs by signer, service, service + method and event type, combined (all given filters
   * must match), in height order (`asc`, the default, or `desc`), at most `limit` (1..100, default 20)
   * per page. One call reads at most `SEARCH_LIMITS.maxKeysRead` index keys: when it stops before the
   * end of the range, `next` is the cursor to continue with (a page may then hold fewer than `limit`
   * txs, or none). Bad input is `STORE_BAD_INPUT` naming the field (`details.field`).
   *
   * The index covers heights from `indexedFrom` on: 1 for a store created with it, and for a store
   * written before it the first block it commits after the upgrade (heights below are not searched,
   * whatever `fromHeight` says; until that commit `indexedFrom` is `height() + 1`).
   *
   * @example
   * let page = await store.searchTxs({ service: 'token', method: 'transfer', order: 'desc', limit: 50 })
   * while (page.next) page = await store.searchTxs({ service: 'token', method: 'transfer', order: 'desc', limit: 50, cursor: page.next })
   */
  async searchTxs(query: TxSearchQuery): Promise<TxSearchPage> {
    this.#live()
    const checked = checkSearchQuery(query)
    // Read once: a commit landing during the scan adds heights above `hi`, which this page ignores.
    const height = this.#height
    const indexedFrom = Math.max(this.#searchFrom ?? Math.max(1, height + 1), this.#prunedBelow)
    const lo = Math.max(checked.fromHeight, indexedFrom, 1)
    const hi = Math.min(checked.toHeight ?? height, height)
    const page = await runSearch(this.#kv, checked, lo, hi)
    return page.next === undefined ? { txs: page.txs, indexedFrom } : { ...page, indexedFrom }
  }

  /** Waits for a commit in progress, then closes the KvStore (which this store owns). */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#queue.catch(() => {})
    await this.#kv.close()
  }

  #live(): void {
    if (this.#closed) throw new StoreError('STORE_CLOSED', 'chain store is closed')
  }

  /** `PRUNED` below `prunedBelow`; checked again after a read, as a prune may have moved it meanwhile. */
  #retained(height: number, what: string): void {
    checkRetained(height, this.#prunedBelow, what)
  }

  /** The first block of a state-synced store came without its results and events: `PRUNED` too. */
  #notSynced(height: number, what: string): void {
    if (height === this.#syncedFrom) checkRetained(height, height + 1, what)
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    this.#live()
    const run = this.#queue.then(fn, fn)
    this.#queue = run.catch(() => {})
    return run
  }
}
