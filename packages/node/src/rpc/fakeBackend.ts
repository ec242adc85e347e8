import { CityError, LIMITS, type Tx, decodeTx, sha256, toHex, utf8 } from '@cityledger/core'
import { jsonForm } from './params.ts'
import type {
  BlockView,
  GenesisView,
  HealthReport,
  QueryResult,
  RpcBackend,
  RpcEvent,
  TxBodyView,
  TxEventView,
  TxStatus,
} from './backend.ts'

/**
 * An in-memory `RpcBackend` for tests of the RPC server, the client and tools built on them. It
 * decodes envelopes strictly (core's `decodeTx`) and enforces chain id, known services, duplicates and
 * per-signer nonces, but checks no signatures and runs no consensus: the test commits what is pending
 * by calling `commit()`, so nothing ever waits on the clock. `blockRange` counts a block's bytes as
 * the length of its JSON form (the fake has no encoded blocks); `genesis()` is `FAKE_GENESIS`.
 */
export interface FakeBackend extends RpcBackend {
  readonly chainId: string
  /** Commits every pending tx (or the given ones) into a new block; `failures` maps tx hash hex -> code. */
  commit(opts?: { only?: string[]; failures?: Record<string, string> }): BlockView
  /**
   * Emits an event to subscribers directly (not kept for `eventsAt`). Without a position it gets the
   * current height and the next index at that height.
   */
  emit(event: Omit<RpcEvent, 'height'> & { height?: number }): void
  /** The next call of `method` throws `err` (once). */
  failNext(method: keyof RpcBackend, err: unknown): void
  setReady(ready: boolean): void
  /** Admitted txs not yet committed, in admission order. */
  pending(): Tx[]
  setHealth(health: HealthReport): void
  /** Registers a read-only query. */
  addQuery(service: string, query: string, answer: (args: Record<string, string>) => QueryResult): void
  /** The encoded entries `validatorHistory` serves (entry 1 first); none until set. */
  setValidatorHistory(entries: readonly Uint8Array[]): void
  /** Current subscriber count. */
  subscribers(): number
  /** Resolves once the subscriber count equals `n` (now or later). */
  whenSubscribers(n: number): Promise<void>
  /** Resolves once exactly `n` `waitForTx` calls are in progress (now or later). */
  whenWaiting(n: number): Promise<void>
  /** `waitForTx` calls in progress. */
  waiting(): number
}

export interface FakeBackendOptions {
  chainId?: string
  /** Services whose txs are admitted; others are UNKNOWN_SERVICE. Default: token, identity. */
  services?: string[]
  /**
   * Whether tx statuses carry the decoded body (`tx`), as the node's do. Off by default so that tests
   * comparing whole statuses from before bodies existed keep their meaning (client.test.ts).
   */
  txBodies?: boolean
}

/** The genesis the fake reports; `status().genesisHash` is `genesisHash` here. */
export const FAKE_GENESIS: GenesisView = Object.freeze({
  genesisHash: toHex(sha256(utf8.encode('fake-genesis'))),
  genesis: {
    chainId: 'test-chain',
    genesisTime: 1_700_000_000_000,
    validators: [0, 1, 2, 3].map((i) => ({
      name: `agency-${i}`,
      publicKey: toHex(sha256(utf8.encode(`validator-${i}`))),
    })),
    consensus: { checkpointInterval: 16, watermarkWindow: 64 },
    services: { token: { admin: `0x${'ab'.repeat(32)}` } },
  },
})

interface Waiter {
  hash: string
  done: (s: TxStatus) => void
}

