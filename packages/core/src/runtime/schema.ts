import type { Value } from '../codec/msgpack.ts'
import { CityError } from '../errors/index.ts'

/**
 * Argument schemas: each method declares one, and the runtime parses the tx's args with it before the
 * handler runs, so handlers only ever see well-typed values. Failures are `BAD_ARGS` naming the field.
 *
 * @example
 * const args = s.object({ to: s.key(), amount: s.uint({ min: 1 }), memo: s.optional(s.string({ max: 140 })) })
 * type Args = Infer<typeof args> // { to: Uint8Array; amount: number; memo?: string }
 */
export interface Schema<T> {
  /** Parses `value` or throws CityError('BAD_ARGS') naming `path`. */
  parse(value: Value | undefined, path?: string): T
  /** A short human description for docs and errors ('uint', 'bytes(32)', ...). */
  readonly describe: string
  /**
   * Parses the text form used in URLs (RPC queries: decimal integers, hex bytes, true/false, plain
   * strings). Only scalar schemas have one; `s.object` of scalars parses a map of texts field by field.
   */
  readonly fromText?: (text: string, path?: string) => T
  /** The fields of an `s.object` schema. */
  readonly fields?: Readonly<Record<string, Schema<unknown>>>
}

export type Infer<S> = S extends Schema<infer T> ? T : never

function bad(path: string, expected: string): never {
  throw new CityError('BAD_ARGS', `${path}: expected ${expected}`, { field: path })
}

function schema<T>(
  describe: string,
  parse: (v: Value | undefined, path: string) => T,
  text?: (t: string, path: string) => Value | undefined,
): Schema<T> {
  const out: Schema<T> = { describe, parse: (v, path = 'args') => parse(v, path) }
  if (text) return { ...out, fromText: (t, path = 'args') => parse(text(t, path), path) }
  return out
}

const DECIMAL = /^(0|-?[1-9][0-9]{0,15})$/
const HEXTEXT = /^(?:[0-9a-fA-F]{2})*$/
const textInt = (t: string): Value | undefined => (DECIMAL.test(t) ? Number(t) : t)
const textBytes = (t: string): Value | undefined =>
  HEXTEXT.test(t) ? Uint8Array.from(Buffer.from(t, 'hex')) : t
const textBool = (t: string): Value | undefined => (t === 'true' ? true : t === 'false' ? false : t)
const textString = (t: string): Value | undefined => t

type Shape = Record<string, Schema<unknown>>
type OptionalKeys<S extends Shape> = {
  [K in keyof S]: S[K] extends Schema<infer T> ? (undefined extends T ? K : never) : never
}[keyof S]
type ObjectOf<S extends Shape> = { [K in Exclude<keyof S, OptionalKeys<S>>]: Infer<S[K]> } & {
  [K in OptionalKeys<S>]?: Infer<S[K]>
}

