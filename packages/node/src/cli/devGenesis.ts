import { toHex } from '@cityledger/core'

/**
 * Service genesis for a local network: the city operator's key is admin of every scope, so the demo
 * and the tests can register agencies and grant roles from there.
 */
export function defaultServiceGenesis(city: Uint8Array, _validators: Uint8Array[]): Record<string, unknown> {
  const hex = `0x${toHex(city)}`
  return {
    identity: { admins: [{ key: hex, scopes: ['*'] }] },
  }
}
