import { type TxBody, encode, fromHex, isHex, signTx, toHex } from '@cityledger/core'
import type {
  BlockRange,
  BlockView,
  GenesisView,
  HealthReport,
  NodeStatus,
  QueryResult,
  RpcEvent,
  TxStatus,
  ValidatorView,
} from '../rpc/backend.ts'
import { clientError, createHttp } from './http.ts'
import { createScheduleCache, fetchHistoryPage } from './history.ts'
import { parseSse } from './sse.ts'
import { type Anchor, type ProvenEntry, proofOf, verifyAnchor, verifyStateProofs } from './verify.ts'

/** A tx hash as bytes or as 64 hex characters. */
export type HashLike = Uint8Array | string

/** Options of `createClient`. */
export interface ClientOptions {
  /** Base URL of a node's RPC, e.g. `http://127.0.0.1:26657`. */
  url: string
  /** Defaults to the global `fetch`. */
  fetch?: typeof fetch
}

/** How long to wait for a commit and how to give up early. */
export interface WaitOptions {
  /** Total time to wait, ms. Default 30000. */
  timeoutMs?: number
  signal?: AbortSignal
}

export interface SubmitOptions extends WaitOptions {
  /** Resolve once the tx is committed or failed (or `timeoutMs` passed), not when it is admitted. */
  wait?: 'commit'
}

/**
 * One envelope's outcome in `submitBatch`: admitted (its hash) or refused with the code and message a
 * single `submit` would have thrown.
 */
export type BatchOutcome = { ok: true; hash: string } | { ok: false; code: string; message: string }

/**
 * Checks a query answer against a state root: `root` and `key` come from the answer's proof, `value`
 * is the answer's value, `proof` the whole proof object (`{ root, height, key, entries }`). The
 * client's `verifyStateProofs` is one (it checks every entry against the root); core's
 * `verifyStateProof` is not: it takes one entry's bytes. This checks the root, not that the root is
 * the chain's: `queryVerified` does both.
 */
export type ProofVerifier = (root: Uint8Array, key: Uint8Array, value: unknown, proof: unknown) => boolean

/**
 * Where an event stream starts and what it carries (see `GET /v1/events` in the node README). Without
 * `lastEventId` or `fromHeight` it starts with the next commit.
 */
export interface EventsOptions {
  signal?: AbortSignal
  /** Resume after this SSE id (`<height>` or `<height>/<index>`, as the last message had). */
  lastEventId?: string
  /** Replay from this height on (ignored when `lastEventId` is given). */
  fromHeight?: number
  /** Message types to receive; default both. */
  types?: ('block' | 'event')[]
  /** Service events of these services only. */
  services?: string[]
  /** Service events of these event types only (e.g. `transfer.done`). */
  eventTypes?: string[]
}

/** Options of `queryVerified`: what the caller trusts, out of band (the genesis). */
export interface VerifiedQueryOptions {
  chainId: string
  /** The validator set's Ed25519 public keys (bytes or hex), as the caller's genesis has them. */
  validators: readonly (Uint8Array | string)[]
  /**
   * The genesis `consensus.checkpointInterval`. Given, the client walks the validator history from
   * `validators` (`GET /v1/validators/history`, every entry checked against the sets walked before it;
   * kept between calls and extended) and checks the certificate against the set of its height, so
   * answers stay verifiable after the set changed. A node that withholds entries can only make the
   * check fail (the certificate of a hidden epoch carries that epoch's chain id and set), never pass,
   * as long as no quorum of a past set signs blocks after its epoch. Omitted: the genesis set only,
   * which refuses every certificate after the first change (WRONG_CHAIN).
   */
  checkpointInterval?: number
  /** How long to wait for the block that commits to the answer's state root, ms. Default 30000. */
  timeoutMs?: number
  signal?: AbortSignal
}

/** An answer whose state entries were proven against a root the validators certified. */
export interface VerifiedAnswer {
  /** The service's answer, computed by the node from `entries` (the client does not rerun the query). */
  value: unknown
  /** The state the answer was read from: after block `height`, with root `root` (hex). */
  height: number
  root: string
  /** The state entries the query read, each proven present (value hex) or absent (null). */
  entries: ProvenEntry[]
  anchor: Anchor
}

export interface QueryOptions {
  verifyProof?: ProofVerifier
  signal?: AbortSignal
}

/**
 * Typed client of RPC v1. Every server error is thrown as a `CityError` with the server's code;
 * the client adds only `ClientErrorCode`s of its own.
 *
 * @example
 * const client = createClient({ url })
 * const { status } = await client.submitTx(body, key.secretKey, { wait: 'commit' })
 * for await (const e of client.events({ signal })) console.log(e.type, e.data)
 */
