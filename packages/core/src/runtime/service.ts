import type { Value } from '../codec/msgpack.ts'
import { CityError } from '../errors/index.ts'
import type { Schema } from './schema.ts'

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

/** A key-value view of one service's namespace. Values are msgpack `Value`s; reads see earlier writes of the same block. */
export interface StateView {
  get<T extends Value = Value>(key: string): T | undefined
  has(key: string): boolean
  set(key: string, value: Value): void
  delete(key: string): void
}

/** Read-only view (queries, authorization rules). */
export interface ReadonlyStateView {
  get<T extends Value = Value>(key: string): T | undefined
  has(key: string): boolean
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
}

/** Context for genesis initialisation and end-of-block hooks: no signer. */
export interface BlockContext {
  readonly height: number
  readonly time: number
  readonly state: StateView
  emit(name: string, data: Value): void
  call<T extends Value | void = Value>(service: string, fn: string, args: Value): T
}

/** Context for read-only queries. */
export interface QueryContext {
  readonly height: number
  readonly state: ReadonlyStateView
  /** Reads another service's query (declared dependencies only). */
  query<T extends Value = Value>(service: string, name: string, args: Value): T
}

export interface MethodDef<A = any> {
  args: Schema<A>
  /**
   * Who may call. Return false (or throw a ServiceError) to refuse with UNAUTHORIZED. Runs before the
   * handler with a read-only view; omit only for methods anyone may call.
   */
  auth?: (ctx: TxContext & { readonly state: ReadonlyStateView }, args: A) => boolean | void
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
  /** Semantic version; governance upgrades compare it. */
  version: string
  /** Services this one calls; the runtime refuses cycles and unknown names. */
  dependencies?: string[]
  methods: Record<string, MethodDef>
  queries?: Record<string, QueryDef>
  exports?: Record<string, ExportFn>
  /** Runs once at genesis with the service's section of the genesis config. */
  genesis?: (ctx: BlockContext, config: Value | undefined) => void
  /** Runs after the block's last transaction (deadlines, expiries). Errors here are bugs and halt the node. */
  endBlock?: (ctx: BlockContext) => void
}

/** Identity function that gives a service definition its types. */
export function defineService<const D extends ServiceDefinition>(def: D): D {
  return def
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
