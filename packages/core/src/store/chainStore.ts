import { utf8 } from '../bytes/index.ts'
import { type Block, ZERO_HASH, decodeBlock, encodeHeader } from '../codec/block.ts'
import { CHAIN_ID_RE, LIMITS } from '../codec/limits.ts'
import { assertValue, encode } from '../codec/msgpack.ts'
import { decodeCertificate } from '../codec/vote.ts'
import { StoreError, corrupt } from './errors.ts'
import {
  STORE_PREFIX,
  bytesKey,
  heightKey,
  metaKey,
  namespace,
  readU32,
  readU64,
  resultKey,
  u64,
  writeU32,
  writeU64,
} from './keys.ts'
import type { KvOp, KvStore } from './kv.ts'
import type { ServiceEvent, TxResult } from '../runtime/executor.ts'
import {
  MAX_EVENT_DATA_DEPTH,
  MAX_RESULT_BYTES,
  type StoredTx,
  decodeBlockEvents,
  decodeTxResult,
  encodeBlockEvents,
  encodeTxResult,
} from './results.ts'
import { sha256 } from '../crypto/hash.ts'
import { type Hash32, hashBytes, hashHex, sha256Str } from './stateHash.ts'
import { type CommittedState, StateTree, type StateWrites } from './stateTree.ts'

/** What `ChainStore.open` may check. */
export interface ChainStoreOptions {
  /** Refuse (`STORE_WRONG_CHAIN`) a store that belongs to another chain. */
  chainId?: string
}

/** The genesis state, written once as height 0. */
export interface GenesisInput {
  chainId: string
  /** Hash that block 1 names as its parent; 32 zero bytes when omitted. */
  genesisHash?: Uint8Array
  stateWrites: StateWrites
}

/** Everything that one committed block changes, persisted in one atomic, synced batch. */
export interface CommitInput {
  block: Block
  /** The encoded commit certificate (`encodeCertificate`) for `block`. */
  certificate: Uint8Array
  /** One result per transaction, in block order. */
  results: readonly TxResult[]
  /** The state writes of the whole block (failed txs' writes already dropped). */
  stateWrites: StateWrites
  /** Events of the end-of-block hooks (none when omitted). */
  blockEvents?: readonly ServiceEvent[]
}

