import { CHAIN_ID_RE, CityError, type Value, encode, fromHex, sha256 } from '@cityledger/core'
import { valueFromJson } from './json.ts'
import {
  type ConfigProblem,
  HEX32,
  type JsonSchema,
  integer,
  list,
  object,
  problemsText,
  readJsonFile,
  schemaProblems,
  text,
} from './validate.ts'

/** One validator in the genesis set. */
export interface GenesisValidator {
  name: string
  /** Ed25519 public key, hex. */
  publicKey: string
}

/** Consensus parameters fixed at genesis (every validator must use the same ones). */
export interface ConsensusParams {
  /** K: a checkpoint every K heights. */
  checkpointInterval: number
  /** L: heights a replica accepts above its stable checkpoint. */
  watermarkWindow: number
  /** Base view-change timeout; doubles with each consecutive view change. */
  viewChangeTimeoutMs: number
  /** Most txs a proposer puts in a block. */
  maxBlockTxs: number
  /** Most bytes of txs a proposer puts in a block. */
  maxBlockBytes: number
  /** How long a primary waits for txs before proposing a (possibly empty) block. */
  blockIntervalMs: number
}

/**
 * The genesis file: chain id, validators, consensus parameters and each service's genesis config
 * (JSON, byte strings as "0x" hex). Its hash (of the canonical encoding) is checked on every start.
 */
export interface Genesis {
  chainId: string
  /** ms since the epoch; block 1's time must be later. */
  genesisTime: number
  validators: GenesisValidator[]
  consensus: ConsensusParams
  services: Record<string, unknown>
}

export const DEFAULT_CONSENSUS: ConsensusParams = {
  checkpointInterval: 16,
  watermarkWindow: 64,
  viewChangeTimeoutMs: 3000,
  maxBlockTxs: 5000,
  maxBlockBytes: 8 * 1024 * 1024,
  blockIntervalMs: 200,
}

const c = DEFAULT_CONSENSUS
const param = (k: keyof ConsensusParams, description: string) => integer(description, 1, undefined, c[k])

/**
 * JSON Schema of a genesis file: chainId, genesisTime and validators required, consensus parameters
 * optional (defaults as `default`), unknown fields refused. Service configs are the services' own
 * (checked by each service at genesis), so `services` only has to be an object of JSON values.
 * Published as packages/node/schema/genesis.schema.json (a test keeps the two equal).
 */
export const GENESIS_SCHEMA: JsonSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'cityledger genesis file (<home>/genesis.json)',
  ...object(
    "The network's first state; every validator must start from the same file.",
    {
      $schema: text('the schema this file follows (for editors); ignored'),
      chainId: text('network name, signed into every tx and vote', { pattern: CHAIN_ID_RE.source }),
      genesisTime: integer('ms since the epoch; block 1 must be later', 0),
      validators: list(
        'the validator set, in order (the order picks the primary of each view)',
        object(
          'one validator',
          {
            name: text('human name', { minLength: 1 }),
            publicKey: text('Ed25519 public key, 64 hex characters', { pattern: HEX32 }),
          },
          { required: ['name', 'publicKey'] },
        ),
        { minItems: 1 },
      ),
      consensus: object('consensus parameters (every validator must use the same ones)', {
        checkpointInterval: param('checkpointInterval', 'K: a checkpoint every K heights'),
        watermarkWindow: param(
          'watermarkWindow',
          'L: heights a replica accepts above its stable checkpoint (>= 2 * checkpointInterval)',
        ),
        viewChangeTimeoutMs: param(
          'viewChangeTimeoutMs',
          'base view-change timeout, ms; doubles with each consecutive view change',
        ),
        maxBlockTxs: param('maxBlockTxs', 'most txs a proposer puts in a block'),
        maxBlockBytes: param('maxBlockBytes', 'most bytes of txs a proposer puts in a block'),
        blockIntervalMs: param(
          'blockIntervalMs',
          'how long a primary waits for txs before proposing a (possibly empty) block, ms',
        ),
      }),
      services: {
        description: 'each service\'s genesis config by service name (byte strings as "0x" hex)',
        type: 'object',
        default: {},
      },
    },
    { required: ['chainId', 'genesisTime', 'validators'] },
  ),
}

/** Every problem of a parsed genesis file (schema and the rules between fields); empty when good. */
export function genesisProblems(json: unknown): ConfigProblem[] {
  const problems = schemaProblems(GENESIS_SCHEMA, json)
  if (problems.length > 0) return problems
  const g = json as {
    validators: GenesisValidator[]
    consensus?: Partial<ConsensusParams>
    services?: object
  }
  const seen = new Map<string, number>()
  for (const [i, v] of g.validators.entries()) {
    const key = v.publicKey.toLowerCase()
    const first = seen.get(key)
    if (first !== undefined)
      problems.push({ field: `validators[${i}].publicKey`, message: `the same key as validators[${first}]` })
    else seen.set(key, i)
  }
  const consensus = { ...DEFAULT_CONSENSUS, ...g.consensus }
  if (consensus.watermarkWindow < 2 * consensus.checkpointInterval)
    problems.push({
      field: 'consensus.watermarkWindow',
      message: `must be >= 2 * checkpointInterval (${2 * consensus.checkpointInterval})`,
    })
  for (const [name, cfg] of Object.entries(g.services ?? {})) {
    try {
      valueFromJson(cfg, `services.${name}`)
    } catch (err) {
      const e = err as CityError
      const field = String(e.details?.field ?? `services.${name}`)
      problems.push({ field, message: e.message.slice(field.length + 2) })
    }
  }
  return problems
}