export function createFakeBackend(opts: FakeBackendOptions = {}): FakeBackend {
  const chainId = opts.chainId ?? 'test-chain'
  const services = new Set(opts.services ?? ['token', 'identity'])
  const txs = new Map<string, TxStatus>()
  const bodies = new Map<string, TxBodyView>()
  const pending: Tx[] = []
  const nonces = new Map<string, number>()
  const blocks: BlockView[] = []
  /** What `commit()` streamed for each block, by height - 1. */
  const streamed: RpcEvent[][] = []
  let raw = { height: -1, index: 0 }
  const byHash = new Map<string, BlockView>()
  const listeners = new Set<(e: RpcEvent) => void>()
  const waiters = new Set<Waiter>()
  const queries = new Map<string, (args: Record<string, string>) => QueryResult>()
  const failures = new Map<string, unknown>()
  const watchers = new Set<() => void>()
  let ready = true
  let history: Uint8Array[] = []
  let health: HealthReport = { ok: true }

  const changed = (): void => {
    for (const w of [...watchers]) w()
  }
  const until = (cond: () => boolean): Promise<void> =>
    new Promise((resolve) => {
      if (cond()) return resolve()
      const w = (): void => {
        if (!cond()) return
        watchers.delete(w)
        resolve()
      }
      watchers.add(w)
    })
  const maybeFail = (method: keyof RpcBackend): void => {
    if (!failures.has(method)) return
    const err = failures.get(method)
    failures.delete(method)
    throw err
  }
  const withBody = (hash: string): { tx?: TxBodyView } =>
    opts.txBodies && bodies.has(hash) ? { tx: bodies.get(hash)! } : {}
  const statusOf = (hash: string): TxStatus => txs.get(hash) ?? { hash, status: 'unknown' }
  const emit = (event: RpcEvent): void => {
    for (const l of [...listeners]) l(event)
  }
  const emitRaw = (e: Omit<RpcEvent, 'height'> & { height?: number }): void => {
    const height = e.height ?? blocks.length
    if (raw.height !== height) raw = { height, index: 0 }
    const index = e.type === 'block' ? undefined : (e.index ?? raw.index++)
    emit({ ...e, height, ...(index === undefined ? {} : { index }) } as RpcEvent)
  }

  return {
    chainId,
    async submitTx(bytes) {
      maybeFail('submitTx')
      const tx = decodeTx(bytes, LIMITS.maxTxBytes)
      const hash = toHex(tx.hash)
      if (tx.body.chainId !== chainId)
        throw new CityError('WRONG_CHAIN', `tx is for chain ${tx.body.chainId}, this is ${chainId}`)
      if (!services.has(tx.body.service))
        throw new CityError('UNKNOWN_SERVICE', `no service ${tx.body.service}`)
      if (txs.has(hash)) throw new CityError('DUPLICATE_TX', `tx ${hash} is already known`)
      const signer = toHex(tx.body.signer)
      const last = nonces.get(signer) ?? 0
      if (tx.body.nonce <= last) throw new CityError('NONCE_TOO_LOW', `nonce ${tx.body.nonce} <= ${last}`)
      nonces.set(signer, tx.body.nonce)
      bodies.set(hash, jsonForm(tx.body) as TxBodyView)
      txs.set(hash, { hash, status: 'pending', ...withBody(hash) })
      pending.push(tx)
      return { hash: tx.hash }
    },
    async txStatus(hash) {
      maybeFail('txStatus')
      return statusOf(toHex(hash))
    },
    waitForTx(hash, { timeoutMs, signal }) {
      maybeFail('waitForTx')
      const h = toHex(hash)
      const now = statusOf(h)
      if (now.status === 'committed' || now.status === 'failed') return Promise.resolve(now)
      return new Promise((resolve) => {
        const finish = (s: TxStatus): void => {
          clearTimeout(timer)
          signal.removeEventListener('abort', onAbort)
          waiters.delete(w)
          changed()
          resolve(s)
        }
        const w: Waiter = { hash: h, done: finish }
        const onAbort = (): void => finish(statusOf(h))
        // The timeout is what is under test here, not a synchronisation device.
        const timer = setTimeout(onAbort, timeoutMs)
        if (signal.aborted) return onAbort()
        signal.addEventListener('abort', onAbort)
        waiters.add(w)
        changed()
      })
    },
    async status() {
      maybeFail('status')
      const tip = blocks.at(-1)
      return {
        chainId,
        nodeId: toHex(sha256(utf8.encode('fake-node'))),
        height: tip?.header.height ?? 0,
        view: 0,
        stateRoot: toHex(sha256(utf8.encode(`state-${blocks.length}`))),
        catchingUp: !ready,
        peers: 3,
        version: '0.0.0-fake',
        genesisHash: FAKE_GENESIS.genesisHash,
        latestBlockHash: tip ? tip.hash : FAKE_GENESIS.genesisHash,
        latestBlockTime: tip?.header.time ?? 0,
        lowestHeight: 1,
      }
    },
    async block(height) {
      maybeFail('block')
      return height === 'latest' ? blocks.at(-1) : blocks[height - 1]
    },
    async blockRange(from, to, maxBytes) {
      maybeFail('blockRange')
      if (!(from >= 1 && from <= to && to <= blocks.length))
        throw new Error(`invariant broken: blockRange(${from}, ${to}) outside 1..${blocks.length}`)
      const out: BlockView[] = []
      let bytes = 0
      for (let h = from; h <= to; h++) {
        bytes += JSON.stringify(blocks[h - 1]).length
        if (out.length > 0 && bytes > maxBytes) return { blocks: out, next: h }
        out.push(blocks[h - 1]!)
      }
      return { blocks: out }
    },
    async genesis() {
      maybeFail('genesis')
      return structuredClone(FAKE_GENESIS)
    },
    async blockByHash(hash) {
      maybeFail('blockByHash')
      return byHash.get(toHex(hash))
    },
    async peers() {
      maybeFail('peers')
      return [1, 2, 3].map((i) => ({
        publicKey: toHex(sha256(utf8.encode(`validator-${i}`))),
        role: 'validator',
        addrs: [`/ip4/127.0.0.1/tcp/${26656 + i}`],
      }))
    },
    async validators() {
      maybeFail('validators')
      return [0, 1, 2, 3].map((i) => ({
        publicKey: toHex(sha256(utf8.encode(`validator-${i}`))),
        name: `agency-${i}`,
      }))
    },
    async validatorHistory(from, limit, maxBytes) {
      maybeFail('validatorHistory')
      const out: Uint8Array[] = []
      let size = 0
      for (const e of history.slice(from - 1)) {
        if (out.length >= limit || (out.length > 0 && size + e.length > maxBytes)) break
        out.push(e)
        size += e.length
      }
      return out
    },
    setValidatorHistory(entries) {
      history = [...entries]
    },
    async query(service, query, args) {
      maybeFail('query')
      if (!services.has(service)) throw new CityError('UNKNOWN_SERVICE', `no service ${service}`)
      const q = queries.get(`${service}/${query}`)
      if (!q) throw new CityError('UNKNOWN_QUERY', `no query ${service}/${query}`)
      return q(args)
    },
    async health() {
      maybeFail('health')
      return health
    },
    subscribe(listener) {
      maybeFail('subscribe')
      listeners.add(listener)
      changed()
      return () => {
        if (listeners.delete(listener)) changed()
      }
    },
    async metrics() {
      maybeFail('metrics')
      return {
        contentType: 'text/plain; version=0.0.4; charset=utf-8',
        body: `# TYPE cityledger_height gauge\ncityledger_height ${blocks.length}\n`,
      }
    },
    ready() {
      maybeFail('ready')
      return ready
    },

    commit(o = {}) {
      const only = o.only ? new Set(o.only) : undefined
      const chosen = pending.filter((t) => !only || only.has(toHex(t.hash)))
      for (const t of chosen) pending.splice(pending.indexOf(t), 1)
      const height = blocks.length + 1
      const parent = blocks.at(-1)?.hash ?? toHex(new Uint8Array(32))
      const header = {
        chainId,
        height,
        view: 0,
        time: 1_700_000_000_000 + height,
        parentHash: parent,
        txRoot: toHex(sha256(...chosen.map((t) => t.hash))),
        prevStateRoot: toHex(sha256(utf8.encode(`state-${height - 1}`))),
        proposer: toHex(sha256(utf8.encode('validator-0'))),
      }
      const hash = toHex(sha256(utf8.encode(JSON.stringify(header))))
      const block: BlockView = {
        hash,
        header,
        txs: chosen.map((t) => toHex(t.hash)),
        certificate: {
          chainId,
          view: 0,
          height,
          blockHash: hash,
          signatures: [{ validator: header.proposer, signature: toHex(new Uint8Array(64).fill(7)) }],
        },
      }
      blocks.push(block)
      byHash.set(hash, block)
      const results: TxStatus[] = chosen.map((t, index) => {
        const h = toHex(t.hash)
        const code = o.failures?.[h]
        const events: TxEventView[] = code
          ? []
          : [
              {
                service: t.body.service,
                type: `${t.body.method}.done`,
                data: { nonce: t.body.nonce, signer: t.body.signer },
              },
            ]
        const s: TxStatus = code
          ? { hash: h, status: 'failed', height, index, code, ...withBody(h) }
          : { hash: h, status: 'committed', height, index, events, ...withBody(h) }
        txs.set(h, s)
        return s
      })
      const out: RpcEvent[] = [{ type: 'block', height, data: block }]
      for (const r of results)
        for (const e of r.events ?? [])
          out.push({
            type: 'event',
            height,
            index: out.length - 1,
            data: { ...e, height, tx: r.hash, index: r.index },
          })
      streamed.push(out)
      for (const e of out) emit(e)
      for (const w of [...waiters]) {
        const s = statusOf(w.hash)
        if (s.status === 'committed' || s.status === 'failed') w.done(s)
      }
      return block
    },
    emit: emitRaw,
    failNext(method, err) {
      failures.set(method, err)
    },
    pending: () => [...pending],
    setReady(r) {
      ready = r
    },
    setHealth(h) {
      health = h
    },
    addQuery(service, query, answer) {
      queries.set(`${service}/${query}`, answer)
    },
    async searchTxs() {
      maybeFail('searchTxs')
      return { txs: [], indexedFrom: 1 }
    },
    async eventsAt(height) {
      maybeFail('eventsAt')
      return streamed[height - 1]
    },
    subscribers: () => listeners.size,
    whenSubscribers: (n) => until(() => listeners.size === n),
    whenWaiting: (n) => until(() => waiters.size === n),
    waiting: () => waiters.size,
  }
}
