import { type Value, decodeStrict, encode } from '../codec/msgpack.ts'
import { utf8 } from '../bytes/index.ts'

/** Committed state as the runtime sees it: synchronous reads of raw bytes by full key. */
export interface StateReader {
  get(key: Uint8Array): Uint8Array | undefined
}

const DELETED = Symbol('deleted')

/**
 * Maps and arrays are frozen (deeply) when written, so a handler that edits a value after writing it,
 * or edits what it read back from this block, throws (and its tx fails) instead of changing state
 * behind the layer's back: a failed tx must leave nothing. Byte arrays cannot be frozen and are
 * treated as immutable by convention. Values decoded from committed state are fresh on every read.
 */
function freeze(v: Value): Value {
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array) && !Object.isFrozen(v)) {
    Object.freeze(v)
    for (const x of Array.isArray(v) ? v : Object.values(v)) freeze(x)
  }
  return v
}

/**
 * An upper bound of a value's encoded size, without encoding it (the limits are checked on every
 * write and event, so they must be cheap).
 */
export function sizeBound(v: Value, depth = 0): number {
  if (v === null || typeof v === 'boolean') return 1
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new TypeError(`state and events hold safe integers only, got ${v}`)
    return 9
  }
  if (typeof v === 'string') return 5 + 3 * v.length
  if (v instanceof Uint8Array) return 5 + v.length
  if (depth > 24) throw new TypeError('value nested too deeply')
  let n = 5
  if (Array.isArray(v)) for (const x of v) n += sizeBound(x, depth + 1)
  else if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    for (const k in v) n += 5 + 3 * k.length + sizeBound(v[k]!, depth + 1)
  } else throw new TypeError(`not a storable value: ${typeof v}`)
  return n
}

type Slot = Value | typeof DELETED

/**
 * A write layer over a parent layer or the committed state. Savepoints are child layers: `commit()`
 * folds them into the parent, dropping them discards every write made since. Values are kept decoded;
 * they are encoded once, when the block's writes are collected.
 */
export class Layer {
  private readonly slots = new Map<string, Slot>()
  private readonly parent: Layer | undefined
  private readonly base: StateReader
  /** Counters shared by a tx's layers, for the per-tx work limits. */
  readonly meter: Meter

  constructor(base: StateReader, parent?: Layer, meter?: Meter) {
    this.base = base
    this.parent = parent
    this.meter = meter ?? new Meter()
  }

  child(meter?: Meter): Layer {
    return new Layer(this.base, this, meter ?? this.meter)
  }

  get(key: string): Value | undefined {
    this.meter.read()
    for (let l: Layer | undefined = this; l; l = l.parent) {
      const v = l.slots.get(key)
      if (v !== undefined) return v === DELETED ? undefined : v
    }
    const raw = this.base.get(utf8.encode(key))
    return raw === undefined ? undefined : decodeStrict(raw, { maxBytes: raw.length, maxDepth: 32 })
  }

  set(key: string, value: Value): void {
    this.meter.write(key, value)
    this.slots.set(key, freeze(value))
  }

  delete(key: string): void {
    this.meter.write(key, null)
    this.slots.set(key, DELETED)
  }

  /** Folds this layer's writes into its parent. */
  commit(): void {
    if (!this.parent) throw new Error('invariant broken: commit of a root layer')
    for (const [k, v] of this.slots) this.parent.slots.set(k, v)
    this.slots.clear()
  }

  /** The writes of a root layer, as the store wants them: hex of the UTF-8 key -> encoded value or null. */
  collect(): Map<string, Uint8Array | null> {
    const out = new Map<string, Uint8Array | null>()
    const keys = [...this.slots.keys()].sort()
    for (const k of keys) {
      const v = this.slots.get(k)!
      out.set(Buffer.from(k, 'utf8').toString('hex'), v === DELETED ? null : encode(v))
    }
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
    if (++this.writes > this.limits.maxWrites)
      throw new ResourceLimitError(`more than ${this.limits.maxWrites} writes`)
    if (key.length > 512) throw new ResourceLimitError('state key longer than 512 characters')
    if (value !== null && sizeBound(value) > this.limits.maxValueBytes) {
      throw new ResourceLimitError(`value larger than ${this.limits.maxValueBytes} bytes`)
    }
  }

  event(data: Value): void {
    if (++this.events > this.limits.maxEvents)
      throw new ResourceLimitError(`more than ${this.limits.maxEvents} events`)
    if (sizeBound(data) > this.limits.maxEventBytes) {
      throw new ResourceLimitError(`event larger than ${this.limits.maxEventBytes} bytes`)
    }
  }
}
