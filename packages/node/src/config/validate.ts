import { readFileSync } from 'node:fs'
import { CHAIN_ID_RE } from '@cityledger/core'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'

/** One thing wrong with a config or genesis file: the field's path (`rpc.port`, `validators[0].name`). */
export interface ConfigProblem {
  /** Dotted path with list indexes; `(top level)` for the file as a whole. */
  field: string
  /** What is wrong, with what the field expects (`expected an integer >= 1, got "lots"`). */
  message: string
}

/** A JSON Schema (draft-07) object, as published in packages/node/schema/. */
export type JsonSchema = Record<string, unknown>

export const TOP_LEVEL = '(top level)'
const MAX_SAFE = Number.MAX_SAFE_INTEGER

// Small builders so the schemas read like the config they describe. Every integer is a safe integer:
// JSON Schema's "integer" alone accepts 1e300.
export const integer = (description: string, minimum = 0, maximum = MAX_SAFE, dflt?: number): JsonSchema => ({
  description,
  type: 'integer',
  minimum,
  maximum,
  ...(dflt === undefined ? {} : { default: dflt }),
})
export const text = (description: string, extra: JsonSchema = {}): JsonSchema => ({
  description,
  type: 'string',
  ...extra,
})
export const list = (description: string, items: JsonSchema, extra: JsonSchema = {}): JsonSchema => ({
  description,
  type: 'array',
  items,
  ...extra,
})
/**
 * An object that refuses unknown fields. `$comment` is allowed everywhere so a file may explain
 * itself (JSON has no comments); it is ignored.
 */
export const object = (
  description: string,
  properties: Record<string, JsonSchema>,
  extra: JsonSchema = {},
): JsonSchema => ({
  description,
  type: 'object',
  properties: { $comment: { description: 'ignored', type: 'string' }, ...properties },
  additionalProperties: false,
  ...extra,
})

/** 32 bytes as 64 hex characters (an Ed25519 public key). */
export const HEX32 = '^[0-9a-fA-F]{64}$'
// Words for patterns, so a problem says what is expected instead of quoting a regular expression.
const PATTERN_WORDS = new Map<string, string>([
  [HEX32, '64 hex characters (a 32-byte key)'],
  [CHAIN_ID_RE.source, 'lowercase letters, digits and dashes (at most 64, not starting with a dash)'],
])

// One validator instance; schemas compile on first use (a client that never reads a config file pays
// nothing). allErrors: an operator fixes every problem in one go, not one per start.
const ajv = new Ajv({ allErrors: true, strict: true, verbose: true })
const compiled = new WeakMap<JsonSchema, ValidateFunction>()

/** Checks `json` against `schema`; every problem, one per field, in document order. */
export function schemaProblems(schema: JsonSchema, json: unknown): ConfigProblem[] {
  let validate = compiled.get(schema)
  if (!validate) {
    validate = ajv.compile(schema)
    compiled.set(schema, validate)
  }
  if (validate(json)) return []
  const byField = new Map<string, string>()
  for (const e of validate.errors ?? []) {
    const p = problemOf(e)
    if (!byField.has(p.field)) byField.set(p.field, p.message)
  }
  return [...byField].map(([field, message]) => ({ field, message }))
}

function problemOf(e: ErrorObject): ConfigProblem {
  const at = fieldOf(e.instancePath)
  const parent = (e.parentSchema ?? {}) as JsonSchema
  const props = (parent.properties ?? {}) as Record<string, JsonSchema>
  const known = Object.keys(props).filter((k) => k !== '$comment' && k !== '$schema')
  if (e.keyword === 'additionalProperties') {
    const name = String(e.params.additionalProperty)
    const near = closest(name, known)
    return {
      field: join(at, name),
      message: `unknown field${near ? ` (did you mean "${near}"?)` : ''}; known: ${known.join(', ')}`,
    }
  }
  if (e.keyword === 'required') {
    const name = String(e.params.missingProperty)
    return { field: join(at, name), message: `missing: expected ${describe(props[name] ?? {})}` }
  }
  return { field: at, message: `expected ${describe(parent)}, got ${show(e.data)}` }
}

/** `/p2p/peers/0/publicKey` -> `p2p.peers[0].publicKey` */
function fieldOf(pointer: string): string {
  if (pointer === '') return TOP_LEVEL
  let out = ''
  for (const raw of pointer.slice(1).split('/')) {
    const part = raw.replaceAll('~1', '/').replaceAll('~0', '~')
    out += /^\d+$/.test(part) ? `[${part}]` : out === '' ? part : `.${part}`
  }
  return out
}

const join = (at: string, name: string): string => (at === TOP_LEVEL ? name : `${at}.${name}`)

/** What a schema expects, in words: `an integer in 0..65535`, `"level" or "memory"`. */
export function describe(s: JsonSchema): string {
  if (Array.isArray(s.enum)) {
    const vs = s.enum.map((v) => JSON.stringify(v))
    return vs.length <= 2 ? vs.join(' or ') : `one of ${vs.join(', ')}`
  }
  const range = (): string => {
    const min = s.minimum as number | undefined
    const max = s.maximum === MAX_SAFE ? undefined : (s.maximum as number | undefined)
    if (min !== undefined && max !== undefined) return ` in ${min}..${max}`
    if (min !== undefined) return ` >= ${min}`
    return max !== undefined ? ` <= ${max}` : ''
  }
  switch (s.type) {
    case 'boolean':
      return 'true or false'
    case 'integer':
      return `an integer${range()}`
    case 'number':
      return `a number${range()}`
    case 'string': {
      const words = typeof s.pattern === 'string' ? PATTERN_WORDS.get(s.pattern) : undefined
      if (words) return `a string of ${words}`
      return s.minLength ? 'a non-empty string' : 'a string'
    }
    case 'array': {
      const least = s.minItems ? ` of at least ${s.minItems}` : ''
      return `a list${least}, each ${describe((s.items ?? {}) as JsonSchema)}`
    }
    case 'object':
      return 'an object'
    default:
      return 'a JSON value'
  }
}

const show = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v)
  return s.length > 40 ? `${s.slice(0, 37)}...` : s
}

/** The known name a typo most likely meant (edit distance <= 2, or equal ignoring case). */
function closest(name: string, known: string[]): string | undefined {
  let best: string | undefined
  let bestD = 3
  for (const k of known) {
    const d = k.toLowerCase() === name.toLowerCase() ? 0 : distance(name, k)
    if (d < bestD) [best, bestD] = [k, d]
  }
  return best
}

/** Damerau-Levenshtein distance (optimal string alignment): `rcp` is one step from `rpc`. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) d[0]![j] = j
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1)
      d[i]![j] = v
    }
  return d[a.length]![b.length]!
}

/** Reads and parses a JSON file; a file that cannot be read or parsed is one problem, never a throw. */
export function readJsonFile(path: string): { json: unknown } | { problem: ConfigProblem } {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message
    return { problem: { field: TOP_LEVEL, message: `cannot read ${path}: ${code}` } }
  }
  try {
    return { json: JSON.parse(text) }
  } catch (err) {
    return { problem: { field: TOP_LEVEL, message: `not valid JSON: ${(err as Error).message}` } }
  }
}

/** The text of a refusal listing every problem, one per line after a summary. */
export function problemsText(path: string, problems: ConfigProblem[]): string {
  const n = problems.length
  const lines = problems.map((p) => `  ${p.field}: ${p.message}`)
  return `${path}: ${n} problem${n === 1 ? '' : 's'}\n${lines.join('\n')}`
}
