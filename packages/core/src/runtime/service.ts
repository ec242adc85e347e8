import type { Value } from '../codec/msgpack.ts'
import { CityError } from '../errors/index.ts'
import type { Infer, Schema } from './schema.ts'

/**
 * The service (plugin) API: what a service author writes against. Node internals never leak in here.
 * A service is a deterministic state machine over its own key-value namespace; handlers get a context
 * with no clock, randomness or I/O, and amounts are integers.
 *
 * @example
 * export const counter = defineService({
 *   name: 'counter',
 *   version: '1.0.0',
 *   methods: {
 *     add: {
 *       args: s.object({ by: s.uint({ min: 1, max: 100 }) }),
 *       handler(ctx, { by }) {
 *         const n = (ctx.state.get<number>('n') ?? 0) + by
 *         ctx.state.set('n', n)
 *         ctx.emit('added', { by, n })
 *       },
 *     },
 *   },
 *   queries: { value: { args: s.object({}), handler: (q) => q.state.get<number>('n') ?? 0 } },
 * })
 */

/** One entry of an ordered prefix listing: the key (without the service's namespace) and its value. */
export interface StateEntry<T extends Value = Value> {
  key: string
  value: T
}

/** Options of `StateView.list`. */
export interface ListOptions {
  /** Start strictly after this key (the `key` of the last entry of the previous page). */
  after?: string
  /** At most this many entries (default and maximum: 256). Each entry counts as one read. */
  limit?: number
}

/** A page of `StateView.list`: entries in key order; `next` is set when more entries may follow. */
export interface StatePage<T extends Value = Value> {
  entries: StateEntry<T>[]
  /** Pass as `after` to read the next page; undefined when this page reached the end of the prefix. */
  next?: string
}

/**
 * A key-value view of one service's namespace. Values are msgpack `Value`s; reads see earlier writes
 * of the same block. A value read is the reader's own copy (editing it changes nothing until it is
 * written), and `set` stores a copy (editing the object afterwards changes nothing).
 */
export interface StateView extends ReadonlyStateView {
  set(key: string, value: Value): void
  delete(key: string): void
}

/** Read-only view (queries, authorization rules). */
export interface ReadonlyStateView {
  get<T extends Value = Value>(key: string): T | undefined
  has(key: string): boolean
  /**
   * The entries whose key starts with `prefix`, in ascending order of their UTF-8 bytes, including
   * this block's earlier writes and without its deletes; at most `limit` (<= 256) per call.
   */
  list<T extends Value = Value>(prefix: string, opts?: ListOptions): StatePage<T>
}

/** What a method handler sees. Everything here is deterministic: the same block gives the same answers. */
export interface TxContext {
  /** Public key of the transaction's signer. */
  readonly signer: Uint8Array
  /** The signer's key as lowercase hex (handy as a state key part). */
  readonly signerHex: string
  /** Height of the block being executed. */
  readonly height: number
  /** Block time in ms since the epoch, as the proposer stamped it (same on every node). */
  readonly time: number
  /** Hash of the transaction being executed. */
  readonly txHash: Uint8Array
  /** For calls from another service: that service's name; undefined for a transaction's own call. */
  readonly caller: string | undefined
  /** This service's namespace. */
  readonly state: StateView
  /** Records an event (`name`, `data`) in the tx result; dropped if the tx fails. */
  emit(name: string, data: Value): void
  /**
   * Calls an exported function of a declared dependency. The callee runs with the same signer, height
   * and time, `caller` set to this service, and its own namespace. Its errors propagate (and fail the tx
   * unless caught).
   */
  call<T extends Value | void = Value>(service: string, fn: string, args: Value): T
  /**
   * Only in the transactions of the service genesis names `_sys.upgradeAuthority` (the governance
   * service): from block `height` (above this one) on, `service` runs `version`. A node whose code has
   * another version of it stops at that block, saying what to install (see the runtime's versions.ts).
   * Throws (failing the tx) for an unknown service, a bad version or height, or another upgrade of the
   * service already scheduled at another height.
   */
  scheduleUpgrade?(service: string, version: string, height: number): void
  /**
   * Only in the transactions of the service genesis names `_sys.validatorAuthority` (the governance
   * service): from `height` (above this block and the last change's height) on, `keys` (32-byte
   * public keys, distinct) is the validator set; consensus switches at its first checkpoint boundary
   * from there (see the runtime's validators.ts). Throws (failing the tx) `BAD_VALIDATORS` otherwise.
   */
  scheduleValidators?(keys: Uint8Array[], height: number): void
}

