import { toHex, utf8 } from '../bytes/index.ts'
import { type Value, decodeStrict } from '../codec/msgpack.ts'
import type { Tx } from '../codec/tx.ts'
import { CityError } from '../errors/index.ts'
import {
  Layer,
  Meter,
  ResourceLimitError,
  type StateReader,
  type WorkLimits,
  DEFAULT_WORK_LIMITS,
} from './layer.ts'
import { parseTextArgs } from './schema.ts'
import type { BlockContext, QueryContext, ServiceDefinition, StateView, TxContext } from './service.ts'

/** One event a service emitted. */
export interface ServiceEvent {
  service: string
  name: string
  data: Value
}

/** The outcome of one transaction. `code` is null on success. */
export interface TxResult {
  hash: Uint8Array
  code: string | null
  message?: string
  events: ServiceEvent[]
}

export interface BlockExecution {
  /** State writes of the whole block: hex of the full key -> encoded value, or null for a delete. */
  writes: Map<string, Uint8Array | null>
  results: TxResult[]
  /** Events of end-of-block hooks. */
  blockEvents: ServiceEvent[]
}

export interface RuntimeOptions {
  services: ServiceDefinition[]
  limits?: Partial<WorkLimits>
  /** Told about handler bugs (exceptions that are not ServiceErrors). */
  onBug?: (info: { service: string; method: string; error: unknown }) => void
}

export interface QueryResult {
  value: Value
  /** Full state keys the query read (the node proves them against the state root). */
  keys: Uint8Array[]
}

/** Keys of the runtime's own namespace. Services cannot be named `_sys`. */
const nonceKey = (signerHex: string) => `_sys/nonce/${signerHex}`

/**
 * The service runtime: executes blocks of transactions against services, deterministically.
 *
 * @example
 * const runtime = createRuntime({ services: [identity, token] })
 * const { writes, results } = runtime.executeBlock(state, { height: 7, time, txs })
 */
export interface Runtime {
  readonly services: ReadonlyMap<string, ServiceDefinition>
  genesis(state: StateReader, config: Record<string, Value | undefined>, time: number): BlockExecution
  executeBlock(
    state: StateReader,
    block: { height: number; time: number; chainId?: string; txs: Tx[] },
  ): BlockExecution
  /** Mempool admission: refuses (throws CityError) what would certainly fail; never writes. */
  checkTx(state: StateReader, tx: Tx): void
  /** The last nonce committed for a signer (0 if none). */
  committedNonce(state: StateReader, signer: Uint8Array): number
  query(
    state: StateReader,
    height: number,
    service: string,
    name: string,
    args: Value | Record<string, string>,
    text?: boolean,
  ): QueryResult
}

