import {
  CityError,
  type ChainStore,
  type KvStore,
  type Mempool,
  type Runtime,
  type Tx,
  type TxResult,
  type ServiceEvent,
  decodeTx,
  encodeStateProof,
  fromHex,
  isHex,
  toHex,
} from '@cityledger/core'
import { quorumSize } from '@cityledger/consensus'
import { valueToRpcJson } from '../config/json.ts'
import type { Ledger } from '../chain/ledger.ts'
import { type Genesis, genesisHash } from '../config/genesis.ts'
import type { Metrics } from '../metrics/index.ts'
import type {
  BlockRange,
  BlockView,
  GenesisView,
  NodeStatus,
  PeerView,
  RpcBackend,
  RpcEvent,
  TxBodyView,
  TxStatus,
} from '../rpc/index.ts'
import type { TxSearchAnswer, TxSearchParams } from '../rpc/searchRoutes.ts'
import { NODE_VERSION } from '../version.ts'
import { readHistory } from './validatorHistoryStore.ts'
import { blockView, eventView } from './views.ts'

export interface BackendOptions {
  genesis: Genesis
  /** The peers connected now (`GET /v1/peers`); none when omitted. */
  peerList?: () => PeerView[]
  nodeId: string
  store: ChainStore
  ledger: Ledger
  runtime: Runtime
  mempool: Mempool
  metrics?: Metrics
  view: () => number
  peers: () => number
  /**
   * Connected peers that are validators (health counts these towards a quorum). Defaults to
   * `peers`, which also counts observers.
   */
  validatorPeers?: () => number
  /**
   * The store namespace of the validator history (`STORE_PREFIX.validatorHistory`, validatorHistoryStore.ts)
   * that `GET /v1/validators/history` reads; without it the history is empty.
   */
  history?: KvStore
  /** The validators of the next height (hex; the schedule as executed). Default: the genesis set. */
  validatorSet?: () => readonly string[]
  catchingUp: () => boolean
  started: () => boolean
  /** Admission: mempool add + gossip. */
  submit: (bytes: Uint8Array) => Promise<{ hash: Uint8Array }>
}

/**
 * The node side of RPC v1: answers from the store, the mempool and the runtime, and fans committed
 * blocks and events out to subscribers and to callers waiting for their tx.
 */
export class NodeRpcBackend implements RpcBackend {
  private readonly o: BackendOptions
  private readonly listeners = new Set<(e: RpcEvent) => void>()
  private readonly waiters = new Map<string, Set<(s: TxStatus) => void>>()
  /** Emissions in commit order: each waits for the one before (they read the certificate first). */
  private emitting: Promise<void> = Promise.resolve()

  /** Hashed on the first status call, then kept (the genesis never changes). */
  private genesisHashHex: string | undefined

  constructor(o: BackendOptions) {
    this.o = o
  }

  /**
   * Called by the node after each committed block, once the block and its certificate are stored.
   * Streams get the certificate read back from the store when `certBytes` is not given (the driver
   * does not hand it over), so a `block` message carries what `GET /v1/blocks/:height` does.
   */
  committed(
    c: {
      block: import('@cityledger/core').Block
      txs: Tx[]
      results: TxResult[]
      blockEvents: ServiceEvent[]
    },
    certBytes?: Uint8Array,
  ): void {
    const height = c.block.header.height
    c.results.forEach((r, index) => {
      const hex = toHex(r.hash)
      const set = this.waiters.get(hex)
      if (set) {
        this.waiters.delete(hex)
        const status = this.statusOf(hex, height, index, r, c.txs[index])
        for (const w of set) w(status)
      }
    })
    if (this.listeners.size === 0) return
    this.emitting = this.emitting.then(async () => {
      if (this.listeners.size === 0) return
      let cert = certBytes
      try {
        cert ??= await this.o.store.getCertificate(height)
      } catch {
        // Only a closing store fails here; its streams are being closed too.
        return
      }
      for (const e of streamMessages(c.block, cert, c.results, c.blockEvents)) this.emit(e)
    })
  }

  async eventsAt(height: number): Promise<RpcEvent[] | undefined> {
    const s = this.o.store
    if (!Number.isSafeInteger(height) || height < 1 || height > s.height()) return undefined
    const [block, cert, results, blockEvents] = await Promise.all([
      s.getBlock(height),
      s.getCertificate(height),
      s.getResults(height),
      s.getBlockEvents(height),
    ])
    if (!block || !results) return undefined
    return streamMessages(block, cert, results, blockEvents ?? [])
  }

  private emit(e: RpcEvent): void {
    for (const l of this.listeners) {
      try {
        l(e)
      } catch {}
    }
  }

  private statusOf(hash: string, height: number, index: number, r: TxResult, tx?: Tx): TxStatus {
    const body = tx ? { tx: txBodyView(tx) } : {}
    return r.code === null
      ? { hash, status: 'committed', height, index, events: r.events.map(eventView), ...body }
      : {
          hash,
          status: 'failed',
          height,
          index,
          code: r.code,
          ...(r.message ? { message: r.message } : {}),
          ...body,
        }
  }

