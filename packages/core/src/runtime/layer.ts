import { type Value, decodeStrict, encode } from '../codec/msgpack.ts'
import { utf8 } from '../bytes/index.ts'

/**
 * The UTF-8 bytes of a state key, as a plain Uint8Array. Buffer.from writes short strings into Node's
 * shared pool, about twice as fast as TextEncoder's fresh ArrayBuffer per call (a reader only looks the
 * key up, it never keeps it).
 */
function keyBytes(key: string): Uint8Array {
  const b = Buffer.from(key, 'utf8')
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
}

/** Committed state as the runtime sees it: synchronous reads of raw bytes by full key. */
export interface StateReader {
  /** The committed value's bytes, as a copy the caller may keep (decoded byte arrays view it). */
  get(key: Uint8Array): Uint8Array | undefined
  /**
   * Committed entries whose key starts with `prefix` and is greater than `after`, in ascending byte
   * order, at most `limit`. Needed for `state.list`; a reader without it makes `list` fail the tx.
   */
  range?(prefix: Uint8Array, after: Uint8Array | undefined, limit: number): Iterable<[Uint8Array, Uint8Array]>
}

/** Byte order of the UTF-8 encodings of two strings (what the store sorts keys by). */
export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

const DELETED = Symbol('deleted')

// Keys are at most 512 characters (Meter.written), so at most 1,536 UTF-8 bytes: one scratch buffer
// serves every key, and the hex is read out of it at once (half the time of a Buffer per key).
const scratch = Buffer.allocUnsafe(4096)

/** Lowercase hex of the UTF-8 bytes of `key`. */
function keyHex(key: string): string {
  if (key.length * 3 > scratch.length) return Buffer.from(key, 'utf8').toString('hex')
  return scratch.toString('hex', 0, scratch.write(key, 0, 'utf8'))
}

/**
 * A copy of `v` as plain, deeply frozen data, and an upper bound of its encoded size. Each property is
 * read exactly once, so what was checked is what is stored (a getter cannot answer differently later);
 * byte arrays are copied (a written or emitted Uint8Array edited afterwards changes nothing); anything
 * that is not storable (floats, undefined, functions, class instances, symbols) throws a TypeError.
 */
export function snapshot(v: unknown): { value: Value; size: number } {
  // One size counter per call (not per node): a getter that snapshots something else meanwhile has its own.
  const acc = { size: 0 }
  const value = copyValue(v, 0, acc, true)
  return { value, size: acc.size }
}

/**
 * The same checks and copy as `snapshot`, not frozen: for copies that nothing but the runtime ever
 * sees (a layer's slots, which reads copy again) or that go straight to the caller as its own. Freezing
 * took about a third of the copy's time.
 */
export function privateCopy(v: unknown): { value: Value; size: number } {
  const acc = { size: 0 }
  const value = copyValue(v, 0, acc, false)
  return { value, size: acc.size }
}

function copyValue(v: unknown, depth: number, acc: { size: number }, freeze: boolean): Value {
  if (v === null || typeof v === 'boolean') {
    acc.size += 1
    return v
  }
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new TypeError(`state and events hold safe integers only, got ${v}`)
    acc.size += 9
    return v
  }
  if (typeof v === 'string') {
    acc.size += 5 + 3 * v.length
    return v
  }
  if (typeof v !== 'object') throw new TypeError(`not a storable value: ${typeof v}`)
  if (v instanceof Uint8Array) {
    acc.size += 5 + v.length
    return new Uint8Array(v)
  }
  if (depth > 24) throw new TypeError('value nested too deeply')
  acc.size += 5
  if (Array.isArray(v)) {
    const n = v.length
    const out: Value[] = new Array(n)
    for (let i = 0; i < n; i++) out[i] = copyValue(v[i], depth + 1, acc, freeze)
    return freeze ? (Object.freeze(out) as Value[]) : out
  }
  const proto = Object.getPrototypeOf(v)
  if (proto !== Object.prototype && proto !== null)
    throw new TypeError('not a storable value: a class instance')
  const out: Record<string, Value> = {}
  for (const k of Object.keys(v)) {
    acc.size += 5 + 3 * k.length
    out[k] = copyValue((v as Record<string, unknown>)[k], depth + 1, acc, freeze)
  }
  return freeze ? Object.freeze(out) : out
}

