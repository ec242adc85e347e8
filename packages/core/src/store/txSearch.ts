import { utf8 } from '../bytes/index.ts'
import { METHOD_RE, SERVICE_RE } from '../codec/limits.ts'
import type { TxResult } from '../runtime/executor.ts'
import { StoreError, corrupt } from './errors.ts'
import { STORE_PREFIX, readU32, readU64, writeU32, writeU64 } from './keys.ts'
import type { KvOp, KvStore } from './kv.ts'
import { peekTx } from './txPeek.ts'

// The tx search index: namespace `X`, one key per (term, tx), written in the block's own commit batch.
//
//   X | kind (1) | term parts, each length (1) + bytes | height (8) | index (4)   ->   tx hash (32)
//
// Kinds: 1 signer (the 32-byte public key), 2 service, 3 service + method, 4 event (service + name).
// Length-prefixed parts make every term's keys one contiguous range ordered by (height, index), so a
// query is a range scan, and every index orders the same way: a position is a cursor for all of them.

/** Bounds of `ChainStore.searchTxs`. */
export const SEARCH_LIMITS = Object.freeze({
  defaultLimit: 20,
  maxLimit: 100,
  /**
   * Most index keys one call reads (scan and per-candidate checks together). A call that reaches it
   * answers what it found with `next`, so a query that matches little over a long chain stays bounded.
   */
  maxKeysRead: 2000,
  /** Events whose name is longer (UTF-8 bytes) are not indexed. */
  maxEventNameBytes: 128,
})

/** A tx search: at least one of `signer`, `service`, `method` (with `service`) or `event`. */
export interface TxSearchQuery {
  /** Signer's Ed25519 public key (32 bytes). */
  signer?: Uint8Array
  /** Service the tx calls. */
  service?: string
  /** Method the tx calls; needs `service` (method names are per service). */
  method?: string
  /** A type of event the tx emitted: the emitting service and the event name. */
  event?: { service: string; name: string }
  /** Lowest height searched (default 1); the index starts at `indexedFrom` whatever is asked. */
  fromHeight?: number
  /** Highest height searched (default: the latest). */
  toHeight?: number
  /** `asc` (oldest first, the default) or `desc`. */
  order?: 'asc' | 'desc'
  /** Most txs in the answer, 1..100 (default 20). */
  limit?: number
  /** `next` of the previous page of the same query. */
  cursor?: string
}

/** One matching tx: its envelope hash and where it was committed. */
export interface TxSearchHit {
  hash: Uint8Array
  height: number
  index: number
}

/**
 * One page of a search. `next` is set when the search stopped before the end of the range (limit
 * reached or keys-read bound hit): pass it back as `cursor`. A page may be empty and still carry `next`.
 * `indexedFrom` is the first height the index covers: heights below it (committed before this store
 * had the index) were not searched.
 */
export interface TxSearchPage {
  txs: TxSearchHit[]
  next?: string
  indexedFrom: number
}

const KIND = { signer: 1, service: 2, method: 3, event: 4 } as const
const POS = 12
const PROBE = 32
const CHUNK = 100

function termPrefix(kind: number, parts: readonly Uint8Array[]): Uint8Array {
  let len = 2
  for (const p of parts) len += 1 + p.length
  const k = new Uint8Array(len)
  k[0] = STORE_PREFIX.search
  k[1] = kind
  let o = 2
  for (const p of parts) {
    k[o++] = p.length
    k.set(p, o)
    o += p.length
  }
  return k
}

function ascii(s: string): Uint8Array {
  const b = new Uint8Array(s.length)
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i)
  return b
}

function withPos(prefix: Uint8Array, height: number, index: number, extra = 0): Uint8Array {
  const k = new Uint8Array(prefix.length + POS + extra)
  k.set(prefix, 0)
  writeU64(k, prefix.length, height)
  writeU32(k, prefix.length + 8, index)
  return k
}

/**
 * The index entries of block `height`: pushed onto `ops`, the block's commit batch. A tx whose bytes
 * are not a well-formed envelope gets event keys only; an event whose service is not a service name
 * or whose name is longer than `maxEventNameBytes` is not indexed.
 */
