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
import { runEndBlock as runHooks, hookStatus, newHookCounters } from './hooks.ts'
import { privateCopy, snapshot, thaw } from './layer.ts'
import { cityError, dependencyOrder, failureText, guardDeterminism, synchronous } from './guards.ts'
import { parseTextArgs } from './schema.ts'
import type {
  AuthContext,
  BlockContext,
  ListOptions,
  QueryContext,
  ReadonlyStateView,
  ServiceDefinition,
  StatePage,
  StateView,
  TxContext,
} from './service.ts'
import {
  applyUpgrades,
  genesisVersionWrites,
  scheduleUpgrade,
  serviceVersions,
  upgradeAuthorityKey,
} from './versions.ts'
import type { Runtime, RuntimeOptions, ServiceEvent, TxResult } from './runtimeTypes.ts'
import {
  genesisValidatorWrites,
  scheduleValidators,
  validatorAuthorityKey,
  validatorChanges,
} from './validators.ts'

/** Who may schedule what (see `Frame.authority`). */
interface Authorities {
  upgrades?: string | undefined
  validators?: string | undefined
}

export type {
  BlockExecution,
  QueryResult,
  Runtime,
  RuntimeOptions,
  ServiceEvent,
  TxResult,
} from './runtimeTypes.ts'

/** Keys of the runtime's own namespace. Services cannot be named `_sys`. */
const nonceKey = (signerHex: string) => `_sys/nonce/${signerHex}`

