// The consensus validator schedule of this chain, rebuilt from the runtime's records of executed
// validator-set changes (`_sys/validators/<seq>`, core runtime/validators.ts). Pure and deterministic:
// every node maps the same records to the same schedule.
import type { ValidatorChange } from '@cityledger/core'
import { type ValidatorSchedule, genesisSchedule, scheduleChange } from '@cityledger/consensus'

/** The schedule and the last record (seq) it includes. */
export interface ChainSchedule {
  schedule: ValidatorSchedule
  /** Records 1..seq are in `schedule` (0: none, the genesis set only). */
  seq: number
}

/** Epoch 0 only: the genesis validators, K = the genesis checkpoint interval. */
export function genesisChainSchedule(
  validators: readonly Uint8Array[],
  checkpointInterval: number,
): ChainSchedule {
  return { schedule: genesisSchedule(validators, checkpointInterval), seq: 0 }
}

/**
 * Adds the records after `s.seq`, in order. A record { height, executedAt, keys } becomes the epoch that
 * starts after activationHeight(x, K) with x = max(executedAt, height - 1, first height of the last
 * epoch): the new set signs from the first checkpoint boundary at or after `height` (never before the
 * height governance asked for), and a change executed while another is still pending waits for it
 * (the pending epoch's first height) instead of being refused. Records already included are skipped.
 */
export function extendSchedule(s: ChainSchedule, changes: readonly ValidatorChange[]): ChainSchedule {
  let { schedule, seq } = s
  for (const c of changes) {
    if (c.seq <= seq) continue
    if (c.seq !== seq + 1)
      throw new Error(`invariant broken: validator change ${c.seq} follows ${seq} (records must be in order)`)
    const last = schedule.epochs.at(-1)!
    const x = Math.max(c.executedAt, c.height - 1, last.firstHeight)
    schedule = scheduleChange(schedule, x, c.keys)
    seq = c.seq
  }
  return { schedule, seq }
}