export interface CityledgerClient {
  /** Submits envelope bytes. Without `wait` resolves `{ hash, status: 'pending' }` once admitted. */
  submit(txBytes: Uint8Array, opts?: SubmitOptions): Promise<TxStatus>
  /**
   * Submits many envelopes in one request (`POST /v1/txs/batch`); resolves one outcome per envelope, in
   * order. A refused envelope is an outcome, not a throw; the call throws only when the request as a
   * whole is refused (too many or too large for the server's limits, NOT_READY, RATE_LIMITED).
   */
  submitBatch(txs: readonly Uint8Array[], opts?: { signal?: AbortSignal }): Promise<BatchOutcome[]>
  /** Builds and signs `body` with `secretKey` (core's `signTx`), then `submit`s it. */
  submitTx(body: TxBody, secretKey: Uint8Array, opts?: SubmitOptions): Promise<TxStatus>
  /** Status of a tx; `tx` is its decoded body once the node has it (pending, committed or failed). */
  tx(hash: HashLike, opts?: { signal?: AbortSignal }): Promise<TxStatus>
  /** Long-polls the server until the tx is committed or failed, or the time is up (then the last status). */
  waitForTx(hash: HashLike, opts?: WaitOptions): Promise<TxStatus>
  status(): Promise<NodeStatus>
  /** `undefined` when there is no such block (yet). */
  block(height: number | 'latest'): Promise<BlockView | undefined>
  blockByHash(hash: HashLike): Promise<BlockView | undefined>
  /**
   * Committed blocks `from`..`to` (default: as many as one answer carries, capped at the head). An
   * answer may stop early (block and byte bounds); `next` then says where to go on. A `from` above
   * the head is `{ blocks: [] }`.
   */
  blocks(from: number, to?: number, opts?: { signal?: AbortSignal }): Promise<BlockRange>
  /** The genesis the node runs (file form) and its hash, as `GET /v1/genesis` gives them. */
  genesis(): Promise<GenesisView>
  validators(): Promise<ValidatorView[]>
  /**
   * One page of the validator history from change `from` (default 1): the encoded entries as the node
   * holds them (node/validatorHistory.ts `decodeHistoryEntry`), unchecked; `[]` past the last.
   */
  validatorHistory(from?: number, opts?: { signal?: AbortSignal }): Promise<Uint8Array[]>
  /** Runs a read-only service query; with `verifyProof` the answer must carry a proof that passes. */
  query(
    service: string,
    name: string,
    args?: Record<string, string>,
    opts?: QueryOptions,
  ): Promise<QueryResult>
  /**
   * Runs a query and returns its answer only once (1) every state entry it read is proven against
   * the answer's state root, (2) that root is the `prevStateRoot` of block `height + 1` (waited for,
   * up to `timeoutMs`), and (3) that block's commit certificate has valid signatures of a quorum of
   * `validators` (with `checkpointInterval`: of the set of its height, see `VerifiedQueryOptions`).
   * Throws PROOF_MISSING, BAD_PROOF (naming the step) or TIMEOUT otherwise.
   */
  queryVerified(
    service: string,
    name: string,
    args: Record<string, string> | undefined,
    opts: VerifiedQueryOptions,
  ): Promise<VerifiedAnswer>
  /**
   * New blocks and service events, in commit order, until `signal` aborts (the iteration then ends
   * quietly), the loop breaks, or the server closes the stream.
   */
  events(opts?: EventsOptions): AsyncGenerator<RpcEvent>
  /** The health report, for a healthy (200) and an unhealthy (503) node alike. */
  health(): Promise<HealthReport>
  /** Prometheus exposition text. */
  metrics(): Promise<string>
}

const TX_STATES = new Set(['pending', 'committed', 'failed', 'unknown'])
const DEFAULT_WAIT_MS = 30_000
const BACKOFF_MIN_MS = 50
const BACKOFF_MAX_MS = 1_000