export function createRuntime(opts: RuntimeOptions): Runtime {
  const limits: WorkLimits = { ...DEFAULT_WORK_LIMITS, ...opts.limits }
  const services = new Map<string, ServiceDefinition>()
  for (const svc of opts.services) {
    if (services.has(svc.name)) throw new CityError('BAD_SERVICE', `service ${svc.name} registered twice`)
    if (svc.name.startsWith('_')) throw new CityError('BAD_SERVICE', `service name ${svc.name} is reserved`)
    services.set(svc.name, svc)
  }
  const order = dependencyOrder(services)
  const counters = newHookCounters()
  const maxHookFailures = opts.maxHookFailures ?? 3
  const fallbackRange = opts.range
  /** The reader with `range` (its own, or the runtime's fallback). */
  const ordered = (state: StateReader): StateReader =>
    state.range || !fallbackRange ? state : { get: (k) => state.get(k), range: fallbackRange }

  /** Throws once the tx (or hook) a context belongs to is over: a late promise cannot write. */
  const alive = (f: { live: boolean }) => {
    if (!f.live) throw new Error('this context belongs to a transaction or hook that has ended')
  }

  /** Views read `f.layer` at each call, so a hook's `attempt` savepoint applies to every view it holds. */
  function readView(f: { layer: Layer; live: boolean }, service: string): ReadonlyStateView {
    const prefix = `${service}/`
    return {
      get: <T extends Value = Value>(key: string) => {
        alive(f)
        return f.layer.get(prefix + key) as T | undefined
      },
      has: (key) => {
        alive(f)
        return f.layer.has(prefix + key)
      },
      list: <T extends Value = Value>(p: string, o: ListOptions = {}): StatePage<T> => {
        alive(f)
        const limit = o.limit ?? LIST_MAX
        if (typeof p !== 'string' || !Number.isSafeInteger(limit) || limit < 1 || limit > LIST_MAX)
          throw new TypeError(`state.list: a string prefix and a limit of 1..${LIST_MAX}`)
        const after = o.after === undefined ? undefined : prefix + String(o.after)
        const rows = f.layer.list(prefix + p, after, limit)
        const entries = rows.map(([k, value]) => ({ key: k.slice(prefix.length), value: value as T }))
        return entries.length === limit ? { entries, next: entries[limit - 1]!.key } : { entries }
      },
    }
  }

  function nsView(f: { layer: Layer; live: boolean }, service: string): StateView {
    const prefix = `${service}/`
    return {
      ...readView(f, service),
      set: (key, value) => {
        alive(f)
        if (value === undefined)
          throw new TypeError(`state.set(${key}): undefined is not a value (use delete)`)
        f.layer.set(prefix + key, value)
      },
      delete: (key) => {
        alive(f)
        f.layer.delete(prefix + key)
      },
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
    /** False once the tx or hook is over (see `alive`). */
    live: boolean
    /**
     * The services that may schedule upgrades (genesis `_sys.upgradeAuthority`) and validator-set
     * changes (`_sys.validatorAuthority`), if any.
     */
    authority?: Authorities
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
      state: nsView(f, service),
      emit: (name, data) => {
        alive(f)
        f.events.push({ service, name: String(name), data: f.layer.meter.event(data) })
      },
      call: <T extends Value | void = Value>(target: string, fn: string, args: Value): T => {
        alive(f)
        return callExport(f, svc, target, fn, args) as T
      },
      ...(f.authority?.upgrades === service
        ? {
            scheduleUpgrade: (target: string, version: string, height: number) => {
              alive(f)
              scheduleUpgrade(f.layer, f.height, target, version, height)
            },
          }
        : {}),
      ...(f.authority?.validators === service
        ? {
            scheduleValidators: (keys: Uint8Array[], height: number) => {
              alive(f)
              scheduleValidators(f.layer, f.height, keys, height)
            },
          }
        : {}),
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
    // Args and result cross as copies of plain data: neither side can alias or trick the other.
    const inner: Frame = { ...f, layer: f.layer.child(), events: [], depth: f.depth + 1, live: true }
    try {
      const out = synchronous(
        exp(txContext(inner, target, from.name), args === undefined ? args : snapshot(args).value),
        `${target}.${fn}`,
      )
      // The caller's own copy (checked as a snapshot is, never frozen: it is the caller's to edit).
      const result = out === undefined ? undefined : privateCopy(out).value
      inner.layer.commit()
      f.events.push(...inner.events)
      return result
    } finally {
      inner.live = false
    }
  }

  function blockContext(
    layer: Layer,
    service: string,
    height: number,
    time: number,
    events: ServiceEvent[],
  ): BlockContext & { end(): void } {
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
      live: true,
    }
    const ctx: BlockContext & { end(): void } = {
      height,
      time,
      state: nsView(frame, service),
      emit: (name, data) => {
        alive(frame)
        events.push({ service, name: String(name), data: frame.layer.meter.event(data) })
      },
      call: <T extends Value | void = Value>(target: string, fn: string, args: Value): T => {
        alive(frame)
        return callExport(frame, svc, target, fn, args) as T
      },
      attempt: (item, fn) => {
        alive(frame)
        const outer = frame.layer
        const mark = events.length
        frame.layer = outer.child()
        try {
          fn()
          frame.layer.commit()
          return true
        } catch (err) {
          if (err instanceof ResourceLimitError) throw err
          events.length = mark
          counters.itemFailures.set(service, (counters.itemFailures.get(service) ?? 0) + 1)
          opts.onBug?.({ service, method: `endBlock item ${item}`, error: err })
          outer.meter.event(null)
          events.push({
            service,
            name: 'endBlockItemFailed',
            data: { item: String(item), error: failureText(err) },
          })
          return false
        } finally {
          frame.layer = outer
        }
      },
      end: () => {
        frame.live = false
      },
    }
    return ctx
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
  function runTx(
    block: Layer,
    tx: Tx,
    height: number,
    time: number,
    chainId: string | undefined,
    authority: Authorities,
  ): TxResult {
    const { body } = tx
    const fail = (code: string, message: string): TxResult => ({ hash: tx.hash, code, message, events: [] })
    if (chainId !== undefined && body.chainId !== chainId)
      return fail('WRONG_CHAIN', `tx is for chain ${body.chainId}`)
    if (body.expiry !== 0 && height > body.expiry)
      return fail('TX_EXPIRED', `tx expired at height ${body.expiry}`)
    const signerHex = toHex(body.signer)
    const nonceAt = nonceKey(signerHex)
    // The same read as committedNonce(block, signer), without hex-encoding the signer twice.
    const stored = block.get(nonceAt)
    const last = typeof stored === 'number' ? stored : 0
    if (body.nonce <= last) return fail('NONCE_TOO_LOW', `nonce ${body.nonce} <= last used ${last}`)
    // Strictly sequential (validation refuses such blocks; this keeps a gap from using up a nonce).
    if (body.nonce !== last + 1) return fail('NONCE_GAP', `nonce ${body.nonce}, next is ${last + 1}`)
    // The nonce is consumed whether or not the service accepts the tx.
    block.set(nonceAt, body.nonce)
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
      live: true,
      authority,
    }
    try {
      // The handler gets its own copy of the args (the decoded tx stays as it arrived).
      const args = method.args.parse(thaw(body.args))
      const ctx = txContext(frame, svc.name, undefined)
      // A read-only view: auth rules cannot write (set/delete are absent, so a call throws and the tx fails).
      const authCtx = { ...ctx, state: readView(frame, svc.name) } as AuthContext
      if (method.auth && method.auth(authCtx, args) === false) {
        return fail('UNAUTHORIZED', `signer may not call ${svc.name}.${body.method}`)
      }
      synchronous(method.handler(ctx, args), `${svc.name}.${body.method}`)
    } catch (err) {
      if (err instanceof ResourceLimitError) return fail('RESOURCE_LIMIT', err.message)
      const known = cityError(err)
      if (known) return fail(known.code, known.message)
      opts.onBug?.({ service: svc.name, method: body.method, error: err })
      return fail('INTERNAL', `service ${svc.name}.${body.method} failed: ${failureText(err)}`)
    } finally {
      frame.live = false
    }
    layer.commit()
    return { hash: tx.hash, code: null, events: frame.events }
  }

  function runEndBlock(block: Layer, height: number, time: number): ServiceEvent[] {
    return runHooks({
      block,
      height,
      time,
      order,
      services,
      limits,
      counters,
      maxFailures: maxHookFailures,
      context: (layer, name, events) => blockContext(layer, name, height, time, events),
      onBug: opts.onBug,
      failureText,
    })
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
        const ctx = blockContext(layer, name, 0, time, blockEvents)
        try {
          guardDeterminism(() => synchronous(svc.genesis!(ctx, config[name]), `${name}.genesis`))
        } catch (err) {
          throw new CityError(
            'GENESIS_FAILED',
            `genesis of ${name} failed: ${(err as Error)?.message ?? err}`,
            { service: name },
          )
        }
        ctx.end()
        layer.commit()
      }
      for (const [k, v] of genesisVersionWrites(services, config._sys)) root.set(k, v)
      for (const [k, v] of genesisValidatorWrites(config._sys, services)) root.set(k, v)
      return { writes: root.collect(), results: [], blockEvents }
    },
    executeBlock(state, { height, time, chainId, txs }) {
      // The block's own layer holds every tx's nonce write: the per-tx limits apply to each tx's child
      // layer, not to the block (a block of more than 512 txs used to throw out of executeBlock).
      const root = new Layer(
        ordered(state),
        undefined,
        new Meter({ ...limits, maxReads: Infinity, maxWrites: Infinity }),
      )
      return guardDeterminism(() => {
        // Versions first: a node whose code is not the version the chain runs at this height stops here.
        const upgradeEvents = applyUpgrades({
          layer: root,
          height,
          services,
          order,
          limits,
          context: (layer, name, events) => blockContext(layer, name, height, time, events),
        })
        const authority: Authorities = {
          upgrades: root.get(upgradeAuthorityKey) as string | undefined,
          validators: root.get(validatorAuthorityKey) as string | undefined,
        }
        const results = txs.map((tx) => runTx(root, tx, height, time, chainId, authority))
        const blockEvents = [...upgradeEvents, ...runEndBlock(root, height, time)]
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
    counters,
    hookStatus: (state) =>
      hookStatus(new Layer(state, undefined, new Meter({ ...limits, maxReads: Infinity })), order),
    validatorChanges: (state, after) =>
      validatorChanges(new Layer(state, undefined, new Meter({ ...limits, maxReads: Infinity })), after),
    versions: (state) =>
      serviceVersions(
        new Layer(state, undefined, new Meter({ ...limits, maxReads: Infinity })),
        services,
        order,
      ),
    query(state, height, service, name, args, text = false) {
      const svc = services.get(service)
      if (!svc) throw new CityError('UNKNOWN_SERVICE', `no service ${service}`)
      const q = svc.queries && Object.hasOwn(svc.queries, name) ? svc.queries[name] : undefined
      if (!q) throw new CityError('UNKNOWN_QUERY', `service ${service} has no query ${name}`)
      const read = new Set<string>()
      const base = ordered(state)
      const tracking: StateReader = {
        get(key) {
          read.add(Buffer.from(key).toString('utf8'))
          return base.get(key)
        },
      }
      if (base.range) {
        const range = base.range.bind(base)
        tracking.range = (p, after, limit) => {
          const rows = [...range(p, after, limit)]
          for (const [k] of rows) read.add(Buffer.from(k).toString('utf8'))
          return rows
        }
      }
      const layer = new Layer(tracking, undefined, new Meter({ ...limits, maxReads: limits.maxReads * 4 }))
      const holder = { layer, live: true }
      const ctx = (svcName: string): QueryContext => ({
        height,
        state: readView(holder, svcName),
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
        value = guardDeterminism(
          () => synchronous(q.handler(ctx(service), parsed), `${service}.${name}`) as Value,
        )
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

/** Largest page of `state.list`. */
const LIST_MAX = 256
