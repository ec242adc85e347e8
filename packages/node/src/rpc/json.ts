import { rpcError } from './errors.ts'

/** Nesting allowed in a JSON request body. Request bodies are small flat objects; more is an attack. */
export const MAX_JSON_DEPTH = 16

/**
 * Parses a JSON request body. The nesting is measured in one linear scan before `JSON.parse`, so a
 * deeply nested body costs O(n) and never builds a huge structure. `__proto__` and `constructor`
 * keys are dropped by the reviver so a parsed body can never reach an object's prototype.
 * Throws `CityError('BAD_JSON')`.
 */
export function parseJsonBody(text: string, maxDepth = MAX_JSON_DEPTH): unknown {
  if (text.length === 0) throw rpcError('BAD_JSON', 'empty JSON body')
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c)
        i++ // backslash: skip the escaped character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > maxDepth) throw rpcError('BAD_JSON', `JSON nested deeper than ${maxDepth}`)
    } else if (c === 0x7d || c === 0x5d) depth--
  }
  try {
    return JSON.parse(text, (key, value) =>
      key === '__proto__' || key === 'constructor' ? undefined : value,
    )
  } catch (err) {
    throw rpcError('BAD_JSON', `malformed JSON: ${(err as Error).message}`)
  }
}

/** A plain JSON object (not an array, not null), or BAD_REQUEST naming what was expected. */
export function expectObject(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw rpcError('BAD_REQUEST', `${what}: expected a JSON object`)
  return v as Record<string, unknown>
}