export function createClient(opts: ClientOptions): CityledgerClient {
  const http = createHttp(opts.url, opts.fetch ?? globalThis.fetch)

  const txStatus = (body: unknown): TxStatus => {
    const s = body as TxStatus | null
    if (!s || typeof s.hash !== 'string' || !TX_STATES.has(s.status))
      throw clientError('BAD_RESPONSE', 'not a tx status')
    return s
  }
  const object = <T>(body: unknown, what: string): T => {
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw clientError('BAD_RESPONSE', `${what}: not a JSON object`)
    return body as T
  }
  const scheduleFor = createScheduleCache((from, signal) => fetchHistoryPage(http, from, signal))
  const isFinal = (s: TxStatus): boolean => s.status === 'committed' || s.status === 'failed'

  const waitForTx = async (hash: HashLike, o: WaitOptions = {}): Promise<TxStatus> => {
    const h = hashHex(hash)
    const deadline = performance.now() + (o.timeoutMs ?? DEFAULT_WAIT_MS)
    let backoff = BACKOFF_MIN_MS
    for (;;) {
      const left = Math.max(0, Math.floor(deadline - performance.now()))
      const { body } = await http.json(`/v1/txs/${h}?wait=commit&timeoutMs=${left}`, { signal: o.signal })
      const s = txStatus(body)
      if (isFinal(s) || left === 0 || performance.now() >= deadline) return s
      // The server caps each wait; back off in case it ended early (a node without long-polling).
      await delay(Math.min(backoff, Math.max(0, deadline - performance.now())), o.signal)
      backoff = Math.min(backoff * 2, BACKOFF_MAX_MS)
    }
  }

  const submit = async (txBytes: Uint8Array, o: SubmitOptions = {}): Promise<TxStatus> => {
    if (!(txBytes instanceof Uint8Array)) throw new TypeError('txBytes: expected a Uint8Array')
    const started = performance.now()
    const timeoutMs = o.timeoutMs ?? DEFAULT_WAIT_MS
    const qs = o.wait === 'commit' ? `?wait=commit&timeoutMs=${timeoutMs}` : ''
    const { body } = await http.json(`/v1/txs${qs}`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: txBytes as Uint8Array<ArrayBuffer>,
      signal: o.signal,
    })
    if (o.wait !== 'commit') {
      const hash = object<{ hash?: unknown }>(body, 'submit').hash
      if (!isHex(hash, 32)) throw clientError('BAD_RESPONSE', 'submit: no tx hash')
      return { hash, status: 'pending' }
    }
    const s = txStatus(body)
    if (isFinal(s)) return s
    const left = timeoutMs - (performance.now() - started)
    return left > 0 ? waitForTx(s.hash, { timeoutMs: left, signal: o.signal }) : s
  }

  const submitBatch: CityledgerClient['submitBatch'] = async (txs, o = {}) => {
    if (!Array.isArray(txs) || !txs.every((t) => t instanceof Uint8Array))
      throw new TypeError('txs: expected an array of Uint8Arrays')
    if (txs.length === 0) return []
    const { body } = await http.json('/v1/txs/batch', {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: encode(txs) as Uint8Array<ArrayBuffer>,
      signal: o.signal,
    })
    const results = object<{ results?: unknown }>(body, 'submitBatch').results
    if (!Array.isArray(results) || results.length !== txs.length)
      throw clientError('BAD_RESPONSE', `submitBatch: expected ${txs.length} results`)
    return results.map((r, i): BatchOutcome => {
      const x = r as { hash?: unknown; error?: { code?: unknown; message?: unknown } } | null
      if (isHex(x?.hash, 32)) return { ok: true, hash: x.hash }
      const code = x?.error?.code
      if (typeof code !== 'string' || code === '')
        throw clientError('BAD_RESPONSE', `submitBatch: result ${i} has neither a hash nor an error code`)
      return { ok: false, code, message: typeof x?.error?.message === 'string' ? x.error.message : code }
    })
  }

  const maybeBlock = async (path: string): Promise<BlockView | undefined> => {
    const { status, body } = await http.json(path, { okStatuses: [404] })
    if (status === 404) {
      const code = (body as { error?: { code?: unknown } } | null)?.error?.code
      if (code === 'NOT_FOUND') return undefined
      throw clientError('BAD_RESPONSE', `404 with code ${String(code)}`)
    }
    return object<BlockView>(body, 'block')
  }

  async function* events(o: EventsOptions = {}): AsyncGenerator<RpcEvent> {
    const ac = new AbortController()
    const onAbort = (): void => ac.abort(o.signal?.reason)
    if (o.signal?.aborted) return
    o.signal?.addEventListener('abort', onAbort)
    try {
      let res: Response
      try {
        res = await http.request(eventsPath(o), {
          headers: {
            accept: 'text/event-stream',
            ...(o.lastEventId !== undefined ? { 'last-event-id': o.lastEventId } : {}),
          },
          signal: ac.signal,
        })
      } catch (err) {
        if (ac.signal.aborted) return
        throw err
      }
      if (!res.body) throw clientError('BAD_RESPONSE', 'event stream without a body')
      try {
        for await (const m of parseSse(res.body)) {
          if (m.event !== 'block' && m.event !== 'event') continue
          let data: unknown
          try {
            data = JSON.parse(m.data)
          } catch {
            throw clientError('BAD_RESPONSE', `event ${m.id ?? '?'}: data is not JSON`)
          }
          const pos = EVENT_ID_RE.exec(m.id ?? '')
          if (!pos)
            throw clientError('BAD_RESPONSE', `event id ${JSON.stringify(m.id)} is not <height>[/<index>]`)
          yield {
            type: m.event,
            height: Number(pos[1]),
            ...(pos[2] !== undefined ? { index: Number(pos[2]) } : {}),
            data,
          }
        }
      } catch (err) {
        if (ac.signal.aborted) return
        if (err instanceof Error && err.name === 'CityError') throw err
        throw clientError('UNAVAILABLE', `event stream broke: ${(err as Error).message}`)
      }
    } finally {
      o.signal?.removeEventListener('abort', onAbort)
      // Closes the connection when the consumer stops early (break / return).
      ac.abort()
    }
  }

  const query: CityledgerClient['query'] = async (service, name, args = {}, o = {}) => {
    const qs = new URLSearchParams(args).toString()
    const path = `/v1/services/${encodeURIComponent(service)}/${encodeURIComponent(name)}${qs ? `?${qs}` : ''}`
    const r = object<QueryResult>((await http.json(path, { signal: o.signal })).body, 'query')
    if (o.verifyProof) checkProof(r, o.verifyProof)
    return r
  }

  return {
    submit,
    submitBatch,
    async submitTx(body, secretKey, o) {
      const tx = signTx(body, secretKey)
      const s = await submit(tx.bytes, o)
      if (s.hash !== toHex(tx.hash))
        throw clientError('BAD_RESPONSE', `server reports hash ${s.hash}, the signed tx is ${toHex(tx.hash)}`)
      return s
    },
    async tx(hash, o = {}) {
      return txStatus((await http.json(`/v1/txs/${hashHex(hash)}`, { signal: o.signal })).body)
    },
    waitForTx,
    async status() {
      return object<NodeStatus>((await http.json('/v1/status')).body, 'status')
    },
    async block(height) {
      if (height !== 'latest' && (!Number.isSafeInteger(height) || height < 0))
        throw new RangeError('height: expected a non-negative integer or "latest"')
      return maybeBlock(`/v1/blocks/${height}`)
    },
    async blockByHash(hash) {
      return maybeBlock(`/v1/blocks/hash/${hashHex(hash)}`)
    },
    async blocks(from, to, o = {}) {
      if (!Number.isSafeInteger(from) || from < 1) throw new RangeError('from: expected an integer >= 1')
      if (to !== undefined && (!Number.isSafeInteger(to) || to < from))
        throw new RangeError('to: expected an integer >= from')
      const qs = `from=${from}${to === undefined ? '' : `&to=${to}`}`
      const { status, body } = await http.json(`/v1/blocks?${qs}`, { signal: o.signal, okStatuses: [404] })
      if (status === 404) {
        const code = (body as { error?: { code?: unknown } } | null)?.error?.code
        if (code === 'NOT_FOUND') return { blocks: [] }
        throw clientError('BAD_RESPONSE', `404 with code ${String(code)}`)
      }
      const r = object<BlockRange>(body, 'blocks')
      if (!Array.isArray(r.blocks)) throw clientError('BAD_RESPONSE', 'blocks: not a list')
      if (r.next !== undefined && !(Number.isSafeInteger(r.next) && r.next > from))
        throw clientError('BAD_RESPONSE', 'blocks: next is not a height after from')
      return r
    },
    async genesis() {
      const g = object<GenesisView>((await http.json('/v1/genesis')).body, 'genesis')
      if (!isHex(g.genesisHash, 32) || typeof g.genesis !== 'object' || g.genesis === null)
        throw clientError('BAD_RESPONSE', 'genesis: expected { genesisHash, genesis }')
      return g
    },
    async validators() {
      const v = object<{ validators?: unknown }>(
        (await http.json('/v1/validators')).body,
        'validators',
      ).validators
      if (!Array.isArray(v)) throw clientError('BAD_RESPONSE', 'validators: not a list')
      return v as ValidatorView[]
    },
    validatorHistory: (from = 1, o = {}) => fetchHistoryPage(http, from, o.signal),
    query,
    async queryVerified(service, name, args = {}, o) {
      const validators = validatorKeys(o?.validators)
      if (typeof o.chainId !== 'string' || o.chainId === '')
        throw new TypeError('chainId: expected the chain id')
      const r = await query(service, name, args, {
        verifyProof: verifyStateProofs,
        ...(o.signal ? { signal: o.signal } : {}),
      })
      const proof = proofOf(r)
      // The block that names this root may not be committed yet when the answer was read.
      const deadline = performance.now() + (o.timeoutMs ?? DEFAULT_WAIT_MS)
      let backoff = BACKOFF_MIN_MS
      let next = await maybeBlock(`/v1/blocks/${proof.height + 1}`)
      while (!next) {
        const left = deadline - performance.now()
        if (left <= 0) throw clientError('TIMEOUT', `block ${proof.height + 1} was not committed in time`)
        await delay(Math.min(backoff, left), o.signal)
        backoff = Math.min(backoff * 2, BACKOFF_MAX_MS)
        next = await maybeBlock(`/v1/blocks/${proof.height + 1}`)
      }
      const { chainId, checkpointInterval: K } = o
      const trust =
        K === undefined
          ? { chainId, validators }
          : { chainId, schedule: await scheduleFor({ chainId, validators, checkpointInterval: K }, o.signal) }
      const anchor = verifyAnchor(next, proof.rootBytes, proof.height, trust)
      return { value: r.value, height: proof.height, root: proof.root, entries: proof.entries, anchor }
    },
    events,
    async health() {
      return object<HealthReport>((await http.json('/v1/health', { okStatuses: [503] })).body, 'health')
    },
    async metrics() {
      return (await http.request('/metrics')).text()
    },
  }
}

