import type { ReplicaConfig, ResolvedConfig } from '../config.ts'
import { ConsensusError } from '../errors.ts'
import type { MessageKind } from '../messages/types.ts'
import { onBlock, onBlockRequest } from './blocks.ts'
import { onCheckpoint, onEpochEnd, onExecuted } from './checkpoints.ts'
import { onNewView } from './newView.ts'
import { onPrePrepare, onProposal, onValidated, onVote } from './normalCase.ts'
import { onStart } from './restore.ts'
import { ReplicaState } from './state.ts'
import { onCertificate, onStatus, onSyncBlock, retransmit } from './sync.ts'
import type { Input, Output, TimerId } from './types.ts'
import { onViewChange, startViewChange } from './viewChange.ts'

/** Sizes of the replica's collections, to check that memory stays bounded over long runs. */
export interface ReplicaFootprint {
  slots: number
  checkpointVoteHeights: number
  /** Validators with a VIEW-CHANGE kept (at most n). */
  viewChanges: number
  /** VIEW-CHANGEs kept in all (at most n * MAX_VIEW_CHANGES_PER_VALIDATOR). */
  viewChangeEntries: number
  /** Heights whose block is being fetched (within the window). */
  missingBlocks: number
  blocks: number
  votes: number
}

/** A read-only summary of a replica, for logs, metrics and tests. */
export interface ReplicaStatus {
  index: number
  view: number
  changingView: boolean
  primary: number
  committedHeight: number
  executedHeight: number
  stableCheckpoint: number
  started: boolean
  epoch: number
  /** Last height of the epoch, once known. */
  lastHeight?: number
  /** Everything up to `lastHeight` is committed: the node starts the next epoch's replica once it executed it. */
  finished: boolean
}

/**
 * A PBFT replica (Castro & Liskov, OSDI 1999, with signatures instead of MACs) as a deterministic,
 * synchronous state machine: `step(input)` returns what to do and never touches a network, a disk or
 * a clock. Sequence number = block height. See README.md for the protocol as implemented; the rules
 * are in one file per part of the paper (normalCase.ts, checkpoints.ts, viewChange.ts, newView.ts,
 * sync.ts, restore.ts).
 *
 * @example
 * const r = createReplica(config)
 * for (const out of r.step({ type: 'start', committedHeight: store.height, journal })) node.apply(out)
 * for (const out of r.step({ type: 'message', bytes, from: peerId })) node.apply(out)
 */
export class Replica {
  readonly config: ResolvedConfig
  private readonly r: ReplicaState

  constructor(config: ReplicaConfig) {
    this.r = new ReplicaState(config)
    this.config = this.r.config
  }

  /** Applies one input and returns the outputs to act on, in order. Never throws on bad input. */
  step(input: Input): Output[] {
    const r = this.r
    r.out = []
    try {
      this.dispatch(input)
    } catch (err) {
      if (!(err instanceof ConsensusError)) throw err
      const from = input.type === 'message' ? input.from : undefined
      r.out.push({
        type: 'reject',
        code: err.code,
        penalize: err.penalize,
        reason: err.message,
        ...(from !== undefined ? { from } : {}),
        ...(err.details.kind ? { kind: err.details.kind as MessageKind } : {}),
        ...(typeof err.details.offender === 'number' ? { offender: err.details.offender } : {}),
        ...(typeof err.details.epoch === 'number' ? { epoch: err.details.epoch } : {}),
      })
    }
    const out = r.out
    r.out = []
    return out
  }

  status(): ReplicaStatus {
    const r = this.r
    return {
      index: r.config.index,
      view: r.view,
      changingView: r.changing,
      primary: r.primaryOf(r.view),
      committedHeight: r.lastCommitted,
      executedHeight: r.executed,
      stableCheckpoint: r.stable.height,
      started: r.started,
      epoch: r.config.epoch,
      ...(r.lastHeight !== undefined ? { lastHeight: r.lastHeight } : {}),
      finished: r.finished,
    }
  }

