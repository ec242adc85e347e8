import type { CommitCertificate, SignatureCheck } from '@cityledger/core'
import type { CertificateErrorCode } from './certificate.ts'
import { type ValidatorSchedule, genesisSchedule, scheduleChange, verifyCertificateAt } from './epochs.ts'

/** One certificate of the chain a light client follows, with the change its block announced, if any. */
export interface CertifiedStep<E> {
  certificate: CommitCertificate
  /** The block certified here executed a validator-set change to `validators`; `evidence` shows it. */
  announce?: { validators: Uint8Array[]; evidence: E }
}

export interface FollowOptions<E> {
  chainId: string
  genesisValidators: readonly Uint8Array[]
  checkpointInterval: number
  verify: (check: SignatureCheck) => boolean
  /**
   * True when `evidence` proves that the block certified by `certificate` announces `validators`: in the
   * simulator, the block bytes (they hash to `certificate.blockHash` and carry the change); for the node, a
   * state proof against the state root the certified block commits to. Called only for a certificate
   * that already verified against the set of its height.
   */
  checkAnnouncement: (
    certificate: CommitCertificate,
    validators: readonly Uint8Array[],
    evidence: E,
  ) => boolean
}

export type FollowResult =
  | { ok: true; schedule: ValidatorSchedule; height: number }
  | {
      ok: false
      /** Index of the refused step. */
      index: number
      code: CertificateErrorCode | 'OUT_OF_ORDER' | 'BAD_ANNOUNCEMENT'
      detail?: string
      /** What was established before the refused step. */
      schedule: ValidatorSchedule
    }

/**
 * A light client's walk from genesis: every certificate must verify against the validator set of its
 * height as far as the client knows it, and the set changes only through an announcement carried by a
 * certificate the current set signed, checked by `checkAnnouncement`. The walk must include the
 * certificate of every block that announced a change (it cannot verify heights after an activation it
 * was not shown). Heights strictly ascending. A forged set (not announced by a block the old set
 * certified) is refused: its certificates do not verify against the set the client knows.
 *
 * @example
 * const r = followCertificates({ chainId, genesisValidators, checkpointInterval: 16, verify, checkAnnouncement }, steps)
 * if (r.ok) validatorsAt(r.schedule, height)
 */
export function followCertificates<E>(
  opts: FollowOptions<E>,
  steps: readonly CertifiedStep<E>[],
): FollowResult {
  let schedule = genesisSchedule(opts.genesisValidators, opts.checkpointInterval)
  let height = 0
  for (let i = 0; i < steps.length; i++) {
    const { certificate: c, announce } = steps[i]!
    if (!c || !(c.height > height)) return { ok: false, index: i, code: 'OUT_OF_ORDER', schedule }
    const v = verifyCertificateAt(c, schedule, opts.chainId, opts.verify)
    if (!v.ok)
      return { ok: false, index: i, code: v.code, ...(v.detail ? { detail: v.detail } : {}), schedule }
    height = c.height
    if (!announce) continue
    if (!opts.checkAnnouncement(c, announce.validators, announce.evidence))
      return {
        ok: false,
        index: i,
        code: 'BAD_ANNOUNCEMENT',
        detail: 'evidence does not show the change',
        schedule,
      }
    try {
      schedule = scheduleChange(schedule, c.height, announce.validators)
    } catch (err) {
      return { ok: false, index: i, code: 'BAD_ANNOUNCEMENT', detail: (err as Error).message, schedule }
    }
  }
  return { ok: true, schedule, height }
}