const EVENT_ID_RE = /^([0-9]{1,16})(?:\/([0-9]{1,9}))?$/

function eventsPath(o: EventsOptions): string {
  const q = new URLSearchParams()
  if (o.fromHeight !== undefined) {
    if (!Number.isSafeInteger(o.fromHeight) || o.fromHeight < 0)
      throw new RangeError('fromHeight: expected a non-negative integer')
    q.set('fromHeight', String(o.fromHeight))
  }
  if (o.types?.length) q.set('types', o.types.join(','))
  if (o.services?.length) q.set('service', o.services.join(','))
  if (o.eventTypes?.length) q.set('eventType', o.eventTypes.join(','))
  const qs = q.toString()
  return qs ? `/v1/events?${qs}` : '/v1/events'
}

/** Hands the proof's root and key to the caller's verifier; throws unless it accepts. */
function checkProof(r: QueryResult, verify: ProofVerifier): void {
  if (r.proof === undefined || r.proof === null)
    throw clientError('PROOF_MISSING', 'the answer carries no proof')
  const p = r.proof as { root?: unknown; key?: unknown }
  if (typeof p !== 'object' || !isHex(p.root, 32) || !isHex(p.key)) {
    throw clientError('BAD_PROOF', 'proof: expected an object with hex root (32 bytes) and key')
  }
  let ok: boolean
  try {
    ok = verify(fromHex(p.root, 'proof.root'), fromHex(p.key, 'proof.key'), r.value, r.proof)
  } catch (err) {
    throw clientError('BAD_PROOF', `proof check threw: ${(err as Error).message}`)
  }
  if (ok !== true) throw clientError('BAD_PROOF', `proof does not prove the answer at height ${r.height}`)
}

function validatorKeys(v: unknown): Uint8Array[] {
  if (!Array.isArray(v) || v.length === 0)
    throw new TypeError('validators: expected a non-empty list of public keys')
  return v.map((k, i) => {
    if (k instanceof Uint8Array && k.length === 32) return k
    if (isHex(k, 32)) return fromHex(k, `validators[${i}]`)
    throw new TypeError(`validators[${i}]: expected a 32-byte public key (bytes or hex)`)
  })
}

function hashHex(hash: HashLike): string {
  if (hash instanceof Uint8Array) {
    if (hash.length !== 32) throw clientError('BAD_HEX', `hash: expected 32 bytes, got ${hash.length}`)
    return toHex(hash)
  }
  if (!isHex(hash, 32)) throw clientError('BAD_HEX', 'hash: expected 64 hex characters')
  return hash.toLowerCase()
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(clientError('ABORTED', 'wait aborted', { cause: signal.reason }))
    const onAbort = (): void => {
      clearTimeout(t)
      reject(clientError('ABORTED', 'wait aborted', { cause: signal?.reason }))
    }
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
