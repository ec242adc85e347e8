import type { Value } from '@cityledger/core'
import { CityError, toHex } from '@cityledger/core'

/**
 * JSON <-> Value for config files and the CLI: byte strings are written as "0x" + lowercase hex, so
 * a genesis file can name keys and commitments. Floats are refused (amounts are integers). An error
 * names the field (`path` then `.key` / `[i]` down to it).
 */
export function valueFromJson(v: unknown, path = '$'): Value {
  return fromJson(v, path, [])
}

const HEX_RE = /^0x(?:[0-9a-fA-F]{2})*$/

// The path of each element is built only for an error (`at`: the keys and indexes from `root` down):
// a genesis of 500,000 entries used to build 1.5 million path strings per pass, ~1.5 s.
function fromJson(v: unknown, root: string, at: (string | number)[]): Value {
  if (v === null || typeof v === 'boolean') return v
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) {
      const field = pathText(root, at)
      throw new CityError('BAD_CONFIG', `${field}: numbers must be safe integers`, { field })
    }
    return v
  }
  if (typeof v === 'string') {
    if (v.charCodeAt(0) === 48 && v.charCodeAt(1) === 120 && HEX_RE.test(v))
      return new Uint8Array(Buffer.from(v.slice(2), 'hex'))
    return v
  }
  if (Array.isArray(v)) {
    const out: Value[] = new Array(v.length)
    for (let i = 0; i < v.length; i++) {
      at.push(i)
      out[i] = fromJson(v[i], root, at)
      at.pop()
    }
    return out
  }
  if (typeof v === 'object') {
    const out: { [k: string]: Value } = {}
    const o = v as Record<string, unknown>
    for (const k of Object.keys(o)) {
      at.push(k)
      out[k] = fromJson(o[k], root, at)
      at.pop()
    }
    return out
  }
  const field = pathText(root, at)
  throw new CityError('BAD_CONFIG', `${field}: unsupported JSON value`, { field })
}

function pathText(root: string, at: readonly (string | number)[]): string {
  return root + at.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('')
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
