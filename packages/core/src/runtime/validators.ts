import type { Value } from '../codec/msgpack.ts'
import { CityError } from '../errors/index.ts'
import type { Layer } from './layer.ts'
import type { ServiceDefinition } from './service.ts'

/**
 * Validator-set changes are chain state, written by the runtime for the one service genesis names in
 * `_sys.validatorAuthority` (the governance service): its transactions get `ctx.scheduleValidators`.
 * Each executed change is one record, in execution order:
 *
 *   _sys/validators/<seq:8>  -> { height, executedAt, keys }   seq 1, 2, ...
 *   _sys/validators/n        -> the number of records
 *
 * `height` is the first height the change asks for, `executedAt` the block that executed it, `keys`
 * the whole new set (32-byte Ed25519 public keys, in the order consensus uses). The runtime knows
 * nothing of checkpoints: consensus maps a record to the first checkpoint boundary it can switch at
 * (see @cityledger/consensus epochs), the same on every node, from these two heights and the genesis K.
 * A light client proves a record with a state proof against a certified state root.
 */
export const validatorAuthorityKey = '_sys/validatorAuthority'
export const validatorCountKey = '_sys/validators/n'
export const validatorChangeKey = (seq: number): string => `_sys/validators/${String(seq).padStart(8, '0')}`

/** Most validators in a set the runtime records (the governance service allows as many). */
export const MAX_SCHEDULED_VALIDATORS = 128

/** One executed validator-set change (see the top of this file). */
export interface ValidatorChange {
  seq: number
  height: number
  executedAt: number
  keys: Uint8Array[]
}

const bad = (message: string) => new CityError('BAD_VALIDATORS', `scheduleValidators: ${message}`)

/**
 * `ctx.scheduleValidators` of the authority's transactions: from `height` (above the current block,
 * and above the last recorded change's height) on, `keys` is the validator set. Written in the tx's
 * layer, so it is dropped if the tx fails. Refused (`BAD_VALIDATORS`, the tx fails): anything but
 * 1..MAX_SCHEDULED_VALIDATORS distinct 32-byte keys, or a height not above both.
 */
export function scheduleValidators(layer: Layer, now: number, keys: unknown, height: unknown): void {
  if (!Array.isArray(keys) || keys.length < 1 || keys.length > MAX_SCHEDULED_VALIDATORS)
    throw bad(`keys: expected 1 to ${MAX_SCHEDULED_VALIDATORS} public keys`)
  const seen = new Set<string>()
  for (const [i, k] of keys.entries()) {
    if (!(k instanceof Uint8Array) || k.length !== 32) throw bad(`keys[${i}]: expected 32 bytes`)
    const hex = Buffer.from(k).toString('hex')
    if (seen.has(hex)) throw bad(`keys[${i}]: listed twice`)
    seen.add(hex)
  }
  if (typeof height !== 'number' || !Number.isSafeInteger(height) || height <= now)
    throw bad(`height must be an integer above ${now}`)
  const n = (layer.get(validatorCountKey) as number | undefined) ?? 0
  const last = n > 0 ? (layer.get(validatorChangeKey(n)) as { height: number } | undefined) : undefined
  if (last && height <= last.height)
    throw bad(`height ${height}: changes take effect in order, after the last one (${last.height})`)
  layer.set(validatorChangeKey(n + 1), {
    height,
    executedAt: now,
    keys: keys.map((k) => Uint8Array.from(k as Uint8Array)),
  })
  layer.set(validatorCountKey, n + 1)
}

/** The genesis write naming the validator authority (`_sys.validatorAuthority`), if any. */
export function genesisValidatorWrites(
  sys: Value | undefined,
  services: ReadonlyMap<string, ServiceDefinition>,
): [string, Value][] {
  const a = sys === undefined || sys === null ? undefined : (sys as Record<string, Value>).validatorAuthority
  if (a === undefined) return []
  if (typeof a !== 'string' || !services.has(a))
    throw new CityError(
      'BAD_GENESIS',
      '_sys.validatorAuthority: expected the name of a service of this chain',
    )
  return [[validatorAuthorityKey, a]]
}

/** The recorded changes with `seq > after`, oldest first. */
export function validatorChanges(layer: Layer, after = 0): ValidatorChange[] {
  const n = (layer.get(validatorCountKey) as number | undefined) ?? 0
  const out: ValidatorChange[] = []
  for (let seq = after + 1; seq <= n; seq++) {
    const r = layer.get(validatorChangeKey(seq)) as Omit<ValidatorChange, 'seq'> | undefined
    if (!r) throw new CityError('STORE_CORRUPT', `validator change ${seq} of ${n} is missing from state`)
    out.push({ seq, height: r.height, executedAt: r.executedAt, keys: r.keys })
  }
  return out
}
