import { readFileSync } from 'node:fs'
import { CHAIN_ID_RE, CityError, type Value, encode, fromHex, isHex, sha256 } from '@cityledger/core'
import { valueFromJson } from './json.ts'

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

export function parseGenesis(json: unknown, source = 'genesis'): Genesis {
  const bad = (what: string): never => {
    throw new CityError('BAD_GENESIS', `${source}: ${what}`)
  }
  if (json === null || typeof json !== 'object') bad('not a JSON object')
  const g = json as Record<string, unknown>
  if (typeof g.chainId !== 'string' || !CHAIN_ID_RE.test(g.chainId))
    bad('chainId: lowercase letters, digits, dashes')
  if (!Number.isSafeInteger(g.genesisTime) || (g.genesisTime as number) < 0)
    bad('genesisTime: ms since the epoch')
  if (!Array.isArray(g.validators) || g.validators.length < 1) bad('validators: a non-empty list')
  const seen = new Set<string>()
  for (const [i, v] of (g.validators as GenesisValidator[]).entries()) {
    if (!v || typeof v.name !== 'string' || !isHex(v.publicKey, 32))
      bad(`validators[${i}]: { name, publicKey (64 hex) }`)
    if (seen.has(v.publicKey.toLowerCase())) bad(`validators[${i}]: duplicate key`)
    seen.add(v.publicKey.toLowerCase())
  }
  const consensus = { ...DEFAULT_CONSENSUS, ...((g.consensus as object) ?? {}) } as ConsensusParams
  for (const [k, v] of Object.entries(consensus)) {
    if (!Number.isSafeInteger(v) || v <= 0) bad(`consensus.${k}: a positive integer`)
  }
  if (consensus.watermarkWindow < 2 * consensus.checkpointInterval)
    bad('consensus.watermarkWindow must be >= 2 * checkpointInterval')
  return {
    chainId: g.chainId as string,
    genesisTime: g.genesisTime as number,
    validators: (g.validators as GenesisValidator[]).map((v) => ({
      name: v.name,
      publicKey: v.publicKey.toLowerCase(),
    })),
    consensus,
    services: (g.services as Record<string, unknown>) ?? {},
  }
}

export function loadGenesis(path: string): Genesis {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new CityError('BAD_GENESIS', `cannot read ${path}: ${(err as Error).message}`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new CityError('BAD_GENESIS', `${path} is not valid JSON: ${(err as Error).message}`)
  }
  return parseGenesis(json, path)
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

/** SHA-256 of the canonical encoding of the genesis (identifies the network together with chainId). */
export function genesisHash(g: Genesis): Uint8Array {
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