/**
 * Checks a genesis file without starting anything (for `cityledger config validate`): every
 * problem, or an empty list. Never throws; a file that cannot be read or parsed is one problem.
 */
export function validateGenesisFile(path: string): ConfigProblem[] {
  const read = readJsonFile(path)
  return 'problem' in read ? [read.problem] : genesisProblems(read.json)
}

/** A parsed genesis file, checked, with defaults filled in; BAD_GENESIS listing every problem. */
export function parseGenesis(json: unknown, source = 'genesis'): Genesis {
  const problems = genesisProblems(json)
  if (problems.length > 0)
    throw new CityError('BAD_GENESIS', problemsText(source, problems), { path: source, problems })
  const g = json as Genesis
  // Known keys only, in DEFAULT_CONSENSUS's order: `$comment` is a note, not a parameter.
  const given: Partial<ConsensusParams> = g.consensus ?? {}
  const consensus = { ...DEFAULT_CONSENSUS }
  for (const k of Object.keys(consensus) as (keyof ConsensusParams)[]) consensus[k] = given[k] ?? consensus[k]
  return {
    chainId: g.chainId,
    genesisTime: g.genesisTime,
    validators: g.validators.map((v) => ({ name: v.name, publicKey: v.publicKey.toLowerCase() })),
    consensus,
    services: g.services ?? {},
  }
}

export function loadGenesis(path: string): Genesis {
  const read = readJsonFile(path)
  if ('problem' in read)
    throw new CityError('BAD_GENESIS', problemsText(path, [read.problem]), { path, problems: [read.problem] })
  return parseGenesis(read.json, path)
}

/** Service genesis configs as runtime Values. */
export function serviceGenesis(g: Genesis): Record<string, Value> {
  const out: Record<string, Value> = {}
  for (const [name, cfg] of Object.entries(g.services)) out[name] = valueFromJson(cfg, `services.${name}`)
  return out
}

export function validatorKeys(g: Genesis): Uint8Array[] {
  return g.validators.map((v) => fromHex(v.publicKey, 'validator.publicKey'))
}

/** Names the encoding `genesisHash` hashes; a new encoding gets a new name. */
export const GENESIS_HASH_FORMAT = 'cityledger/genesis/v2'

/**
 * SHA-256 of the canonical encoding of the genesis (identifies the network together with chainId):
 * core's msgpack of the map `{ chainId, consensus, format, genesisTime, services, validators }` where
 * the keys of every map, at every depth, are sorted by their UTF-8 bytes, `format` is
 * GENESIS_HASH_FORMAT, validators are `{ name, publicKey }` in file order (the order is the
 * primaries' order) with the key as bytes, and services are the Values the services get (`"0x"` hex
 * as bytes). So the hash depends on what the chain runs on, not on how the file is laid out: the
 * same file after `jq -S` or with `$comment` notes has the same hash.
 */
export function genesisHash(g: Genesis): Uint8Array {
  // Once per loaded genesis: a node needed it three times at start (state sync, the store check, the
  // first status call), ~4 s each for a genesis of 500,000 roles. A Genesis is not edited once loaded;
  // a top-level field replaced since (a test building variants) is hashed again.
  const known = hashed.get(g)
  if (
    known &&
    known.chainId === g.chainId &&
    known.genesisTime === g.genesisTime &&
    known.validators === g.validators &&
    known.consensus === g.consensus &&
    known.services === g.services
  )
    return Uint8Array.from(known.hash)
  const hash = hashGenesis(g)
  hashed.set(g, { ...g, hash })
  return Uint8Array.from(hash)
}

const hashed = new WeakMap<Genesis, Genesis & { hash: Uint8Array }>()

function hashGenesis(g: Genesis): Uint8Array {
  return sha256(
    encode(
      sortedMaps({
        format: GENESIS_HASH_FORMAT,
        chainId: g.chainId,
        genesisTime: g.genesisTime,
        validators: g.validators.map((v) => ({ name: v.name, publicKey: fromHex(v.publicKey) })),
        consensus: { ...g.consensus },
        services: serviceGenesis(g),
      }),
    ),
  )
}

// Maps, not objects: a JS object lists integer-like keys ("2", "10") first whatever order they were
// added in, and the encoder writes a Map's entries in the order given.
function sortedMaps(v: Value): unknown {
  if (Array.isArray(v)) return v.map(sortedMaps)
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return v
  return new Map(utf8Sorted(Object.keys(v)).map((k) => [k, sortedMaps(v[k]!)]))
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false
  return true
}

/**
 * `keys` in the order of their UTF-8 bytes. ASCII keys (nearly all) compare as JS strings do; others
 * are encoded once each, not once per comparison (a genesis of 500,000 maps spent ~1 s on that).
 */
function utf8Sorted(keys: string[]): string[] {
  if (keys.every(isAscii)) return keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  return keys
    .map((k) => ({ k, b: Buffer.from(k) }))
    .sort((x, y) => Buffer.compare(x.b, y.b))
    .map((x) => x.k)
}

/**
 * The genesis hash of versions before GENESIS_HASH_FORMAT (it hashed `JSON.stringify(services)`, so
 * it depended on key order). Only to recognise a data folder such a version made; never for a new
 * chain.
 */
export function legacyGenesisHash(g: Genesis): Uint8Array {
  return sha256(
    encode([
      g.chainId,
      g.genesisTime,
      g.validators.map((v) => [v.name, fromHex(v.publicKey)]),
      Object.values(g.consensus),
      JSON.stringify(g.services),
    ]),
  )
}
