import { toHex, utf8 } from '../bytes/index.ts'
import { sha256 } from '../crypto/hash.ts'
import { type KeyPair, generateKeyPair } from '../crypto/keys.ts'
import { type Value, decodeStrict, encode } from '../codec/msgpack.ts'
import { type Tx, encodeTxBody } from '../codec/tx.ts'
import { createRuntime, type Runtime, type ServiceEvent, type TxResult } from '../runtime/executor.ts'
import type { ServiceDefinition } from '../runtime/service.ts'
import type { StateReader } from '../runtime/layer.ts'
import { seedFor } from './index.ts'

/** One call in a test block. */
export interface TestCall {
  key: KeyPair
  service: string
  method: string
  args: Value
}

/**
 * An in-memory chain for service tests: the real runtime over a Map, no signatures, no consensus.
 *
 * @example
 * const chain = createTestChain({ services: [...baseServices], genesis: { identity: { admins: [...] } } })
 * const city = chain.keys('city')
 * const r = chain.tx(city, 'token', 'mint', { asset: 'SCOIN', to: alice.publicKey, amount: 10 })
 * assert.is(r.code, null)
 */
export interface TestChain {
  readonly runtime: Runtime
  /** The committed state, for the runtime's readers (`versions`, `validatorChanges`, `query`). */
  readonly reader: StateReader
  readonly height: number
  readonly time: number
  /** A deterministic key pair for a label (same label, same key). */
  keys(label: string): KeyPair
  tx(key: KeyPair, service: string, method: string, args: Value): TxResult
  block(calls: TestCall[]): TxResult[]
  /** Empty blocks (end-of-block hooks run). Returns their block events. */
  advance(blocks?: number): ServiceEvent[]
  query(service: string, name: string, args: Value): Value
  /** All state: full key -> decoded value. */
  state(): Map<string, Value>
  /** The raw committed state (hex of the full key -> bytes). */
  raw(): Map<string, Uint8Array>
  /** Block events of the last block executed. */
  lastBlockEvents(): ServiceEvent[]
}

export function createTestChain(opts: {
  services: ServiceDefinition[]
  genesis?: Record<string, Value | undefined>
  chainId?: string
  /** Block time step in ms (default 1000). */
  blockMs?: number
  onBug?: (info: { service: string; method: string; error: unknown }) => void
}): TestChain {
  const chainId = opts.chainId ?? 'test-chain'
  const blockMs = opts.blockMs ?? 1000
  const runtime = createRuntime({
    services: opts.services,
    onBug:
      opts.onBug ??
      (({ service, method, error }) => {
        throw new Error(`bug in ${service}.${method}: ${(error as Error)?.stack ?? error}`)
      }),
  })
  const store = new Map<string, Uint8Array>()
  const reader = {
    // A copy, as the node's state tree gives: values decoded from it must not alias the store.
    get: (key: Uint8Array) => store.get(toHex(key))?.slice(),
    // Ordered prefix reads for `state.list` (lowercase hex sorts like the bytes it encodes).
    range(prefix: Uint8Array, after: Uint8Array | undefined, limit: number): [Uint8Array, Uint8Array][] {
      const p = toHex(prefix)
      const a = after === undefined ? undefined : toHex(after)
      const keys = [...store.keys()].filter((k) => k.startsWith(p) && (a === undefined || k > a)).sort()
      return keys.slice(0, limit).map((k) => [Uint8Array.from(Buffer.from(k, 'hex')), store.get(k)!.slice()])
    },
  }
  const nonces = new Map<string, number>()
  const keyCache = new Map<string, KeyPair>()
  let height = 0
  let time = 1_700_000_000_000
  let lastEvents: ServiceEvent[] = []

  const apply = (writes: Map<string, Uint8Array | null>) => {
    for (const [k, v] of writes) {
      if (v === null) store.delete(k)
      else store.set(k, v)
    }
  }
  apply(runtime.genesis(reader, opts.genesis ?? {}, time).writes)

  const makeTx = (c: TestCall): Tx => {
    const signerHex = toHex(c.key.publicKey)
    const nonce = (nonces.get(signerHex) ?? 0) + 1
    nonces.set(signerHex, nonce)
    const body = {
      chainId,
      service: c.service,
      method: c.method,
      args: c.args,
      signer: c.key.publicKey,
      nonce,
      expiry: 0,
    }
    const bodyBytes = encodeTxBody(body)
    const signature = new Uint8Array(64)
    const bytes = encode([bodyBytes, signature])
    return { body, bodyBytes, signature, bytes, hash: sha256(bytes) }
  }

  const block = (calls: TestCall[]): TxResult[] => {
    height++
    time += blockMs
    const out = runtime.executeBlock(reader, { height, time, chainId, txs: calls.map(makeTx) })
    apply(out.writes)
    lastEvents = out.blockEvents
    return out.results
  }

  return {
    runtime,
    reader,
    get height() {
      return height
    },
    get time() {
      return time
    },
    keys(label) {
      let k = keyCache.get(label)
      if (!k) keyCache.set(label, (k = generateKeyPair(seedFor(label))))
      return k
    },
    tx: (key, service, method, args) => block([{ key, service, method, args }])[0]!,
    block,
    advance(n = 1) {
      const events: ServiceEvent[] = []
      for (let i = 0; i < n; i++) {
        block([])
        events.push(...lastEvents)
      }
      return events
    },
    query: (service, name, args) => runtime.query(reader, height, service, name, args).value,
    state() {
      const out = new Map<string, Value>()
      for (const [k, v] of store)
        out.set(utf8.decode(Buffer.from(k, 'hex')), decodeStrict(v, { maxBytes: v.length, maxDepth: 32 }))
      return out
    },
    raw: () => new Map(store),
    lastBlockEvents: () => lastEvents,
  }
}