/** Context for genesis initialisation, migrations and end-of-block hooks: no signer. */
export interface BlockContext {
  readonly height: number
  readonly time: number
  readonly state: StateView
  emit(name: string, data: Value): void
  call<T extends Value | void = Value>(service: string, fn: string, args: Value): T
  /**
   * Runs `fn` in a savepoint: if it throws (anything but a work-limit error), its writes and events are
   * dropped, an `endBlockItemFailed` event names `item`, the runtime's item-failure counter goes up and
   * `attempt` returns false, so a hook can move past a poison item of its queue. True when `fn` succeeded.
   */
  attempt(item: string, fn: () => void): boolean
}

/** Context for read-only queries. */
export interface QueryContext {
  readonly height: number
  readonly state: ReadonlyStateView
  /** Reads another service's query (declared dependencies only). */
  query<T extends Value = Value>(service: string, name: string, args: Value): T
}

/** The context of an authorization rule: the tx context with a read-only state view. */
export type AuthContext = TxContext & { readonly state: ReadonlyStateView }

export interface MethodDef<A = any> {
  args: Schema<A>
  /**
   * Who may call. Return false (or throw a ServiceError) to refuse with UNAUTHORIZED. Runs before the
   * handler with a read-only view; omit only for methods anyone may call.
   */
  auth?: (ctx: AuthContext, args: A) => boolean | void
  handler: (ctx: TxContext, args: A) => Value | void
  /** One line for the generated reference docs. */
  doc?: string
}

export interface QueryDef<A = any> {
  args: Schema<A>
  handler: (ctx: QueryContext, args: A) => Value
  doc?: string
}

/** A function other services may call through `ctx.call`. `ctx.caller` says who calls. */
export type ExportFn = (ctx: TxContext, args: any) => Value | void

export interface ServiceDefinition {
  /** Lowercase name, the namespace of its state and the `service` field of its transactions. */
  name: string
  /**
   * Version of this code. Chain state records the version each service runs; a node whose code has
   * another version refuses to execute (see `migrate` and the runtime's upgrade schedule).
   */
  version: string
  /** Services this one calls; the runtime refuses cycles and unknown names. */
  dependencies?: string[]
  methods: Record<string, MethodDef>
  queries?: Record<string, QueryDef>
  exports?: Record<string, ExportFn>
  /** Runs once at genesis with the service's section of the genesis config. */
  genesis?: (ctx: BlockContext, config: Value | undefined) => void
  /**
   * Runs after the block's last transaction (deadlines, expiries). A hook that throws has its writes
   * dropped and its failure recorded (`endBlockFailed` event, counter); after `maxHookFailures` failures
   * in a row it is halted for operators (`endBlockHalted`) until a new version of the service activates.
   * Use `ctx.attempt` per queue item so that one poison item cannot fail the whole hook.
   */
  endBlock?: (ctx: BlockContext) => void
  /**
   * Runs at the start of the block where this version activates (a scheduled upgrade), with the version
   * the chain ran before. Throwing stops the chain at that height (MIGRATION_FAILED) on every node.
   */
  migrate?: (ctx: BlockContext, fromVersion: string | undefined) => void
}

/** A method whose handler (and auth rule) get the argument type of its schema. */
export interface MethodSpec<S extends Schema<any>> {
  args: S
  auth?: (ctx: AuthContext, args: Infer<S>) => boolean | void
  handler: (ctx: TxContext, args: Infer<S>) => Value | void
  doc?: string
}

/** A query whose handler gets the argument type of its schema. */
export interface QuerySpec<S extends Schema<any>> {
  args: S
  handler: (ctx: QueryContext, args: Infer<S>) => Value
  doc?: string
}

type Schemas = Record<string, Schema<any>>

/** What `defineService` takes: the handlers' argument types come from the schemas. */
export type ServiceSpec<M extends Schemas, Q extends Schemas, E extends Record<string, ExportFn>> = Omit<
  ServiceDefinition,
  'methods' | 'queries' | 'exports'