export function createRuntime(opts: RuntimeOptions): Runtime {
  const limits: WorkLimits = { ...DEFAULT_WORK_LIMITS, ...opts.limits }
  const services = new Map<string, ServiceDefinition>()
  for (const svc of opts.services) {
    if (services.has(svc.name)) throw new CityError('BAD_SERVICE', `service ${svc.name} registered twice`)
    if (svc.name.startsWith('_')) throw new CityError('BAD_SERVICE', `service name ${svc.name} is reserved`)
    services.set(svc.name, svc)
  }
  const order = dependencyOrder(services)

  function nsView(layer: Layer, service: string): StateView {
    const prefix = `${service}/`
    return {
      get: <T extends Value = Value>(key: string) => layer.get(prefix + key) as T | undefined,
      has: (key) => layer.get(prefix + key) !== undefined,
      set: (key, value) => {
        if (value === undefined)
          throw new TypeError(`state.set(${key}): undefined is not a value (use delete)`)
        layer.set(prefix + key, value)
      },
      delete: (key) => layer.delete(prefix + key),
    }
  }

  interface Frame {
    layer: Layer
    events: ServiceEvent[]
    signer: Uint8Array
    signerHex: string
    height: number
    time: number
    txHash: Uint8Array
    depth: number
  }

  function txContext(f: Frame, service: string, caller: string | undefined): TxContext {
    const svc = services.get(service)!
    return {
      signer: f.signer,
      signerHex: f.signerHex,
      height: f.height,
      time: f.time,
      txHash: f.txHash,
      caller,
      state: nsView(f.layer, service),
      emit: (name, data) => {
        f.layer.meter.event(data)
        f.events.push({ service, name, data })
      },
      call: <T extends Value | void = Value>(target: string, fn: string, args: Value): T =>
        callExport(f, svc, target, fn, args) as T,
    }
  }

  function callExport(
    f: Frame,
    from: ServiceDefinition,
    target: string,
    fn: string,
    args: Value,
  ): Value | void {
    if (!from.dependencies?.includes(target)) {
      throw new Error(`service ${from.name} calls ${target}.${fn} but does not declare it as a dependency`)
    }
    const exp = services.get(target)?.exports?.[fn]
    if (!exp) throw new Error(`service ${target} has no export ${fn} (called by ${from.name})`)
    if (f.depth >= limits.maxCallDepth) throw new ResourceLimitError(`call depth over ${limits.maxCallDepth}`)
    // A savepoint per call: a callee that throws leaves nothing behind even if the caller catches.
    const inner: Frame = { ...f, layer: f.layer.child(), events: [], depth: f.depth + 1 }
    const out = exp(txContext(inner, target, from.name), args)
    inner.layer.commit()
    f.events.push(...inner.events)
    return out
  }

  function blockContext(
    layer: Layer,
    service: string,
    height: number,
    time: number,
    events: ServiceEvent[],
  ): BlockContext {
    const svc = services.get(service)!
    const frame: Frame = {
      layer,
      events,
      signer: new Uint8Array(32),
      signerHex: '',
      height,
      time,
      txHash: new Uint8Array(32),
      depth: 0,
    }
    return {
      height,
      time,
      state: nsView(layer, service),
      emit: (name, data) => {
        layer.meter.event(data)
        events.push({ service, name, data })
      },
      call: <T extends Value | void = Value>(target: string, fn: string, args: Value): T =>
        callExport(frame, svc, target, fn, args) as T,
    }
  }

  function committedNonce(state: StateReader | Layer, signer: Uint8Array): number {
    const key = nonceKey(toHex(signer))
    if (state instanceof Layer) {
      const v = state.get(key)
      return typeof v === 'number' ? v : 0
    }
    // Mempool admission asks this for every tx: read the raw value directly, no layer.
    const raw = state.get(utf8.encode(key))
    if (raw === undefined) return 0
    const v = decodeStrict(raw, { maxBytes: 16, maxDepth: 1 })
    return typeof v === 'number' ? v : 0
  }

  /** Runs one tx on `block` layer; returns its result. Never throws for anything the tx did. */
  function runTx(block: Layer, tx: Tx, height: number, time: number, chainId: string | undefined): TxResult {
    const { body } = tx
    const fail = (code: string, message: string): TxResult => ({ hash: tx.hash, code, message, events: [] })
    if (chainId !== undefined && body.chainId !== chainId)
      return fail('WRONG_CHAIN', `tx is for chain ${body.chainId}`)
    if (body.expiry !== 0 && height > body.expiry)
      return fail('TX_EXPIRED', `tx expired at height ${body.expiry}`)
    const signerHex = toHex(body.signer)
    const last = committedNonce(block, body.signer)
    if (body.nonce <= last) return fail('NONCE_TOO_LOW', `nonce ${body.nonce} <= last used ${last}`)
    // The nonce is consumed whether or not the service accepts the tx.
    block.set(nonceKey(signerHex), body.nonce)
    const svc = services.get(body.service)
    if (!svc) return fail('UNKNOWN_SERVICE', `no service ${body.service}`)
    const method = Object.hasOwn(svc.methods, body.method) ? svc.methods[body.method] : undefined
    if (!method) return fail('UNKNOWN_METHOD', `service ${body.service} has no method ${body.method}`)
    const layer = block.child(new Meter(limits))
    const frame: Frame = {
      layer,
      events: [],
      signer: body.signer,
      signerHex,
      height,
      time,
      txHash: tx.hash,
      depth: 0,
    }
    try {
      const args = method.args.parse(body.args)
      const ctx = txContext(frame, svc.name, undefined)
      if (method.auth && method.auth({ ...ctx, state: readOnly(ctx.state) }, args) === false) {
        return fail('UNAUTHORIZED', `signer may not call ${svc.name}.${body.method}`)
      }
      method.handler(ctx, args)
    } catch (err) {
      if (err instanceof ResourceLimitError) return fail('RESOURCE_LIMIT', err.message)
      if (err instanceof CityError) return fail(err.code, err.message)
      opts.onBug?.({ service: svc.name, method: body.method, error: err })
      return fail(
        'INTERNAL',
        `service ${svc.name}.${body.method} failed: ${(err as Error)?.message ?? String(err)}`,
      )
    }
    layer.commit()
    return { hash: tx.hash, code: null, events: frame.events }
  }

  function runEndBlock(block: Layer, height: number, time: number): ServiceEvent[] {
    const events: ServiceEvent[] = []
    for (const name of order) {
      const svc = services.get(name)!
      if (!svc.endBlock) continue
      const layer = block.child(
        new Meter({
          ...limits,
          maxReads: limits.maxReads * 16,
          maxWrites: limits.maxWrites * 16,
          maxEvents: limits.maxEvents * 16,
        }),
      )
      const mine: ServiceEvent[] = []
      try {
        svc.endBlock(blockContext(layer, name, height, time, mine))
        layer.commit()
        events.push(...mine)
      } catch (err) {
        // Deterministic on every node: the hook's writes are dropped and the failure is on record.
        opts.onBug?.({ service: name, method: 'endBlock', error: err })
        events.push({
          service: name,
          name: 'endBlockFailed',
          data: { message: String((err as Error)?.message ?? err) },
        })
      }
    }
    return events
  }

  return {
    services,
    genesis(state, config, time) {
      const root = new Layer(state)
      const blockEvents: ServiceEvent[] = []
      for (const name of order) {
        const svc = services.get(name)!
        if (!svc.genesis) continue
        const layer = root.child(
          new Meter({
            ...limits,
            maxReads: Number.MAX_SAFE_INTEGER,
            maxWrites: Number.MAX_SAFE_INTEGER,
            maxEvents: Number.MAX_SAFE_INTEGER,
          }),
        )
        try {
          guardDeterminism(() => svc.genesis!(blockContext(layer, name, 0, time, blockEvents), config[name]))
        } catch (err) {
          throw new CityError(
            'GENESIS_FAILED',
            `genesis of ${name} failed: ${(err as Error)?.message ?? err}`,
            { service: name },
          )
        }
        layer.commit()
      }
      return { writes: root.collect(), results: [], blockEvents }
    },
    executeBlock(state, { height, time, chainId, txs }) {
      // The block's own layer holds every tx's nonce write: the per-tx limits apply to each tx's child
      // layer, not to the block (a block of more than 512 txs used to throw out of executeBlock).
      const root = new Layer(
        state,
        undefined,
        new Meter({ ...limits, maxReads: Infinity, maxWrites: Infinity }),
      )
      return guardDeterminism(() => {
        const results = txs.map((tx) => runTx(root, tx, height, time, chainId))
        const blockEvents = runEndBlock(root, height, time)
        return { writes: root.collect(), results, blockEvents }
      })
    },
    checkTx(state, tx) {
      const { body } = tx
      const svc = services.get(body.service)
      if (!svc) throw new CityError('UNKNOWN_SERVICE', `no service ${body.service}`)
      const method = Object.hasOwn(svc.methods, body.method) ? svc.methods[body.method] : undefined
      if (!method)
        throw new CityError('UNKNOWN_METHOD', `service ${body.service} has no method ${body.method}`)
      method.args.parse(body.args)
      const last = committedNonce(state, body.signer)
      if (body.nonce <= last) throw new CityError('NONCE_TOO_LOW', `nonce ${body.nonce} <= last used ${last}`)
    },
    committedNonce: (state, signer) => committedNonce(state, signer),
    query(state, height, service, name, args, text = false) {
      const svc = services.get(service)
      if (!svc) throw new CityError('UNKNOWN_SERVICE', `no service ${service}`)
      const q = svc.queries && Object.hasOwn(svc.queries, name) ? svc.queries[name] : undefined
      if (!q) throw new CityError('UNKNOWN_QUERY', `service ${service} has no query ${name}`)
      const read = new Set<string>()
      const tracking: StateReader = {
        get(key) {
          read.add(Buffer.from(key).toString('utf8'))
          return state.get(key)
        },
      }
      const layer = new Layer(tracking, undefined, new Meter({ ...limits, maxReads: limits.maxReads * 4 }))
      const ctx = (svcName: string): QueryContext => ({
        height,
        state: {
          get: <T extends Value = Value>(k: string) => layer.get(`${svcName}/${k}`) as T | undefined,
          has: (k) => layer.get(`${svcName}/${k}`) !== undefined,
        },
        query: <T extends Value = Value>(target: string, qname: string, qargs: Value): T => {
          if (!services.get(svcName)?.dependencies?.includes(target))
            throw new CityError('BAD_QUERY', `${svcName} does not depend on ${target}`)
          const tq = services.get(target)?.queries?.[qname]
          if (!tq) throw new CityError('UNKNOWN_QUERY', `service ${target} has no query ${qname}`)
          return tq.handler(ctx(target), tq.args.parse(qargs)) as T
        },
      })
      const parsed = text
        ? parseTextArgs(q.args, args as Record<string, string>)
        : q.args.parse(args as Value)
      let value: Value
      try {
        value = guardDeterminism(() => q.handler(ctx(service), parsed))
      } catch (err) {
        if (err instanceof CityError) throw err
        if (err instanceof ResourceLimitError) throw new CityError('RESOURCE_LIMIT', err.message)
        throw new CityError(
          'QUERY_FAILED',
          `query ${service}.${name} failed: ${(err as Error)?.message ?? err}`,
        )
      }
      return {
        value: value === undefined ? null : value,
        keys: [...read].sort().map((k) => Buffer.from(k, 'utf8')),
      }
    },
  }
}