/** A fresh, mutable deep copy of a snapshot (what a handler gets when it reads a value of this block). */
export function thaw(v: Value): Value {
  if (v === null || typeof v !== 'object') return v
  if (v instanceof Uint8Array) return new Uint8Array(v)
  if (Array.isArray(v)) {
    const out: Value[] = new Array(v.length)
    for (let i = 0; i < v.length; i++) out[i] = thaw(v[i]!)
    return out
  }
  const out: Record<string, Value> = {}
  for (const k in v) out[k] = thaw(v[k]!)
  return out
}

/**
 * An upper bound of a value's encoded size, without encoding it (the limits are checked on every
 * write and event, so they must be cheap).
 */
export function sizeBound(v: Value): number {
  return privateCopy(v).size
}

type Slot = Value | typeof DELETED

/**
 * Decodes committed bytes. Decoded byte arrays may be views of `raw`, so a StateReader's `get` must
 * return bytes the caller owns (a copy, as the state tree's does): then nothing read aliases the store.
 */
function decodeOwn(raw: Uint8Array): Value {
  return decodeStrict(raw, { maxBytes: raw.length, maxDepth: 32 })
}

/**
 * A write layer over a parent layer or the committed state. Savepoints are child layers: `commit()`
 * folds them into the parent, dropping them discards every write made since. Values are kept decoded;
 * they are encoded once, when the block's writes are collected.
 */
export class Layer {
  private readonly slots = new Map<string, Slot>()
  private readonly parent: Layer | undefined
  private readonly base: StateReader
  /**
   * Committed values this layer tree decoded (DELETED: absent), shared by a root and its children. The
   * committed state does not change while a block executes, so each key is decoded once per block; no
   * cached value is ever handed out (readers get a copy).
   */
  private readonly committed: Map<string, Slot>
  /** Counters shared by a tx's layers, for the per-tx work limits. */
  readonly meter: Meter

  constructor(base: StateReader, parent?: Layer, meter?: Meter) {
    this.base = base
    this.parent = parent
    this.meter = meter ?? new Meter()
    this.committed = parent ? parent.committed : new Map()
  }

  child(meter?: Meter): Layer {
    return new Layer(this.base, this, meter ?? this.meter)
  }

  /**
   * The value of `key` as this tx sees it. Always the handler's own copy: edits to it change nothing
   * until it is written back (values of this block are copied out of their snapshot, committed values
   * out of the block's decoded cache).
   */
  get(key: string): Value | undefined {
    this.meter.read()
    const v = this.find(key)
    return v === DELETED ? undefined : thaw(v)
  }

  /** Whether `key` holds a value, as `get` would see it (one read), without copying the value. */
  has(key: string): boolean {
    this.meter.read()
    for (let l: Layer | undefined = this; l; l = l.parent) {
      const v = l.slots.get(key)
      if (v !== undefined) return v !== DELETED
    }
    return this.committedSlot(key) !== DELETED
  }

  /** The slot `key` resolves to in this layer, its parents, or committed state (never a copy). */
  private find(key: string): Slot {
    for (let l: Layer | undefined = this; l; l = l.parent) {
      const v = l.slots.get(key)
      if (v !== undefined) return v
    }
    return this.committedSlot(key)
  }

  /**
   * The committed value of `key`, decoded once per block (also for `has`: services check the same
   * role and revocation keys in every tx). Never handed out as is: `get` copies it.
   */
  private committedSlot(key: string): Slot {
    let c = this.committed.get(key)
    if (c === undefined) {
      const raw = this.base.get(keyBytes(key))
      c = raw === undefined ? DELETED : decodeOwn(raw)
      this.committed.set(key, c)
    }
    return c
  }

  /**
   * Stores a copy of `value` (later edits of `value` by the handler change nothing). Slots are never
   * handed out (reads copy them), so the copy need not be frozen.
   */
  set(key: string, value: Value): void {
    const snap = privateCopy(value)
    this.meter.written(key, snap.size)
    this.slots.set(key, snap.value)
  }

  delete(key: string): void {
    this.meter.write(key, null)
    this.slots.set(key, DELETED)
  }