> & {
  methods: { [K in keyof M]: MethodSpec<M[K]> }
  queries?: { [K in keyof Q]: QuerySpec<Q[K]> }
  exports?: E & { [K in keyof E]: ExportFn }
}

/** A service as `defineService` returns it: a ServiceDefinition that keeps its exports' types. */
export type TypedService<E extends Record<string, ExportFn>> = Omit<ServiceDefinition, 'exports'> & {
  exports?: E
}

/**
 * Gives a service definition its types: each handler's and auth rule's argument type is inferred from
 * its `args` schema (a misspelt argument is a type error), and the exports keep their types for
 * `callExport`.
 */
export function defineService<
  const M extends Schemas,
  const Q extends Schemas = Record<never, never>,
  const E extends Record<string, ExportFn> = Record<never, never>,
>(def: ServiceSpec<M, Q, E>): TypedService<E> {
  return def as unknown as TypedService<E>
}

/** One method, typed from its schema (for methods written outside the `defineService` literal). */
export function method<S extends Schema<any>>(m: MethodSpec<S>): MethodSpec<S> {
  return m
}

/** One query, typed from its schema. */
export function query<S extends Schema<any>>(q: QuerySpec<S>): QuerySpec<S> {
  return q
}

/** An export with a schema: raw args are parsed (BAD_ARGS otherwise) and the handler gets their type. */
export type TypedExport<A, R extends Value | void> = ((ctx: TxContext, args: A) => R) & {
  readonly __args?: A
}

/**
 * Defines an export whose args are parsed with `schema` before `fn` runs; callers using
 * `callExport` get the argument and result types.
 *
 * @example
 * exports: { balance: defineExport(s.object({ owner: s.key() }), (ctx, a) => ctx.state.get<number>(hex(a.owner)) ?? 0) }
 */
export function defineExport<A, R extends Value | void>(
  schema: Schema<A>,
  fn: (ctx: TxContext, args: A) => R,
): TypedExport<A, R> {
  return (ctx: TxContext, raw: A) => fn(ctx, schema.parse(raw as Value, 'args'))
}

type ArgsOf<F> = F extends (ctx: TxContext, args: infer A) => unknown ? A : never

/**
 * A typed cross-service call: `callExport<typeof token>(ctx, 'token', 'balance', { asset, owner })`
 * checks the function name, the argument type and the result type against the callee's exports (a
 * type-only import of the callee's definition is enough: `import type { token } from './token.ts'`).
 */
export function callExport<
  S extends { exports?: Record<string, ExportFn> },
  K extends keyof NonNullable<S['exports']> & string = keyof NonNullable<S['exports']> & string,
>(
  ctx: { call<T extends Value | void>(service: string, fn: string, args: Value): T },
  service: string,
  fn: K,
  args: ArgsOf<NonNullable<S['exports']>[K]>,
): ReturnType<NonNullable<S['exports']>[K]> {
  return ctx.call(service, fn, args as Value) as ReturnType<NonNullable<S['exports']>[K]>
}

/**
 * A deadline by height, by block time (ms since the epoch, as `ctx.time`), or both (whichever comes
 * first). Block time is the proposer's stamp, bounded by the node's block-time rule, so a time deadline
 * is as exact as that rule (see the node README).
 */
export interface Deadline {
  height?: number
  time?: number
}

/** True once the block of `ctx` is at or past the deadline (height reached or block time reached). */
export function deadlinePassed(
  ctx: { readonly height: number; readonly time: number },
  d: Deadline,
): boolean {
  return (d.height !== undefined && ctx.height >= d.height) || (d.time !== undefined && ctx.time >= d.time)
}

/**
 * The error a handler throws to refuse a transaction. The tx is included as failed with this `code`,
 * and all its writes and events are discarded. Any other exception is treated the same way but logged
 * as a bug (code 'INTERNAL').
 */
export class ServiceError extends CityError {
  constructor(code: string, message: string, details: Record<string, unknown> = {}) {
    super(code, message, details)
    this.name = 'ServiceError'
  }
}

/** Throws a ServiceError unless `cond` holds. */
export function ensure(
  cond: unknown,
  code: string,
  message: string,
  details?: Record<string, unknown>,
): asserts cond {
  if (!cond) throw new ServiceError(code, message, details)
}
