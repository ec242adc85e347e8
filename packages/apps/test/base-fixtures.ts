import * as assert from 'uvu/assert'
import {
  type KeyPair,
  type ServiceDefinition,
  type TxContext,
  type TxResult,
  type Value,
  defineService,
  s,
  sha256,
  utf8,
} from '@cityledger/core'
import { type TestChain, createTestChain } from '@cityledger/core/testing'
import { baseServices } from '../src/base/index.ts'

/** Shared set-up of the base-service tests: a chain whose city key is '*' admin and admin of every base scope. */
export interface BaseChain {
  chain: TestChain
  city: KeyPair
  key(label: string): KeyPair
}

export function baseChain(
  opts: { extra?: ServiceDefinition[]; genesis?: Record<string, Value>; scopes?: string[] } = {},
): BaseChain {
  const probe = createTestChain({ services: [] })
  const city = probe.keys('city')
  const chain = createTestChain({
    services: [...baseServices, ...(opts.extra ?? [])],
    genesis: {
      identity: {
        admins: [
          { key: city.publicKey, scopes: opts.scopes ?? ['*', 'identity', 'token', 'registry', 'consent'] },
        ],
      },
      ...opts.genesis,
    },
  })
  return { chain, city, key: (label) => chain.keys(label) }
}

/** Asserts a tx result's code (null = success), printing the message on a mismatch. */
export function expectCode(r: TxResult, code: string | null, what = ''): void {
  assert.is(
    r.code,
    code,
    `${what}: expected ${code ?? 'success'}, got ${r.code ?? 'success'} (${r.message ?? ''})`,
  )
}

/** A 32-byte value from a label (docIds, grantIds, commitments). */
export function h32(label: string | number): Uint8Array {
  return sha256(utf8.encode(`base-test/${label}`))
}

/** Entries of a state snapshot under `prefix`. */
export function under(state: Map<string, Value>, prefix: string): [string, Value][] {
  return [...state].filter(([k]) => k.startsWith(prefix))
}

/**
 * A service that calls `target`'s exports as another service would (method `call` with `{ fn, args }`),
 * emitting what the export returns as event `out`.
 */
export function exportCaller(name: string, target: string): ServiceDefinition {
  return defineService({
    name,
    version: '1.0.0',
    dependencies: [target],
    methods: {
      call: {
        args: s.object({ fn: s.string(), args: s.any() }),
        handler(ctx: TxContext, a: { fn: string; args: Value }) {
          const out = ctx.call(target, a.fn, a.args)
          if (out !== undefined) ctx.emit('out', out)
        },
      },
    },
  })
}

/**
 * Property tests: each result of a random block must have the code the model predicted. Returns how
 * many were accepted. `label(i)` names tx i in the failure message (seed, height, method).
 */
export function expectCodes(
  results: TxResult[],
  expected: (string | null)[],
  label: (i: number) => string,
): number {
  let ok = 0
  results.forEach((r, i) => {
    if (r.code === null) ok++
    assert.is(r.code, expected[i], `${label(i)}: ${r.message ?? ''}`)
  })
  return ok
}