export const s = {
  /** A safe non-negative integer (amounts, heights, counts). */
  uint(opts: { min?: number; max?: number } = {}): Schema<number> {
    const min = opts.min ?? 0
    const max = opts.max ?? Number.MAX_SAFE_INTEGER
    return schema(
      `uint ${min}..${max}`,
      (v, p) =>
        typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max
          ? v
          : bad(p, `an integer in ${min}..${max}`),
      textInt,
    )
  },
  /** A safe signed integer. */
  int(): Schema<number> {
    return schema(
      'int',
      (v, p) => (typeof v === 'number' && Number.isSafeInteger(v) ? v : bad(p, 'an integer')),
      textInt,
    )
  },
  bool(): Schema<boolean> {
    return schema('bool', (v, p) => (typeof v === 'boolean' ? v : bad(p, 'a boolean')), textBool)
  },
  string(opts: { min?: number; max?: number; pattern?: RegExp } = {}): Schema<string> {
    const max = opts.max ?? 256
    const min = opts.min ?? 0
    return schema(
      `string(${min}..${max})`,
      (v, p) => {
        if (typeof v !== 'string' || v.length < min || v.length > max)
          return bad(p, `a string of ${min}..${max} characters`)
        if (opts.pattern && !opts.pattern.test(v)) return bad(p, `a string matching ${opts.pattern}`)
        return v
      },
      textString,
    )
  },
  /** Bytes of an exact length, or up to `max` bytes. */
  bytes(length?: number, opts: { max?: number } = {}): Schema<Uint8Array> {
    const max = opts.max ?? 1024
    return schema(
      length === undefined ? `bytes(<=${max})` : `bytes(${length})`,
      (v, p) => {
        if (!(v instanceof Uint8Array)) return bad(p, 'bytes')
        if (length !== undefined ? v.length !== length : v.length > max) {
          return bad(p, length !== undefined ? `${length} bytes` : `at most ${max} bytes`)
        }
        return v
      },
      textBytes,
    )
  },
  /** A 32-byte Ed25519 public key (signers, agencies, holders). */
  key(): Schema<Uint8Array> {
    return s.bytes(32)
  },
  /** A 32-byte hash or salted commitment. */
  hash(): Schema<Uint8Array> {
    return s.bytes(32)
  },
  literal<const T extends string>(...values: T[]): Schema<T> {
    return schema(
      values.join('|'),
      (v, p) =>
        typeof v === 'string' && (values as string[]).includes(v)
          ? (v as T)
          : bad(p, `one of ${values.join(', ')}`),
      textString,
    )
  },
  /**
   * A field that may be absent. `null` is a value, not an absence: it is refused unless the inner schema
   * takes it (`s.optional(s.nullable(x))` for "absent, null or x").
   */
  optional<T>(inner: Schema<T>): Schema<T | undefined> {
    const out = schema(`${inner.describe}?`, (v, p) => (v === undefined ? undefined : inner.parse(v, p)))
    const fromText = inner.fromText
    return fromText ? { ...out, fromText: (t, p) => fromText(t, p) } : out
  },
  /** `null` or a value of `inner`. */
  nullable<T>(inner: Schema<T>): Schema<T | null> {
    const out = schema(`${inner.describe}|null`, (v, p) => (v === null ? null : inner.parse(v, p)))
    const fromText = inner.fromText
    return fromText ? { ...out, fromText: (t, p) => (t === 'null' ? null : fromText(t, p)) } : out
  },
  /**
   * The first of `options` that accepts the value (list the most specific first). For maps, prefer
   * `s.variant`, whose errors name the failing field.
   */
  union<const O extends readonly Schema<unknown>[]>(...options: O): Schema<Infer<O[number]>> {
    const describe = options.map((o) => o.describe).join(' | ')
    return schema(describe, (v, p) => {
      for (const o of options) {
        try {
          return o.parse(v, p) as Infer<O[number]>
        } catch (err) {
          if (!(err instanceof CityError)) throw err
        }
      }
      return bad(p, describe)
    })
  },
  /** A tagged union of maps: field `tag` names the variant, whose object schema parses the whole map. */
  variant<const K extends string, const V extends Record<string, Shape>>(
    tag: K,
    variants: V,
  ): Schema<{ [T in keyof V]: { [_ in K]: T } & ObjectOf<V[T]> }[keyof V]> {
    const parsers: Record<string, Schema<unknown>> = {}
    for (const [name, shape] of Object.entries(variants)) {
      parsers[name] = s.object({ ...shape, [tag]: s.literal(name) })
    }
    const names = Object.keys(variants)
    return schema(`${tag}: ${names.join('|')}`, (v, p) => {
      const t =
        v !== null && typeof v === 'object' && !Array.isArray(v)
          ? (v as Record<string, Value>)[tag]
          : undefined
      if (typeof t !== 'string' || !Object.hasOwn(parsers, t))
        return bad(`${p}.${tag}`, `one of ${names.join(', ')}`)
      return parsers[t]!.parse(v, p) as any
    })
  },
  /** A map of string keys (checked by `key`) to values of `value`, at most `max` entries (default 64). */
  record<V>(key: Schema<string>, value: Schema<V>, opts: { max?: number } = {}): Schema<Record<string, V>> {
    const max = opts.max ?? 64
    return schema(`{[${key.describe}]: ${value.describe}}`, (v, p) => {
      if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array)
        return bad(p, 'a map')
      const keys = Object.keys(v)
      if (keys.length > max) return bad(p, `a map of at most ${max} entries`)
      const out: Record<string, V> = {}
      for (const k of keys) {
        key.parse(k, `${p}.${k}`)
        const parsed = value.parse((v as Record<string, Value>)[k], `${p}.${k}`)
        Object.defineProperty(out, k, { value: parsed, enumerable: true, writable: true, configurable: true })
      }
      return out
    })
  },
  /** A deadline: `{ height?, time? }` with at least one (see `deadlinePassed`); time in ms since the epoch. */
  deadline(): Schema<{ height?: number; time?: number }> {
    const inner = s.object({ height: s.optional(s.uint()), time: s.optional(s.uint()) })
    return schema('deadline', (v, p) => {
      const d = inner.parse(v, p)
      return d.height === undefined && d.time === undefined ? bad(p, 'a deadline with a height or a time') : d
    })
  },
  array<T>(item: Schema<T>, opts: { min?: number; max?: number } = {}): Schema<T[]> {
    const max = opts.max ?? 256
    const min = opts.min ?? 0
    return schema(`${item.describe}[${min}..${max}]`, (v, p) => {
      if (!Array.isArray(v) || v.length < min || v.length > max)
        return bad(p, `a list of ${min}..${max} items`)
      return v.map((x, i) => item.parse(x, `${p}[${i}]`))
    })
  },
  /** A map with exactly the given fields (unknown fields are refused, so args have one meaning). */
  object<S extends Shape>(shape: S): Schema<ObjectOf<S>> {
    const keys = Object.keys(shape)
    const out = schema(`{${keys.join(',')}}`, (v, p) => {
      if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array)
        return bad(p, 'a map')
      for (const k of Object.keys(v)) if (!Object.hasOwn(shape, k)) bad(`${p}.${k}`, 'no such field')
      const out: Record<string, unknown> = {}
      for (const k of keys) {
        const parsed = shape[k]!.parse((v as Record<string, Value>)[k], `${p}.${k}`)
        if (parsed !== undefined) out[k] = parsed
      }
      return out as ObjectOf<S>
    })
    return { ...out, fields: shape }
  },
  /** Any value (use sparingly: prefer a precise schema). */
  any(): Schema<Value> {
    return schema('any', (v, p) => (v === undefined ? bad(p, 'a value') : v))
  },
}

/**
 * Parses a map of URL texts (RPC query parameters) with an object schema whose fields are scalars.
 * Throws BAD_ARGS naming the field, like `parse`.
 */
export function parseTextArgs<T>(schemaOf: Schema<T>, texts: Record<string, string>): T {
  const fields = schemaOf.fields ?? {}
  const values: Record<string, Value> = {}
  for (const [k, t] of Object.entries(texts)) {
    const field = fields[k]
    if (!field) throw new CityError('BAD_ARGS', `args.${k}: no such field`, { field: `args.${k}` })
    if (!field.fromText)
      throw new CityError('BAD_ARGS', `args.${k}: cannot be given as text`, { field: `args.${k}` })
    values[k] = field.fromText(t, `args.${k}`) as Value
  }
  return schemaOf.parse(values)
}