const FORMAT = 1
const META = {
  format: metaKey('format'),
  chainId: metaKey('chainId'),
  genesisHash: metaKey('genesisHash'),
  height: metaKey('height'),
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
/** Whether 32 bytes hold the hash `h` (a compare in JS: cheaper than turning either side around). */
function holdsHash(b: Uint8Array, h: Hash32): boolean {
  for (let i = 0; i < 32; i++) if (b[i] !== h.charCodeAt(i)) return false
  return true
}
const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0
const isBytes = (x: unknown, len?: number): x is Uint8Array =>
  x instanceof Uint8Array && (len === undefined || x.length === len)

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
    const [format, chainIdRaw, genesisHash, heightRaw] = await kv.getMany([
      META.format,
      META.chainId,
      META.genesisHash,
      META.height,
    ])
    if (
      format === undefined &&
      chainIdRaw === undefined &&
      genesisHash === undefined &&
      heightRaw === undefined
    ) {
      for (const prefix of [STORE_PREFIX.block, STORE_PREFIX.stateRoot, STORE_PREFIX.stateValue]) {
        for await (const _ of kv.iterate({ ...namespace(prefix), limit: 1 })) {
          throw corrupt(
            'metadata',
            `missing, but the store holds data (namespace ${String.fromCharCode(prefix)})`,
          )
        }
      }
      const empty = new ChainStore(kv, await StateTree.open(kv, -1), undefined, undefined, -1, ZERO_HASH)
      empty.#expectChainId = options.chainId
      return empty
    }
    if (format === undefined) throw corrupt('metadata format', 'missing')
    if (format.length !== 1 || format[0] !== FORMAT)
      throw corrupt('metadata format', `unknown format ${hex(format)}`)
    if (chainIdRaw === undefined) throw corrupt('metadata chainId', 'missing')
    let chainId: string
    try {
      chainId = utf8.decode(chainIdRaw)
    } catch {
      throw corrupt('metadata chainId', 'not UTF-8')
    }
    if (!CHAIN_ID_RE.test(chainId))
      throw corrupt('metadata chainId', `invalid chain id ${JSON.stringify(chainId)}`)
    if (options.chainId !== undefined && options.chainId !== chainId) {
      throw new StoreError('STORE_WRONG_CHAIN', `store belongs to chain ${chainId}, not ${options.chainId}`, {
        stored: chainId,
        expected: options.chainId,
      })
    }
    if (genesisHash === undefined) throw corrupt('metadata genesisHash', 'missing')
    if (genesisHash.length !== 32)
      throw corrupt('metadata genesisHash', `${genesisHash.length} bytes instead of 32`)
    if (heightRaw === undefined) throw corrupt('metadata height', 'missing')
    if (heightRaw.length !== 8) throw corrupt('metadata height', `${heightRaw.length} bytes instead of 8`)
    const height = readU64(heightRaw, 0)

    let tipHash = genesisHash
    for await (const [k] of kv.iterate({ ...namespace(STORE_PREFIX.block), reverse: true, limit: 1 })) {
      const last = k.length === 9 ? readU64(k, 1) : -1
      if (last !== height)
        throw corrupt('block index', `last stored block is ${last}, metadata height is ${height}`)
    }
    if (height > 0) tipHash = await checkRecent(kv, chainId, height, genesisHash)

    const state = await StateTree.open(kv, height)
    return new ChainStore(kv, state, chainId, genesisHash, height, tipHash)
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

  /** State root after `height` (default: the latest). */
  async stateRoot(height: number = this.#height): Promise<Uint8Array | undefined> {
    this.#live()
    return this.state.rootAt(height)
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
        { type: 'put', key: META.format, value: Uint8Array.of(FORMAT) },
        { type: 'put', key: META.chainId, value: utf8.encode(chainId) },
        { type: 'put', key: META.genesisHash, value: Uint8Array.from(genesisHash) },
        { type: 'put', key: META.height, value: u64(0) },
        ...staged.ops,
      ]
      await this.#kv.write(ops, { sync: true })
      staged.commit()
      this.#chainId = chainId
      this.#genesisHash = Uint8Array.from(genesisHash)
      this.#tipHash = this.#genesisHash
      this.#height = 0
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
      for (const op of staged.ops) ops.push(op)
      ops.push({ type: 'put', key: META.height, value: u64(height) })
      await this.#kv.write(ops, { sync: true })
      staged.commit()
      this.#height = height
      this.#tipHash = Uint8Array.from(block.hash)
      return staged.root
    })
  }

  async getBlock(height: number): Promise<Block | undefined> {
    this.#live()
    if (!Number.isSafeInteger(height) || height < 1 || height > this.#height) return undefined
    const bytes = await this.#kv.get(heightKey(STORE_PREFIX.block, height))
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
    if (!Number.isSafeInteger(height) || height < 1 || height > this.#height) return undefined
    const c = await this.#kv.get(heightKey(STORE_PREFIX.certificate, height))
    if (c === undefined) throw corrupt(`certificate at height ${height}`, 'missing')
    return c
  }

  /** Results of every transaction of block `height`, in block order. */
  async getResults(height: number): Promise<TxResult[] | undefined> {
    this.#live()
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
    return out
  }

  /** Events of the end-of-block hooks of block `height` (empty when there were none). */
  async getBlockEvents(height: number): Promise<ServiceEvent[] | undefined> {
    this.#live()
    if (!Number.isSafeInteger(height) || height < 1 || height > this.#height) return undefined
    const bytes = await this.#kv.get(heightKey(STORE_PREFIX.blockEvents, height))
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
    const bytes = await this.#kv.get(resultKey(height, index))
    if (bytes === undefined)
      throw corrupt(`result of tx ${hex(hash)}`, `missing at height ${height} index ${index}`)
    const result = decodeResult(bytes, height, index)
    if (!same(result.hash, hash))
      throw corrupt(`result of tx ${hex(hash)}`, `belongs to another tx at height ${height} index ${index}`)
    return { height, index, result }
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

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    this.#live()
    const run = this.#queue.then(fn, fn)
    this.#queue = run.catch(() => {})
    return run
  }
}

function checkBlock(block: Block): void {
  if (
    block === null ||
    typeof block !== 'object' ||
    block.header === null ||
    typeof block.header !== 'object'
  ) {
    throw new StoreError('STORE_BAD_BLOCK', 'block: expected a Block')
  }
  if (
    !isBytes(block.headerBytes) ||
    !isBytes(block.hash, 32) ||
    !isBytes(block.bytes) ||
    !Array.isArray(block.txs)
  ) {
    throw new StoreError('STORE_BAD_BLOCK', 'block: headerBytes, hash, bytes and txs are required')
  }
  const h = block.header
  if (!isBytes(h.parentHash, 32) || !isBytes(h.prevStateRoot, 32) || !Number.isSafeInteger(h.height)) {
    throw new StoreError('STORE_BAD_BLOCK', 'block.header: malformed')
  }
  let headerBytes: Uint8Array
  try {
    headerBytes = encodeHeader(h)
  } catch (err) {
    throw new StoreError('STORE_BAD_BLOCK', `block.header: ${(err as Error).message}`)
  }
  if (!same(headerBytes, block.headerBytes))
    throw new StoreError('STORE_BAD_BLOCK', 'block.headerBytes do not encode block.header')
  if (!same(sha256(block.headerBytes), block.hash))
    throw new StoreError('STORE_BAD_BLOCK', 'block.hash is not the hash of its header')
  // What `decodeBlock` refuses on the way back in must be refused here, or the store would not reopen.
  if (block.txs.length > LIMITS.maxBlockTxs)
    throw new StoreError('STORE_BAD_BLOCK', `block has ${block.txs.length} txs, limit ${LIMITS.maxBlockTxs}`)
  for (let i = 0; i < block.txs.length; i++) {
    if (!isBytes(block.txs[i])) throw new StoreError('STORE_BAD_BLOCK', `block.txs[${i}]: expected bytes`)
    if (block.txs[i]!.length > LIMITS.maxTxBytes)
      throw new StoreError('STORE_BAD_BLOCK', `block.txs[${i}]: longer than ${LIMITS.maxTxBytes} bytes`)
  }
  if (block.bytes.length > LIMITS.maxBlockBytes)
    throw new StoreError(
      'STORE_BAD_BLOCK',
      `block is ${block.bytes.length} bytes, limit ${LIMITS.maxBlockBytes}`,
    )
  if (!same(encode([block.headerBytes, block.txs]), block.bytes)) {
    throw new StoreError('STORE_BAD_BLOCK', 'block.bytes do not encode its header and txs')
  }
}

function checkCertificate(certificate: Uint8Array, block: Block): void {
  if (!isBytes(certificate)) throw new StoreError('STORE_BAD_CERTIFICATE', 'certificate: expected bytes')
  let cert: ReturnType<typeof decodeCertificate>
  try {
    cert = decodeCertificate(certificate)
  } catch (err) {
    throw new StoreError('STORE_BAD_CERTIFICATE', `certificate: ${(err as Error).message}`)
  }
  // A height that a NEW-VIEW filled with a null request is stored as an empty block with a zero
  // proposer; its certificate certifies the null digest (32 zero bytes), not that block's hash.
  const nullFill =
    same(cert.blockHash, ZERO_HASH) && block.txs.length === 0 && same(block.header.proposer, ZERO_HASH)
  if (
    cert.height !== block.header.height ||
    (!same(cert.blockHash, block.hash) && !nullFill) ||
    cert.chainId !== block.header.chainId
  ) {
    throw new StoreError(
      'STORE_BAD_CERTIFICATE',
      `certificate is for block ${cert.height} ${hex(cert.blockHash)}, not ${block.header.height} ${hex(block.hash)}`,
    )
  }
}

/** Checks one result per tx, matching the tx hashes, and that each result reads back. */
function checkResults(
  results: readonly TxResult[],
  block: Block,
): { txHashes: Uint8Array[]; encoded: Uint8Array[] } {
  if (!Array.isArray(results) || results.length !== block.txs.length) {
    throw new StoreError(
      'STORE_BAD_RESULTS',
      `expected ${block.txs.length} results, got ${Array.isArray(results) ? results.length : 'none'}`,
    )
  }
  const hashes: Uint8Array[] = new Array(results.length)
  const encoded: Uint8Array[] = new Array(results.length)
  // Tx hashes as latin1 strings (one-shot SHA-256, no Buffer per hash), which also key the duplicate check.
  const seen = new Set<Hash32>()
  for (let i = 0; i < results.length; i++) {
    const r = results[i]!
    const txHash = sha256Str(block.txs[i]!)
    if (seen.has(txHash))
      throw new StoreError('STORE_BAD_BLOCK', `block.txs[${i}] repeats an earlier tx ${hashHex(txHash)}`)
    seen.add(txHash)
    if (r === null || typeof r !== 'object' || !isBytes(r.hash, 32) || !holdsHash(r.hash, txHash)) {
      throw new StoreError('STORE_BAD_RESULTS', `results[${i}].hash is not the hash of block.txs[${i}]`)
    }
    if (r.code !== null && (typeof r.code !== 'string' || r.code === '')) {
      throw new StoreError('STORE_BAD_RESULTS', `results[${i}].code: expected null or a non-empty string`)
    }
    if (r.message !== undefined && typeof r.message !== 'string') {
      throw new StoreError('STORE_BAD_RESULTS', `results[${i}].message: expected a string`)
    }
    if (!Array.isArray(r.events))
      throw new StoreError('STORE_BAD_RESULTS', `results[${i}].events: expected an array`)
    for (const [j, e] of r.events.entries()) {
      if (typeof e?.service !== 'string' || typeof e.name !== 'string')
        throw new StoreError(
          'STORE_BAD_RESULTS',
          `results[${i}].events[${j}]: expected service and name strings`,
        )
    }
    let bytes: Uint8Array
    try {
      // Encoded once (no decode-back on the hot path: a 5,000-tx block spent a quarter of its commit
      // there); the size cap that reads enforce is checked here instead.
      for (const e of r.events) assertValue(e?.data, MAX_EVENT_DATA_DEPTH, `events.${e?.name}`)
      bytes = encodeTxResult(r)
      if (bytes.length > MAX_RESULT_BYTES)
        throw new Error(`encoded result is ${bytes.length} bytes, limit ${MAX_RESULT_BYTES}`)
    } catch (err) {
      throw new StoreError('STORE_BAD_RESULTS', `results[${i}]: ${(err as Error).message}`)
    }
    hashes[i] = hashBytes(txHash)
    encoded[i] = bytes
  }
  return { txHashes: hashes, encoded }
}

function checkBlockEvents(events: readonly ServiceEvent[]): Uint8Array | undefined {
  if (!Array.isArray(events)) throw new StoreError('STORE_BAD_RESULTS', 'blockEvents: expected an array')
  if (events.length === 0) return undefined
  try {
    const bytes = encodeBlockEvents(events)
    decodeBlockEvents(bytes)
    return bytes
  } catch (err) {
    throw new StoreError('STORE_BAD_RESULTS', `blockEvents: ${(err as Error).message}`)
  }
}

/** How many of the latest blocks `open` checks in full (block, links, certificate, results, tx index). */
export const CHECKED_AT_OPEN = 16

/**
 * Checks the last `CHECKED_AT_OPEN` blocks against what is stored about them: each decodes and names
 * its predecessor's hash (the genesis hash below height 1), its hash index, its certificate (decodes,
 * and certifies it or its null fill), its first and last result (decode, with that tx's hash) and
 * tx index entries, and no result past the last. Returns the tip's hash.
 */
async function checkRecent(
  kv: KvStore,
  chainId: string,
  height: number,
  genesisHash: Uint8Array,
): Promise<Uint8Array> {
  const from = Math.max(1, height - CHECKED_AT_OPEN + 1)
  let child: Block | undefined
  let tipHash = genesisHash
  for (let h = height; h >= from - 1 && h >= 1; h--) {
    const block = await checkStoredBlock(kv, chainId, h, h >= from)
    if (h === height) tipHash = block.hash
    if (child && !same(child.header.parentHash, block.hash))
      throw corrupt(
        `block at height ${h + 1}`,
        `names parent ${hex(child.header.parentHash)}, block ${h} is ${hex(block.hash)}`,
      )
    child = block
  }
  if (child && child.header.height === 1 && !same(child.header.parentHash, genesisHash))
    throw corrupt('block at height 1', 'does not name the genesis hash as its parent')
  return tipHash
}

/** One stored block and (when `full`) what is stored with it; see `checkRecent`. */
async function checkStoredBlock(kv: KvStore, chainId: string, height: number, full: boolean): Promise<Block> {
  const [bytes, cert] = await kv.getMany([
    heightKey(STORE_PREFIX.block, height),
    heightKey(STORE_PREFIX.certificate, height),
  ])
  if (bytes === undefined)
    throw corrupt(`block at height ${height}`, 'missing (metadata height points past the stored blocks)')
  const block = decodeStored(bytes, `block at height ${height}`, height)
  if (!full) return block
  if (block.header.chainId !== chainId)
    throw corrupt(`block at height ${height}`, `belongs to chain ${block.header.chainId}`)
  if (cert === undefined || cert.length === 0) throw corrupt(`certificate at height ${height}`, 'missing')
  try {
    checkCertificate(cert, block)
  } catch (err) {
    throw corrupt(`certificate at height ${height}`, (err as Error).message)
  }
  // Constant work per block (a full read of 16 blocks of 5,000 txs took 14 s on the test machine):
  // the first and last result and tx index entry, and nothing after the last result. The bytes
  // themselves are covered by the table checksums (`openLevelKv`).
  const n = block.txs.length
  const ends = n === 0 ? [] : n === 1 ? [0] : [0, n - 1]
  const hashes = ends.map((i) => sha256(block.txs[i]!))
  const got = await kv.getMany([
    bytesKey(STORE_PREFIX.blockHash, block.hash),
    resultKey(height, n),
    ...ends.map((i) => resultKey(height, i)),
    ...hashes.map((h) => bytesKey(STORE_PREFIX.txIndex, h)),
  ])
  const at = got[0]
  if (at === undefined || at.length !== 8 || readU64(at, 0) !== height)
    throw corrupt(`hash index of block ${height}`, 'missing or wrong')
  if (got[1] !== undefined)
    throw corrupt(`results of block ${height}`, `extra result ${n} (the block has ${n} txs)`)
  for (const [j, i] of ends.entries()) {
    const bytes = got[2 + j]
    if (bytes === undefined) throw corrupt(`results of block ${height}`, `result ${i} missing`)
    if (!same(decodeResult(bytes, height, i).hash, hashes[j]!))
      throw corrupt(`result ${i} of block ${height}`, 'belongs to another tx')
    const v = got[2 + ends.length + j]
    // A later height: the tx was committed again by code older than STORE_TX_COMMITTED (not damage).
    if (v?.length === 12 && readU64(v, 0) > height) continue
    if (v === undefined || v.length !== 12 || readU64(v, 0) !== height || readU32(v, 8) !== i)
      throw corrupt(`tx index of block ${height}`, `tx ${i} is missing or points elsewhere`)
  }
  return block
}

function decodeStored(bytes: Uint8Array, what: string, height: number): Block {
  let block: Block
  try {
    block = decodeBlock(bytes)
  } catch (err) {
    throw corrupt(what, `does not decode (${(err as Error).message})`)
  }
  if (block.header.height !== height) throw corrupt(what, `holds block ${block.header.height}`)
  return block
}

function decodeResult(bytes: Uint8Array, height: number, index: number): TxResult {
  try {
    return decodeTxResult(bytes)
  } catch (err) {
    throw corrupt(`result ${index} of block ${height}`, `does not decode (${(err as Error).message})`)
  }
}