  /**
   * Up to `limit` entries whose key starts with `prefix` and comes after `after`, in UTF-8 byte order:
   * committed entries overlaid with this block's writes and deletes. Each entry returned is one read.
   */
  list(prefix: string, after: string | undefined, limit: number): [string, Value][] {
    const overlay = new Map<string, Slot>()
    for (let l: Layer | undefined = this; l; l = l.parent) {
      for (const [k, v] of l.slots) {
        if (!overlay.has(k) && k.startsWith(prefix) && (after === undefined || compareUtf8(k, after) > 0))
          overlay.set(k, v)
      }
    }
    let deleted = 0
    for (const v of overlay.values()) if (v === DELETED) deleted++
    if (!this.base.range) throw new Error('state.list is not available on this state backend')
    const out = new Map<string, Value | typeof DELETED>()
    for (const [k, raw] of this.base.range(
      utf8.encode(prefix),
      after === undefined ? undefined : utf8.encode(after),
      limit + deleted,
    )) {
      out.set(utf8.decode(k), decodeOwn(raw))
    }
    for (const [k, v] of overlay) out.set(k, v === DELETED ? DELETED : thaw(v))
    const keys = [...out.keys()].sort(compareUtf8)
    const entries: [string, Value][] = []
    for (const k of keys) {
      if (entries.length === limit) break
      const v = out.get(k)!
      if (v !== DELETED) entries.push([k, v])
    }
    this.meter.readMany(Math.max(1, entries.length))
    return entries
  }

  /** Folds this layer's writes into its parent. */
  commit(): void {
    if (!this.parent) throw new Error('invariant broken: commit of a root layer')
    for (const [k, v] of this.slots) this.parent.slots.set(k, v)
    this.slots.clear()
  }

  /**
   * The writes of a root layer, as the store wants them: hex of the UTF-8 key -> encoded value or null,
   * in the order the keys were first written (deterministic: the same txs write in the same order on
   * every node; the store orders them itself, by path, so sorting them here was wasted work).
   */
  collect(): Map<string, Uint8Array | null> {
    const out = new Map<string, Uint8Array | null>()
    for (const [k, v] of this.slots) out.set(keyHex(k), v === DELETED ? null : encode(v))
    return out
  }
}

export interface WorkLimits {
  /** State reads per tx. */
  maxReads: number
  /** State writes per tx. */
  maxWrites: number
  /** Encoded size of one written value, bytes. */
  maxValueBytes: number
  /** Events per tx. */
  maxEvents: number
  /** Encoded size of one event's data, bytes. */
  maxEventBytes: number
  /** Depth of nested service calls. */
  maxCallDepth: number
}

export const DEFAULT_WORK_LIMITS: WorkLimits = {
  maxReads: 4096,
  maxWrites: 512,
  maxValueBytes: 64 * 1024,
  maxEvents: 64,
  maxEventBytes: 4096,
  maxCallDepth: 8,
}

export class ResourceLimitError extends Error {
  readonly what: string
  constructor(what: string) {
    super(`tx exceeded its work limit: ${what}`)
    this.what = what
  }
}

/** Counts a tx's work; throws ResourceLimitError past the limits (the tx fails with RESOURCE_LIMIT). */
export class Meter {
  reads = 0
  writes = 0
  events = 0
  readonly limits: WorkLimits

  constructor(limits: WorkLimits = DEFAULT_WORK_LIMITS) {
    this.limits = limits
  }

  read(): void {
    if (++this.reads > this.limits.maxReads)
      throw new ResourceLimitError(`more than ${this.limits.maxReads} reads`)
  }

  /** Also refuses what cannot be stored (floats, undefined, class instances): the tx fails, not the block. */
  write(key: string, value: Value): void {
    this.written(key, value === null ? 1 : privateCopy(value).size)
  }

  /** Counts a write whose value's size bound is known (see `snapshot`). */
  written(key: string, size: number): void {
    if (++this.writes > this.limits.maxWrites)
      throw new ResourceLimitError(`more than ${this.limits.maxWrites} writes`)
    if (key.length > 512) throw new ResourceLimitError('state key longer than 512 characters')
    if (size > this.limits.maxValueBytes) {
      throw new ResourceLimitError(`value larger than ${this.limits.maxValueBytes} bytes`)
    }
  }

  /** Counts an event and returns a snapshot of its data (what the tx result keeps). */
  event(data: Value): Value {
    if (++this.events > this.limits.maxEvents)
      throw new ResourceLimitError(`more than ${this.limits.maxEvents} events`)
    const snap = snapshot(data)
    if (snap.size > this.limits.maxEventBytes) {
      throw new ResourceLimitError(`event larger than ${this.limits.maxEventBytes} bytes`)
    }
    return snap.value
  }

  /** Counts `n` reads at once (prefix iteration: one per entry returned). */
  readMany(n: number): void {
    this.reads += n
    if (this.reads > this.limits.maxReads)
      throw new ResourceLimitError(`more than ${this.limits.maxReads} reads`)
  }
}
