import type { Value } from '@cityledger/core'
import { CityError, toHex } from '@cityledger/core'

/**
 * JSON <-> Value for config files and the CLI: byte strings are written as "0x" + lowercase hex, so
 * a genesis file can name keys and commitments. Floats are refused (amounts are integers).
 */
export function valueFromJson(v: unknown, path = '$'): Value {
  if (v === null || typeof v === 'boolean') return v
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v))
      throw new CityError('BAD_CONFIG', `${path}: numbers must be safe integers`, { field: path })
    return v
  }
  if (typeof v === 'string') {
    if (/^0x(?:[0-9a-fA-F]{2})*$/.test(v)) return Uint8Array.from(Buffer.from(v.slice(2), 'hex'))
    return v
  }
  if (Array.isArray(v)) return v.map((x, i) => valueFromJson(x, `${path}[${i}]`))
  if (typeof v === 'object') {
    const out: { [k: string]: Value } = {}
    for (const [k, x] of Object.entries(v as Record<string, unknown>))
      out[k] = valueFromJson(x, `${path}.${k}`)
    return out
  }
  throw new CityError('BAD_CONFIG', `${path}: unsupported JSON value`, { field: path })
}

/** Value -> JSON-able form with bytes as "0x" hex (the inverse of valueFromJson). */
export function valueToJson(v: Value | undefined): unknown {
  if (v instanceof Uint8Array) return `0x${toHex(v)}`
  if (Array.isArray(v)) return v.map(valueToJson)
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, valueToJson(x)]))
  }
  return v ?? null
}

/** Value -> JSON for RPC answers: bytes as plain lowercase hex (RPC v1 convention). */
export function valueToRpcJson(v: Value | undefined): unknown {
  if (v instanceof Uint8Array) return toHex(v)
  if (Array.isArray(v)) return v.map(valueToRpcJson)
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, valueToRpcJson(x)]))
  }
  return v ?? null
}