  footprint(): ReplicaFootprint {
    const r = this.r
    let blocks = 0
    let votes = 0
    for (const s of r.slots.values()) {
      blocks += s.blocks.size
      for (const m of s.prepares.values()) votes += m.size
      for (const m of s.commits.values()) votes += m.size
    }
    let viewChangeEntries = 0
    for (const m of r.viewChanges.values()) viewChangeEntries += m.size
    return {
      slots: r.slots.size,
      checkpointVoteHeights: r.checkpointVotes.size,
      viewChanges: r.viewChanges.size,
      viewChangeEntries,
      missingBlocks: r.missing.size,
      blocks,
      votes,
    }
  }

  private dispatch(input: Input): void {
    const r = this.r
    if (input.type === 'start') return onStart(r, input)
    if (input.type === 'pending') return onPending(r, input.pending)
    if (!r.started) throw new ConsensusError('NOT_READY', 'replica not started')
    switch (input.type) {
      case 'message':
        return this.onMessage(input.bytes)
      case 'timeout':
        return this.onTimeout(input.timer, input.token)
      case 'proposal':
        return onProposal(r, input.height, input.view, input.block, input.digest)
      case 'validated':
        return onValidated(r, input.height, input.view, input.digest, input.ok)
      case 'executed':
        return onExecuted(r, input.height, input.stateDigest)
      case 'syncBlock':
        return onSyncBlock(r, input.height, input.block, input.digest, input.certificate)
      case 'epochEnd':
        return onEpochEnd(r, input.height)
    }
  }

  private onMessage(bytes: Uint8Array): void {
    const r = this.r
    const m = r.config.decodeMessage(bytes, r.config.maxMessageBytes)
    switch (m.type) {
      case 'prePrepare':
        return onPrePrepare(r, m)
      case 'prepare':
      case 'commit':
        return onVote(r, m.type, m.vote, m.signature)
      case 'checkpoint':
        return onCheckpoint(r, m.vote, m.signature)
      case 'viewChange':
        return onViewChange(r, m, bytes)
      case 'newView':
        return onNewView(r, m, bytes)
      case 'status':
        return onStatus(r, m)
      case 'certificate':
        return onCertificate(r, m.certificate, m.block)
      case 'blockRequest':
        return onBlockRequest(r, m)
      case 'block':
        return onBlock(r, m)
    }
  }

  private onTimeout(timer: TimerId, token: number): void {
    const r = this.r
    if (token !== r.tokens[timer]) return
    switch (timer) {
      case 'progress':
        r.progressIdle = r.progressFresh = false
        // View change trigger (paper 4.4): no progress within the timeout while in normal operation.
        if (!r.changing && !r.finished) startViewChange(r, r.view + 1)
        return
      case 'viewChange':
        // Paper 4.4: if the timer started on 2f+1 VIEW-CHANGEs expires before a valid NEW-VIEW, move to v+1.
        if (r.changing) startViewChange(r, r.view + 1)
        return
      case 'retransmit':
        retransmit(r)
        r.setTimer('retransmit', r.config.retransmitMs)
        return
    }
  }
}

/**
 * The node's mempool went from empty to non-empty or back. A replica with `heartbeatMs` whose node holds
 * no txs waits heartbeat + timeout for progress (its primary proposes only once per heartbeat); work
 * arriving brings the normal timeout back (paper 4.4: a backup with a pending request expects it to
 * execute within the timeout), and the mempool emptying (after the commit that took its last txs)
 * brings the idle one back. Each edge re-arms at most once per progress, and only a timer armed by
 * progress: a stream of txs, or a mempool that keeps emptying and filling without a commit, cannot
 * postpone a view change. Whatever the node reports, one starts at most heartbeat + 3 timeouts after
 * the last progress, and `timeout` after work arrives on an idle replica.
 */
function onPending(r: ReplicaState, pending: boolean): void {
  if (pending === r.pending) return
  r.pending = pending
  if (!r.started || r.changing || r.config.heartbeatMs === 0) return
  if (pending && r.progressIdle) {
    r.setTimer('progress', r.timeoutMs())
    r.progressFresh = false
  } else if (!pending && r.progressFresh && !r.progressIdle) {
    r.setTimer('progress', r.timeoutMs())
    r.progressFresh = false
  }
}

/** Creates a replica; feed it `{ type: 'start' }` (with the journal after a restart) before anything else. */
export function createReplica(config: ReplicaConfig): Replica {
  return new Replica(config)
}
