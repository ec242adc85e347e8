import * as assert from 'uvu/assert'
import {
  type KeyPair,
  type ServiceDefinition,
  type TxResult,
  type Value,
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