export function pushSearchOps(
  ops: KvOp[],
  height: number,
  txs: readonly Uint8Array[],
  txHashes: readonly Uint8Array[],
  results: readonly TxResult[],
): void {
  // Blocks repeat services, methods and event types: each of their key prefixes is built once.
  const services = new Map<string, { prefix: Uint8Array; methods: Map<string, Uint8Array> }>()
  const eventTypes = new Map<string, Uint8Array | null>()
  const signerPrefix = termPrefix(KIND.signer, [new Uint8Array(32)])
  for (let i = 0; i < txs.length; i++) {
    const value = txHashes[i]!
    const terms = peekTx(txs[i]!)
    if (terms) {
      const { service, method } = terms
      let sv = services.get(service)
      if (sv === undefined) {
        sv = { prefix: termPrefix(KIND.service, [ascii(service)]), methods: new Map() }
        services.set(service, sv)
      }
      let mp = sv.methods.get(method)
      if (mp === undefined) {
        mp = termPrefix(KIND.method, [ascii(service), ascii(method)])
        sv.methods.set(method, mp)
      }
      const signerKey = withPos(signerPrefix, height, i)
      signerKey.set(terms.signer, 3)
      ops.push({ type: 'put', key: signerKey, value })
      ops.push({ type: 'put', key: withPos(sv.prefix, height, i), value })
      ops.push({ type: 'put', key: withPos(mp, height, i), value })
    }
    const events = results[i]!.events
    // Few events: compare with the earlier ones; many: a set (a tx may emit thousands).
    const seen = events.length > 8 ? new Set<string>() : undefined
    for (let j = 0; j < events.length; j++) {
      const e = events[j]!
      const type = `${e.service}\0${e.name}`
      let prefix = eventTypes.get(type)
      if (prefix === undefined) {
        const name = utf8.encode(e.name)
        prefix =
          SERVICE_RE.test(e.service) && name.length <= SEARCH_LIMITS.maxEventNameBytes
            ? termPrefix(KIND.event, [ascii(e.service), name])
            : null
        eventTypes.set(type, prefix)
      }
      if (prefix === null) continue
      // One key per event type and tx, however often the tx emitted it.
      let repeat = false
      if (seen) repeat = seen.size === seen.add(type).size
      else
        for (let k = 0; k < j && !repeat; k++)
          repeat = events[k]!.service === e.service && events[k]!.name === e.name
      if (!repeat) ops.push({ type: 'put', key: withPos(prefix, height, i), value })
    }
  }
}

/** A checked query: one key prefix per filter, and the page parameters. */
export interface CheckedSearch {
  prefixes: Uint8Array[]
  fromHeight: number
  toHeight: number | undefined
  desc: boolean
  limit: number
  cursor: { height: number; index: number } | undefined
}

const bad = (field: string, why: string): StoreError =>
  new StoreError('STORE_BAD_INPUT', `search.${field}: ${why}`, { field })
const CURSOR_RE = /^(0|[1-9][0-9]{0,15})\.(0|[1-9][0-9]{0,9})$/

/** Checks a `TxSearchQuery`, naming the first bad field (`STORE_BAD_INPUT`, `details.field`). */
export function checkSearchQuery(q: TxSearchQuery): CheckedSearch {
  if (q === null || typeof q !== 'object')
    throw new StoreError('STORE_BAD_INPUT', 'search: expected an object', { field: 'search' })
  const prefixes: Uint8Array[] = []
  if (q.signer !== undefined) {
    if (!(q.signer instanceof Uint8Array) || q.signer.length !== 32) throw bad('signer', 'expected 32 bytes')
    prefixes.push(termPrefix(KIND.signer, [q.signer]))
  }
  const service = q.service
  if (service !== undefined && (typeof service !== 'string' || !SERVICE_RE.test(service)))
    throw bad('service', 'not a service name')
  if (q.method !== undefined) {
    if (typeof q.method !== 'string' || !METHOD_RE.test(q.method)) throw bad('method', 'not a method name')
    if (service === undefined) throw bad('method', 'needs service (method names are per service)')
    // The service + method key implies the service: no separate service filter.
    prefixes.push(termPrefix(KIND.method, [ascii(service), ascii(q.method)]))
  } else if (service !== undefined) prefixes.push(termPrefix(KIND.service, [ascii(service)]))
  if (q.event !== undefined) {
    const e = q.event
    if (e === null || typeof e !== 'object') throw bad('event', 'expected { service, name }')
    if (typeof e.service !== 'string' || !SERVICE_RE.test(e.service))
      throw bad('event.service', 'not a service name')
    if (typeof e.name !== 'string' || e.name === '') throw bad('event.name', 'expected a non-empty string')
    const name = utf8.encode(e.name)
    if (name.length > SEARCH_LIMITS.maxEventNameBytes)
      throw bad(
        'event.name',
        `longer than ${SEARCH_LIMITS.maxEventNameBytes} bytes (such events are not indexed)`,
      )
    prefixes.push(termPrefix(KIND.event, [ascii(e.service), name]))
  }
  if (prefixes.length === 0)
    throw new StoreError('STORE_BAD_INPUT', 'search: give at least one of signer, service, method, event', {
      field: 'search',
    })
  const height = (field: 'fromHeight' | 'toHeight'): number | undefined => {
    const v = q[field]
    if (v === undefined) return undefined
    if (!Number.isSafeInteger(v) || v < 0) throw bad(field, 'expected an integer >= 0')
    return v
  }
  const fromHeight = height('fromHeight') ?? 1
  const toHeight = height('toHeight')
  if (toHeight !== undefined && toHeight < fromHeight)
    throw bad('toHeight', `${toHeight} is below fromHeight ${fromHeight}`)
  const order = q.order ?? 'asc'
  if (order !== 'asc' && order !== 'desc') throw bad('order', 'expected "asc" or "desc"')
  const limit = q.limit ?? SEARCH_LIMITS.defaultLimit
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > SEARCH_LIMITS.maxLimit)
    throw bad('limit', `expected an integer from 1 to ${SEARCH_LIMITS.maxLimit}`)
  let cursor: CheckedSearch['cursor']
  if (q.cursor !== undefined) {
    const m = typeof q.cursor === 'string' ? CURSOR_RE.exec(q.cursor) : null
    const h = m ? Number(m[1]) : Number.NaN
    const i = m ? Number(m[2]) : Number.NaN
    if (!Number.isSafeInteger(h) || !(i <= 0xffffffff)) throw bad('cursor', 'not a cursor of this store')
    cursor = { height: h, index: i }
  }
  return { prefixes, fromHeight, toHeight, desc: order === 'desc', limit, cursor }
}

