import { type Value, ServiceError, toHex } from '@cityledger/core'
import { genesisKey } from '../common.ts'
import { MAX_VALIDATORS, checkMembership, checkParameter } from './rules.ts'

type Rec = Record<string, Value>

/** Genesis section of governance. Keys may be bytes or hex (JSON genesis files). */
export interface GovernanceGenesis {
  members: (Uint8Array | string)[]
  threshold: number
  /** The genesis validator set (the same keys as the genesis file's `validators`). */
  validators?: (Uint8Array | string)[]
  /** Starting values of parameters of the table (others keep their defaults). */
  parameters?: Record<string, number>
}

/** The genesis section once checked. */
export interface ParsedGenesis {
  members: Uint8Array[]
  threshold: number
  validators: Uint8Array[]
  parameters: [string, number][]
}

/** The genesis section, or null when there is none. Every refusal is BAD_GENESIS naming the rule broken. */
export function parseGenesis(config: Value | undefined): ParsedGenesis | null {
  if (config === undefined || config === null) return null
  try {
    return parseGenesisSection(config)
  } catch (err) {
    if (!(err instanceof ServiceError) || err.code === 'BAD_GENESIS') throw err
    throw new ServiceError('BAD_GENESIS', `governance genesis: ${err.code}: ${err.message}`)
  }
}

export function parseGenesisSection(config: Value): ParsedGenesis {
  const bad = (msg: string) => new ServiceError('BAD_GENESIS', `governance genesis: ${msg}`)
  if (typeof config !== 'object' || Array.isArray(config) || config instanceof Uint8Array)
    throw bad('expected a map')
  const cfg = config as Rec
  for (const k of Object.keys(cfg))
    if (!['members', 'threshold', 'validators', 'parameters'].includes(k)) throw bad(`unknown field ${k}`)
  const keys = (x: Value | undefined, field: string): Uint8Array[] => {
    if (x === undefined) return []
    if (!Array.isArray(x)) throw bad(`${field}: expected a list of keys`)
    return x.map((k, i) => genesisKey(k, `${field}[${i}]`))
  }
  const members = keys(cfg.members, 'members')
  const threshold = cfg.threshold
  if (typeof threshold !== 'number') throw bad('threshold: expected an integer k (1 <= k <= members)')
  if (members.length === 0) throw bad('members: at least one member')
  checkMembership(members, threshold, 'members', 'BAD_GENESIS')
  const validators = keys(cfg.validators, 'validators')
  if (validators.length > MAX_VALIDATORS) throw bad(`validators: at most ${MAX_VALIDATORS}`)
  const seen = new Set(validators.map((v) => toHex(v)))
  if (seen.size !== validators.length) throw bad('validators: a key is listed twice')
  const params = cfg.parameters ?? {}
  if (typeof params !== 'object' || Array.isArray(params) || params instanceof Uint8Array)
    throw bad('parameters: expected a map of name to integer')
  const parameters = Object.entries(params as Rec).map(([name, v]): [string, number] => [
    name,
    checkParameter(name, v as number, `parameters.${name}`),
  ])
  return { members, threshold, validators, parameters }
}