function readOnly(view: StateView): StateView {
  const refuse = (): never => {
    throw new Error('auth rules are read-only: state.set/delete is not allowed there')
  }
  return { get: view.get, has: view.has, set: refuse, delete: refuse }
}

/** Services in an order where each comes after its dependencies; refuses unknown names and cycles. */
function dependencyOrder(services: Map<string, ServiceDefinition>): string[] {
  const out: string[] = []
  const state = new Map<string, 'visiting' | 'done'>()
  const visit = (name: string, path: string[]): void => {
    const s = state.get(name)
    if (s === 'done') return
    if (s === 'visiting')
      throw new CityError('BAD_SERVICE', `dependency cycle: ${[...path, name].join(' -> ')}`)
    const svc = services.get(name)
    if (!svc) throw new CityError('BAD_SERVICE', `${path.at(-1)} depends on unknown service ${name}`)
    state.set(name, 'visiting')
    for (const dep of svc.dependencies ?? []) visit(dep, [...path, name])
    state.set(name, 'done')
    out.push(name)
  }
  for (const name of [...services.keys()].sort()) visit(name, [])
  return out
}

/**
 * Handlers must not read the clock or draw random numbers. Execution is synchronous, so while it
 * runs nothing else in this thread can observe the swap; both are restored before returning.
 */
function guardDeterminism<T>(fn: () => T): T {
  const now = Date.now
  const random = Math.random
  Date.now = () => {
    throw new Error('Date.now() is not available to services: use ctx.time')
  }
  Math.random = () => {
    throw new Error('Math.random() is not available to services: state must be deterministic')
  }
  try {
    return fn()
  } finally {
    Date.now = now
    Math.random = random
  }
}
