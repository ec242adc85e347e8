import { type CommitCertificate, type SignatureCheck, toHex } from '@cityledger/core'
import { type CertificateVerdict, verifyCommitCertificate } from './certificate.ts'

// Validator-set reconfiguration: the validator set is a function of height (DESIGN.md, Consensus).
//
// A change executed at height h takes effect at a = activationHeight(h, K), the first checkpoint boundary
// strictly after h: the old set signs heights ..a, the new set signs a+1... Why every honest node agrees on
// where the old epoch ends: a is a function of h and K only, and h is the height of a committed block. Why
// no honest replica of the old epoch works above a: a primary only proposes head+1 (the node builds a block
// on its executed head) and a node validates height x only after executing x-1; so an honest replica that
// proposes or prepares any height x > a >= h+1 has executed h, learned a, and given its replica the cap
// (`epochEnd`), which then refuses x. A prepared or committed height above a in the old epoch would need
// f+1 honest prepares, so it cannot exist; NEW-VIEW re-proposals above a (nulls included) are skipped as
// well. The new epoch starts from the executed state of a, which is the same on every honest node.

/** One epoch: its index, the first height its validators sign, and the validators (fixed order). */
export interface Epoch {
  epoch: number
  firstHeight: number
  validators: readonly Uint8Array[]
}

/**
 * The validator set as a function of height: epoch 0 starts at height 1 with the genesis set; each later
 * epoch starts one height after the activation height of the change that announced it. Immutable: the
 * functions below return new schedules.
 */
export interface ValidatorSchedule {
  /** K, the checkpoint interval: epochs change only at multiples of it. */
  checkpointInterval: number
  /** Ascending by epoch and first height; the last one may not have started yet (announced, pending). */
  epochs: readonly Epoch[]
}

function checkKeys(validators: readonly Uint8Array[], field: string): void {
  if (!Array.isArray(validators) || validators.length < 1)
    throw new TypeError(`${field}: at least one validator is required`)
  const hex = validators.map((v) => {
    if (!(v instanceof Uint8Array) || v.length !== 32) throw new TypeError(`${field}: 32-byte keys expected`)
    return toHex(v)
  })
  if (new Set(hex).size !== hex.length) throw new TypeError(`${field}: duplicate public key`)
}

/** The schedule of a chain that has executed no change yet. */
export function genesisSchedule(
  validators: readonly Uint8Array[],
  checkpointInterval: number,
): ValidatorSchedule {
  if (!Number.isSafeInteger(checkpointInterval) || checkpointInterval < 1)
    throw new TypeError('checkpointInterval: expected a positive integer')
  checkKeys(validators, 'validators')
  return { checkpointInterval, epochs: [{ epoch: 0, firstHeight: 1, validators: [...validators] }] }
}

/** a = K * (floor(h / K) + 1): the first checkpoint boundary strictly after the height h of the change. */
export function activationHeight(executedAt: number, checkpointInterval: number): number {
  if (!Number.isSafeInteger(executedAt) || executedAt < 1)
    throw new TypeError('executedAt: expected a height >= 1')
  return checkpointInterval * (Math.floor(executedAt / checkpointInterval) + 1)
}

/** The epoch whose validators sign `height` (>= 1). */
export function epochAt(schedule: ValidatorSchedule, height: number): Epoch {
  if (!Number.isSafeInteger(height) || height < 1) throw new TypeError('height: expected an integer >= 1')
  let found = schedule.epochs[0]!
  for (const e of schedule.epochs) if (e.firstHeight <= height) found = e
  return found
}

/** The validators that sign `height`. */
export function validatorsAt(schedule: ValidatorSchedule, height: number): readonly Uint8Array[] {
  return epochAt(schedule, height).validators
}

/** The last height of `epoch`, or undefined while no change has been executed in it. */
export function lastHeightOf(schedule: ValidatorSchedule, epoch: number): number | undefined {
  const next = schedule.epochs.find((e) => e.epoch === epoch + 1)
  return next ? next.firstHeight - 1 : undefined
}

/**
 * The schedule after a change to `validators` executed in the block at `executedAt`: a new epoch from
 * activationHeight + 1. One change per epoch: a change executed while another is pending (announced, not
 * yet active at `executedAt`), or in the pending epoch itself before it starts, is refused; a node's
 * executor rejects such a block, so it never commits.
 */
export function scheduleChange(
  schedule: ValidatorSchedule,
  executedAt: number,
  validators: readonly Uint8Array[],
): ValidatorSchedule {
  checkKeys(validators, 'validators')
  const last = schedule.epochs.at(-1)!
  if (executedAt < last.firstHeight)
    throw new RangeError(`a change is already pending (epoch ${last.epoch} starts at ${last.firstHeight})`)
  const a = activationHeight(executedAt, schedule.checkpointInterval)
  return {
    checkpointInterval: schedule.checkpointInterval,
    epochs: [...schedule.epochs, { epoch: last.epoch + 1, firstHeight: a + 1, validators: [...validators] }],
  }
}

/**
 * The chain id an epoch's replica signs with: the chain id itself for epoch 0, `${chainId}--e${epoch}`
 * after (votes allow [a-z0-9-] only, 64 characters at most). Votes and certificates of two epochs can
 * never be confused (their signed bytes differ), and every codec format stays as it is. A chain with
 * epochs must not have '--' in its chain id.
 */
export function epochChainId(chainId: string, epoch: number): string {
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new TypeError('epoch: expected an integer >= 0')
  if (epoch === 0) return chainId
  if (chainId.includes('--')) throw new TypeError("chainId: must not contain '--' on a chain with epochs")
  const id = `${chainId}--e${epoch}`
  if (id.length > 64) throw new TypeError(`chainId: ${id} is longer than 64 characters`)
  return id
}

/** The epoch of `id` if it is an epoch chain id of `chainId` (0 for `chainId` itself), else undefined. */
export function epochOfChainId(chainId: string, id: string): number | undefined {
  if (id === chainId) return 0
  if (typeof id !== 'string' || !id.startsWith(`${chainId}--e`)) return undefined
  const rest = id.slice(chainId.length + 3)
  if (!/^[1-9][0-9]{0,14}$/.test(rest)) return undefined
  return Number(rest)
}

/**
 * Verifies a commit certificate against the validators of its height: the set and the epoch chain id
 * both come from `cert.height` through the schedule. Block sync and light clients use this one.
 */
export function verifyCertificateAt(
  cert: CommitCertificate,
  schedule: ValidatorSchedule,
  chainId: string,
  verify: (check: SignatureCheck) => boolean,
): CertificateVerdict {
  if (!cert || !Number.isSafeInteger(cert.height) || cert.height < 1)
    return { ok: false, code: 'MALFORMED', detail: 'height' }
  const e = epochAt(schedule, cert.height)
  return verifyCommitCertificate(cert, e.validators, epochChainId(chainId, e.epoch), verify)
}
