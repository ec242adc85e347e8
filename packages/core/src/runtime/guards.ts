import { CityError } from '../errors/index.ts'
import { isProcessHardened } from './sandbox.ts'
import type { ServiceDefinition } from './service.ts'

/** Helpers of the executor: error texts, the synchronous-handler rule, determinism guards, ordering. */

/**
 * Handlers are synchronous. One that returns a promise (an async function) fails: its work would land
 * after the tx ended, and its rejection, left unhandled, would crash every validator at once.
 */
export function synchronous<T>(out: T, what: string): T {
  if (out !== null && (typeof out === 'object' || typeof out === 'function') && 'then' in out) {
    try {
      ;(out as unknown as PromiseLike<unknown>).then(undefined, () => {})
    } catch {
      // A thenable whose then throws: nothing to settle.
    }
    throw new TypeError(`${what} returned a promise: service handlers must be synchronous`)
  }
  return out
}

/**
 * A thrown CityError (ServiceError included) as a code and a message read once each, so a hostile
 * subclass with getters cannot make the result differ from what was checked. Codes are 1..64 of A-Z, 0-9, _.
 */
export function cityError(err: unknown): { code: string; message: string } | undefined {
  if (!(err instanceof CityError)) return undefined
  const code: unknown = err.code
  const message: unknown = err.message
  if (typeof code !== 'string' || !/^[A-Z][A-Z0-9_]{0,63}$/.test(code)) return undefined
  return { code, message: typeof message === 'string' ? message : '' }
}

/** A failure as text for results and events: `CODE: message` for CityErrors, the error's own text else. */
export function failureText(err: unknown): string {
  const known = cityError(err)
  if (known) return `${known.code}: ${known.message}`
  try {
    return String((err as Error)?.message ?? err)
  } catch {
    return 'an error that cannot be printed'
  }
}

/** Services in an order where each comes after its dependencies; refuses unknown names and cycles. */
export function dependencyOrder(services: Map<string, ServiceDefinition>): string[] {
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
 * For services run outside the sandbox (tests, tools): handlers must not read the clock or draw random
 * numbers. Execution is synchronous, so while it runs nothing else in this thread can observe the swap;
 * both are restored before returning. In a hardened process the sandbox does this job (see sandbox.ts).
 */
export function guardDeterminism<T>(fn: () => T): T {
  // Stack traces name files and lines of this node's install: a service could store one and fork the
  // chain. With no frames captured while services run, `err.stack` is just "Name: message" everywhere.
  const stackLimit = Error.stackTraceLimit
  setStackLimit(0)
  try {
    // After lockdown intrinsics are frozen (the swap would throw) and sandboxed services have no Date.
    if (isProcessHardened()) return fn()
    return swapClock(fn)
  } finally {
    setStackLimit(stackLimit)
  }
}

/**
 * Sets Error.stackTraceLimit. It cannot be set when lockdown ran after modules that extend the original
 * Error had loaded (hardening the SDK froze it): lock down first (`@cityledger/core/lockdown`).
 */
function setStackLimit(n: number): void {
  try {
    Error.stackTraceLimit = n
  } catch {
    // Frozen: stacks stay as they are (see above).
  }
}

function swapClock<T>(fn: () => T): T {
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