  /**
   * The committed envelope at `height`/`index`, decoded strictly. One block read (bounded by the
   * chain's maxBlockBytes); the store keeps no envelope by tx hash.
   */
  private async committedTx(hash: Uint8Array, height: number, index: number): Promise<Tx> {
    const block = await this.o.store.getBlock(height)
    const bytes = block?.txs[index]
    if (!bytes)
      throw new Error(
        `invariant broken: tx index points at height ${height} index ${index}, not in the store`,
      )
    const tx = decodeTx(bytes, bytes.length)
    if (toHex(tx.hash) !== toHex(hash))
      throw new Error(`invariant broken: tx at height ${height} index ${index} is not ${toHex(hash)}`)
    return tx
  }

  ready(): boolean {
    return this.o.started() && !this.o.catchingUp()
  }

  async submitTx(bytes: Uint8Array): Promise<{ hash: Uint8Array }> {
    if (!this.ready()) throw new CityError('NOT_READY', 'the node is starting or catching up')
    try {
      return await this.o.submit(bytes)
    } catch (err) {
      if (err instanceof CityError) this.o.metrics?.mempoolRejected.inc({ reason: err.code })
      throw err
    }
  }

  async txStatus(hash: Uint8Array): Promise<TxStatus> {
    const hex = toHex(hash)
    const stored = await this.o.store.getTx(hash)
    if (stored)
      return this.statusOf(
        hex,
        stored.height,
        stored.index,
        stored.result,
        await this.committedTx(hash, stored.height, stored.index),
      )
    const pending = this.o.mempool.get(hash)
    if (pending) return { hash: hex, status: 'pending', tx: txBodyView(pending) }
    return { hash: hex, status: 'unknown' }
  }

  async waitForTx(hash: Uint8Array, opts: { timeoutMs: number; signal: AbortSignal }): Promise<TxStatus> {
    const now = await this.txStatus(hash)
    if (now.status === 'committed' || now.status === 'failed') return now
    const hex = toHex(hash)
    return new Promise<TxStatus>((resolve) => {
      let set = this.waiters.get(hex)
      if (!set) this.waiters.set(hex, (set = new Set()))
      const done = (s: TxStatus) => {
        clearTimeout(timer)
        opts.signal.removeEventListener('abort', onAbort)
        set!.delete(done)
        if (set!.size === 0 && this.waiters.get(hex) === set) this.waiters.delete(hex)
        resolve(s)
      }
      const onAbort = () => void this.txStatus(hash).then(done, () => done({ hash: hex, status: 'unknown' }))
      const timer = setTimeout(onAbort, opts.timeoutMs)
      opts.signal.addEventListener('abort', onAbort, { once: true })
      set.add(done)
    })
  }

  async status(): Promise<NodeStatus> {
    const head = this.o.ledger.head
    return {
      chainId: this.o.genesis.chainId,
      nodeId: this.o.nodeId,
      height: head.height,
      view: this.o.view(),
      stateRoot: toHex(head.stateRoot),
      catchingUp: this.o.catchingUp(),
      peers: this.o.peers(),
      version: NODE_VERSION,
      genesisHash: (this.genesisHashHex ??= toHex(genesisHash(this.o.genesis))),
      latestBlockHash: toHex(head.hash),
      latestBlockTime: head.time,
      lowestHeight: Math.max(1, this.o.store.prunedBelow),
    }
  }

  async block(height: number | 'latest') {
    const h = height === 'latest' ? this.o.ledger.head.height : height
    if (h < 1) return undefined
    const [block, cert] = await Promise.all([this.o.store.getBlock(h), this.o.store.getCertificate(h)])
    return block ? blockView(block, cert) : undefined
  }

  async blockRange(from: number, to: number, maxBytes: number): Promise<BlockRange> {
    const blocks: BlockView[] = []
    let bytes = 0
    // One block at a time: a block's size is known only once read, and the budget bounds what is read.
    for (let h = from; h <= to; h++) {
      const [block, cert] = await Promise.all([this.o.store.getBlock(h), this.o.store.getCertificate(h)])
      if (!block) throw new Error(`invariant broken: block ${h} at or below the head is not in the store`)
      bytes += block.bytes.length
      if (blocks.length > 0 && bytes > maxBytes) return { blocks, next: h }
      blocks.push(blockView(block, cert))
    }
    return { blocks }
  }

  async genesis(): Promise<GenesisView> {
    const g = this.o.genesis
    return {
      genesisHash: (this.genesisHashHex ??= toHex(genesisHash(g))),
      genesis: {
        chainId: g.chainId,
        genesisTime: g.genesisTime,
        validators: g.validators.map((v) => ({ name: v.name, publicKey: v.publicKey })),
        consensus: { ...g.consensus },
        services: g.services,
      },
    }
  }

  async blockByHash(hash: Uint8Array) {
    const block = await this.o.store.getBlockByHash(hash)
    if (!block) return undefined
    return blockView(block, await this.o.store.getCertificate(block.header.height))
  }