const cursorOf = (height: number, index: number): string => `${height}.${index}`

interface Entry {
  height: number
  index: number
  hash: Uint8Array
}

/**
 * Runs a checked query over heights `lo..hi` (already clipped to the index and the tip). Scans the
 * filter whose index looks sparsest (the first `PROBE` entries of each filter are read, the one that
 * runs out first or spans the most heights wins) and checks each candidate against the other filters
 * with point reads; stops at `limit` matches, at the end of the range, or at `maxKeysRead`.
 */
export async function runSearch(
  kv: KvStore,
  s: CheckedSearch,
  lo: number,
  hi: number,
): Promise<{ txs: TxSearchHit[]; next?: string }> {
  if (lo > hi) return { txs: [] }
  let after = s.cursor
  const read = async (prefix: Uint8Array, n: number): Promise<Entry[]> => {
    const range = s.desc
      ? {
          gte: withPos(prefix, lo, 0),
          lt: after ? withPos(prefix, after.height, after.index) : withPos(prefix, hi + 1, 0),
          reverse: true,
        }
      : {
          // Strictly after the cursor: its key with one more byte sorts right after it.
          gte: after ? withPos(prefix, after.height, after.index, 1) : withPos(prefix, lo, 0),
          lt: withPos(prefix, hi + 1, 0),
        }
    const out: Entry[] = []
    for await (const [k, v] of kv.iterate({ ...range, limit: n })) {
      if (k.length !== prefix.length + POS || v.length !== 32)
        throw corrupt('tx search index', `entry of ${k.length} + ${v.length} bytes`)
      out.push({ height: readU64(k, prefix.length), index: readU32(k, prefix.length + 8), hash: v })
    }
    return out
  }
  const farther = (a: Entry, b: Entry): boolean =>
    s.desc
      ? a.height < b.height || (a.height === b.height && a.index < b.index)
      : a.height > b.height || (a.height === b.height && a.index > b.index)

  let used = 0
  let primary = s.prefixes[0]!
  let chunk: Entry[] | undefined
  let asked = 0
  if (s.prefixes.length > 1) {
    let best: { prefix: Uint8Array; entries: Entry[] } | undefined
    for (const prefix of s.prefixes) {
      const entries = await read(prefix, PROBE)
      used += Math.max(1, entries.length)
      // One filter with nothing left in the range: the intersection is empty too.
      if (entries.length === 0) return { txs: [] }
      if (
        !best ||
        (entries.length < PROBE && (best.entries.length === PROBE || entries.length < best.entries.length)) ||
        (entries.length === PROBE &&
          best.entries.length === PROBE &&
          farther(entries.at(-1)!, best.entries.at(-1)!))
      )
        best = { prefix, entries }
    }
    primary = best!.prefix
    chunk = best!.entries
    asked = PROBE
  }
  const others = s.prefixes.filter((p) => p !== primary)
  const txs: TxSearchHit[] = []
  for (;;) {
    if (chunk === undefined) {
      asked = Math.min(CHUNK, Math.floor((SEARCH_LIMITS.maxKeysRead - used) / (1 + others.length)))
      if (asked < 1) return { txs, next: after && cursorOf(after.height, after.index) }
      chunk = await read(primary, asked)
      used += Math.max(1, chunk.length)
    }
    let found: (Uint8Array | undefined)[] = []
    if (others.length > 0 && chunk.length > 0) {
      found = await kv.getMany(chunk.flatMap((e) => others.map((p) => withPos(p, e.height, e.index))))
      used += found.length
    }
    for (let j = 0; j < chunk.length; j++) {
      const e = chunk[j]!
      let all = true
      for (let o = 0; o < others.length && all; o++) all = found[j * others.length + o] !== undefined
      if (!all) continue
      txs.push({ hash: e.hash, height: e.height, index: e.index })
      if (txs.length === s.limit) {
        // The range is known to end here when this was the last entry of a short read.
        const end = j === chunk.length - 1 && chunk.length < asked
        return end ? { txs } : { txs, next: cursorOf(e.height, e.index) }
      }
    }
    if (chunk.length < asked) return { txs }
    const last = chunk.at(-1)!
    after = { height: last.height, index: last.index }
    chunk = undefined
  }
}
