import {
  type Runtime,
  type ServiceDefinition,
  type Tx,
  type Value,
  createRuntime,
  decodeStrict,
  generateKeyPair,
  signTx,
  toHex,
  utf8,
} from '@cityledger/core'
import { seedFor } from '@cityledger/core/testing'

/**
 * A chain in memory for runtime tests: genesis with `code`, then `next(services, txs)` executes and
 * commits the next block with whatever code it is given (unless it throws); txs are signed by one key.
 */
export function runtimeChain(
  genesis: Record<string, Value | undefined>,
  code: ServiceDefinition[],
  seedName: string,
) {
  const key = generateKeyPair(seedFor(seedName))
  const store = new Map<string, Uint8Array>()
  const reader = { get: (k: Uint8Array) => store.get(toHex(k)) }
  let height = 0
  let nonce = 0
  const rt = (services: ServiceDefinition[]): Runtime => createRuntime({ services })
  for (const [k, v] of rt(code).genesis(reader, genesis, 0).writes)
    v === null ? store.delete(k) : store.set(k, v)
  return {
    /** The committed state, for the runtime's readers (`versions`, `validatorChanges`). */
    reader,
    get height() {
      return height
    },
    tx(service: string, method: string, args: Value): Tx {
      return signTx(
        { chainId: 'c', service, method, args, signer: key.publicKey, nonce: ++nonce, expiry: 0 },
        key.secretKey,
      )
    },
    /** Executes the next block with `services`; commits it unless it throws. */
    next(services: ServiceDefinition[], txs: Tx[] = []) {
      const out = rt(services).executeBlock(reader, {
        height: height + 1,
        time: (height + 1) * 1000,
        chainId: 'c',
        txs,
      })
      for (const [k, v] of out.writes) v === null ? store.delete(k) : store.set(k, v)
      height++
      return out
    },
    get(k: string): Value | undefined {
      const raw = store.get(toHex(utf8.encode(k)))
      return raw === undefined ? undefined : decodeStrict(raw, { maxBytes: raw.length, maxDepth: 8 })
    },
  }
}