  async peers() {
    return this.o.peerList?.() ?? []
  }

  /** The set that signs the next height; names from the genesis for keys it lists. */
  async validators() {
    const set = this.o.validatorSet?.()
    if (!set) return this.o.genesis.validators.map((v) => ({ publicKey: v.publicKey, name: v.name }))
    const names = new Map(this.o.genesis.validators.map((v) => [v.publicKey.toLowerCase(), v.name]))
    return set.map((k) => {
      const name = names.get(k.toLowerCase())
      return name === undefined ? { publicKey: k } : { publicKey: k, name }
    })
  }

  /** The stored entries from `from` (readHistory: consecutive, bounded by count and bytes). */
  async validatorHistory(from: number, limit: number, maxBytes: number): Promise<Uint8Array[]> {
    if (!this.o.history) return []
    return readHistory(this.o.history, from, limit, maxBytes)
  }

  async query(service: string, query: string, args: Record<string, string>) {
    const state = this.o.store.state
    const height = this.o.ledger.head.height
    if (service === '_sys' && query === 'nonce') {
      if (!isHex(args.signer, 32)) throw new CityError('BAD_ARGS', 'args.signer: 32-byte hex public key')
      return {
        height,
        value: this.o.runtime.committedNonce({ get: (k) => state.get(k) }, fromHex(args.signer!)),
      }
    }
    const r = this.o.runtime.query({ get: (k) => state.get(k) }, height, service, query, args, true)
    const entries = r.keys.map((key) => {
      const p = state.proveLatest(key)
      return {
        key: toHex(key),
        value: p.value ? toHex(p.value) : null,
        proof: toHex(encodeStateProof(p.proof)),
      }
    })
    const root = toHex(state.root())
    return {
      height,
      value: valueToRpcJson(r.value),
      proof: entries.length ? { root, height, key: entries[0]!.key, entries } : undefined,
    }
  }

  /**
   * Not ok while starting or catching up, and when this node cannot take part in a commit: a
   * validator that sees fewer other validators than a quorum needs besides itself (2f+1 of n, so a
   * set of 1 needs none and a single-node devnet is healthy), or an observer with no peer at all.
   */
  async health() {
    const reasons: string[] = []
    if (!this.o.started()) reasons.push('starting')
    if (this.o.catchingUp()) reasons.push('catching up')
    const set = (this.o.validatorSet?.() ?? this.o.genesis.validators.map((v) => v.publicKey)).map((k) =>
      k.toLowerCase(),
    )
    const isValidator = set.includes(this.o.nodeId.toLowerCase())
    if (isValidator) {
      const needed = quorumSize(set.length) - 1
      const have = (this.o.validatorPeers ?? this.o.peers)()
      if (have < needed)
        reasons.push(
          `${have} validator peer(s) connected, a quorum of ${quorumSize(set.length)} of ${set.length} needs ${needed} besides this node`,
        )
    } else if (this.o.peers() === 0) reasons.push('no peers: an observer follows the chain through them')
    return reasons.length ? { ok: false, reasons } : { ok: true }
  }

  subscribe(listener: (e: RpcEvent) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** The store's tx index (bounded there), hashes in JSON form. */
  async searchTxs(params: TxSearchParams): Promise<TxSearchAnswer> {
    const a = await this.o.store.searchTxs(params)
    return {
      txs: a.txs.map((t) => ({ hash: toHex(t.hash), height: t.height, index: t.index })),
      ...(a.next !== undefined ? { next: a.next } : {}),
      indexedFrom: a.indexedFrom,
    }
  }

  async metrics() {
    const reg = this.o.metrics?.registry
    if (!reg) return { contentType: 'text/plain; version=0.0.4', body: '' }
    const m = this.o.metrics!
    m.mempoolSize.set(this.o.mempool.size())
    m.mempoolBytes.set(this.o.mempool.bytes())
    m.peers.set(this.o.peers())
    return { contentType: reg.contentType, body: await reg.metrics() }
  }
}

/** A tx body in RPC JSON form (bytes as plain hex, in the args too). */
function txBodyView(tx: Tx): TxBodyView {
  const b = tx.body
  return {
    chainId: b.chainId,
    service: b.service,
    method: b.method,
    args: valueToRpcJson(b.args),
    signer: toHex(b.signer),
    nonce: b.nonce,
    expiry: b.expiry,
  }
}

/** The stream messages of one committed block, in order (see `RpcEvent`). */
function streamMessages(
  block: import('@cityledger/core').Block,
  cert: Uint8Array | undefined,
  results: readonly TxResult[],
  blockEvents: readonly ServiceEvent[],
): RpcEvent[] {
  const height = block.header.height
  const out: RpcEvent[] = [{ type: 'block', height, data: blockView(block, cert) }]
  const next = (data: unknown): void => void out.push({ type: 'event', height, index: out.length - 1, data })
  results.forEach((r, index) => {
    if (r.code !== null) return
    for (const e of r.events) next({ ...eventView(e), height, tx: toHex(r.hash), index })
  })
  for (const e of blockEvents) next({ ...eventView(e), height })
  return out
}
