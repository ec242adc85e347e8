import {
  type Block,
  type CommitCertificate,
  type Tx,
  ZERO_HASH,
  encodeCertificate,
  equalBytes,
  sha256,
  toHex,
} from '@cityledger/core'
import type { Input, Output } from '@cityledger/consensus'
import { BlockBudget } from './blockBudget.ts'
import { CheckedBlocks, blockOfCommit } from './commitBlocks.ts'
import { DEFAULT_MAX_QUEUED_PER_PEER, type DriverOptions } from './driverOptions.ts'
import { type EpochRun, type ReplicaSet, singleReplica } from './epochReplicas.ts'
import { PeerShares } from './peerShares.ts'
import { EpochTimers, observeCommit } from './driverTimers.ts'

export {
  type ConsensusNet,
  DEFAULT_MAX_QUEUED_PER_PEER,
  type DriverClock,
  type DriverOptions,
  type ReplicaLike,
} from './driverOptions.ts'

type CommitOut = Extract<Output, { type: 'commit' }>
type ValidateOut = Extract<Output, { type: 'validate' }>
/** An input for the replica of `epoch` (undefined: the current one; messages may go on to the retired one). */
type Queued = { input: Input; epoch?: number } | { switchAfter: number; digest: Uint8Array }

/** At most one block sync per this many ms because a peer is in a later epoch (or this node has no replica). */
const LATER_EPOCH_SYNC_MS = 1000

/**
 * Feeds every input of the replica through one queue (messages, timers, proposals, validations,
 * executions), journals before it sends, and carries out the replica's outputs: CometBFT's
 * receiveRoutine in spirit. Blocks execute strictly in height order on a separate chain of promises
 * so that slow execution never reorders consensus inputs.
 */
export class ConsensusDriver {
  private readonly o: DriverOptions
  private readonly queue: Queued[] = []
  private readonly replicas: ReplicaSet
  private lastEpochSyncAt = Number.NEGATIVE_INFINITY
  /** Messages and bytes each peer has waiting in `queue`. */
  private readonly shares: PeerShares
  private dropped = 0
  private draining = false
  private stopped = false
  private readonly timers: EpochTimers
  /** Heights a replica asked us to propose, with the view and epoch it asked in (only head + 1 can be built). */
  private readonly proposalsWanted = new Map<number, { view: number; epoch: number }>()
  private proposeTimer: unknown
  private readonly validations: (ValidateOut & { epoch: number })[] = []
  private validating = false
  private readonly commits = new Map<number, CommitOut>()
  private committing: Promise<void> = Promise.resolve()
  private lastCommitAt: number
  private readonly proposedAt = new Map<string, number>()
  /** When this node proposed, or was asked to validate, a block (by hex digest), and in which view. */
  private readonly roundStart = new Map<string, { at: number; view: number }>()
  private readonly budget?: BlockBudget
  /** Blocks already validated (or built here), by hex digest: a commit does not decode them again. */
  private readonly checked = new CheckedBlocks()
  /** What the replica was last told with `pending` (reportPending). */
  private pendingReported = false
  view = 0

  constructor(opts: DriverOptions) {
    this.o = opts
    this.lastCommitAt = opts.clock.now()
    this.timers = new EpochTimers(opts.clock)
    this.shares = new PeerShares(opts.maxQueuedPerPeer ?? DEFAULT_MAX_QUEUED_PER_PEER)
    this.replicas = opts.replicas ?? singleReplica(opts.replica ?? { step: () => [] })
    if (opts.targetRoundMs !== undefined)
      this.budget = new BlockBudget({ maxTxs: opts.maxBlockTxs, targetRoundMs: opts.targetRoundMs })
  }

  /** Txs the next block this node proposes may hold (the genesis limit, or less while rounds are slow). */
  blockTxsCap(): number {
    return this.budget?.maxTxs ?? this.o.maxBlockTxs
  }

  /**
   * Queues an input; inputs are applied one at a time, in arrival order. Never blocks: a peer's message
   * over its share of the queue is dropped (false) and the peer penalised; consensus retransmits.
   */
  push(input: Input, epoch?: number): boolean {
    if (this.stopped) return false
    if (input.type === 'message' && input.from !== undefined) {
      const q = this.shares.admit(input.from, input.bytes.length)
      if (q) {
        this.dropped++
        this.o.logger.debug(
          { peer: input.from, queued: q.messages, bytes: q.bytes, dropped: this.dropped },
          'consensus queue full for this peer, message dropped',
        )
        this.o.net.penalize(input.from, 'queue:consensus messages over the per-peer bound')
        return false
      }
    }
    this.queue.push(epoch === undefined ? { input } : { input, epoch })
    if (!this.draining) void this.drain()
    return true
  }

  /** The replicas this driver feeds (by epoch). */
  get replicaSet(): ReplicaSet {
    return this.replicas
  }

  /** Inputs waiting now, and peer messages dropped so far because their peer's share was full. */
  queueStats(): { inputs: number; dropped: number } {
    return { inputs: this.queue.length, dropped: this.dropped }
  }

  private dequeued(item: Queued): void {
    if (!('input' in item)) return
    const { input } = item
    if (input.type === 'message' && input.from !== undefined)
      this.shares.release(input.from, input.bytes.length)
  }

  stop(): void {
    this.stopped = true
    this.timers.clear()
    if (this.proposeTimer) this.o.clock.clearTimeout(this.proposeTimer)
  }

  /** Resolves when queued inputs and pending commits are done (for orderly shutdown and tests). */
  async idle(): Promise<void> {
    // A stopped driver never drains its queue again: waiting for it to empty would hang shutdown.
    while (this.draining || (this.queue.length && !this.stopped)) await new Promise((r) => setImmediate(r))
    await this.committing
  }

  private async drain(): Promise<void> {
    this.draining = true
    try {
      while (this.queue.length && !this.stopped) {
        const item = this.queue.shift()!
        this.dequeued(item)
        if (!('input' in item)) {
          await this.switchEpoch(item.switchAfter, item.digest)
          continue
        }
        let { input } = item
        let run: EpochRun | undefined
        if (input.type === 'start') {
          const started = await this.replicas.start(input)
          if (!started) continue
          input = started
          run = this.replicas.current()
        } else run = item.epoch === undefined ? this.replicas.current() : this.replicas.run(item.epoch)
        if (input.type === 'message' && item.epoch === undefined) {
          await this.deliver(input, run)
          continue
        }
        if (!run) continue
        if (!(await this.stepRun(run, input))) return
      }
    } catch (err) {
      this.o.onFatal(err as Error)
    } finally {
      this.draining = false
    }
  }

  /** Steps one replica and carries out its outputs; false once the node must stop (a throwing step). */
  private async stepRun(run: EpochRun, input: Input): Promise<Output[] | undefined> {
    let outputs: Output[]
    try {
      outputs = run.replica.step(input)
    } catch (err) {
      // A throwing step is a bug in the replica: stop rather than run on with unknown state.
      this.o.onFatal(new Error(`consensus step failed on ${input.type}: ${(err as Error).stack ?? err}`))
      return undefined
    }
    await this.act(outputs, run)
    return outputs
  }

  /**
   * A peer's message: to the current epoch's replica; one it refuses as OTHER_EPOCH goes to the retired
   * replica of that epoch, and one of a later epoch (this node is behind) starts a block sync, rate-limited.
   * A node without a current replica (not in the set) gives it to the retired one and follows by sync.
   */
  private async deliver(
    input: Extract<Input, { type: 'message' }>,
    cur: EpochRun | undefined,
  ): Promise<void> {
    const old = this.replicas.retired()
    if (!cur) {
      if (old) await this.stepRun(old, input)
      this.syncHint()
      return
    }
    const other = (await this.stepRun(cur, input))?.find(
      (o) => o.type === 'reject' && o.code === 'OTHER_EPOCH',
    )
    const epoch = other?.type === 'reject' ? other.epoch : undefined
    if (epoch === undefined || this.replicas.current() !== cur) return
    if (old && epoch === old.epoch) await this.stepRun(old, input)
    else if (epoch > cur.epoch) this.syncHint()
  }

  private syncHint(): void {
    const now = this.o.clock.now()
    if (now - this.lastEpochSyncAt < LATER_EPOCH_SYNC_MS) return
    this.lastEpochSyncAt = now
    const head = this.o.ledger.head.height
    this.o.onSyncNeeded(head + 1, head + 1)
  }

  /** After the last height of an epoch executed: the next epoch's replica (if this key is in its set) starts. */
  private async switchEpoch(end: number, digest: Uint8Array): Promise<void> {
    const head = this.o.ledger.head.height
    const certificate = await this.o.headCertificate?.()
    const next = await this.replicas.switchEpoch(end, digest, {
      height: head,
      ...(certificate ? { certificate } : {}),
    })
    if (next) await this.stepRun(next.run, next.input)
  }

  private async act(outputs: Output[], run: EpochRun): Promise<void> {
    // Only the current epoch's replica is journalled and reported; a retired one answers laggards.
    const live = this.replicas.current() === run
    for (const out of outputs) {
      switch (out.type) {
        case 'journal':
          // Durable before anything after it is acted on (the paper's "log before send").
          if (live) await this.o.journal.append(out.entry)
          break
        case 'broadcast':
          this.o.net.broadcast(out.bytes)
          break
        case 'send':
          this.send(run, out.to, out.bytes)
          break
        case 'setTimer': {
          const { timer, token } = out
          this.timers.set(run.epoch, timer, out.ms, () =>
            this.push({ type: 'timeout', timer, token }, run.epoch),
          )
          break
        }
        case 'cancelTimer':
          this.timers.cancel(run.epoch, out.timer)
          break
        case 'requestProposal':
          this.proposalsWanted.set(out.height, { view: out.view, epoch: run.epoch })
          this.schedulePropose()
          break
        case 'validate':
          this.startRound(out.digest, out.view)
          this.validations.push({ ...out, epoch: run.epoch })
          void this.runValidations()
          break
        case 'commit':
          this.commits.set(out.height, out)
          this.scheduleCommits()
          break
        case 'requestSync':
          this.o.onSyncNeeded(out.fromHeight, out.toHeight)
          break
        case 'compactJournal':
          if (live) await this.o.journal.compact(out.stableHeight)
          break
        case 'reject':
          if (out.penalize && out.from) this.o.net.penalize(out.from, `consensus:${out.code}`)
          this.o.logger.debug(
            { code: out.code, from: out.from, kind: out.kind, reason: out.reason },
            'consensus input rejected',
          )
          break
        case 'viewChanged':
          if (!live) break
          if (out.view !== this.view && out.changing) this.o.metrics?.viewChanges.inc()
          this.view = out.view
          this.o.metrics?.view.set(out.view)
          this.o.logger.info(
            { view: out.view, changing: out.changing },
            out.changing ? 'view change started' : 'entered view',
          )
          break
        case 'stableCheckpoint':
          this.o.logger.debug({ height: out.height }, 'stable checkpoint')
          break
      }
    }
  }

  /** Proposes once the head is right below the wanted height and the batching delay has passed. */
  private schedulePropose(): void {
    if (this.proposeTimer || this.stopped) return
    const head = this.o.ledger.head
    for (const h of this.proposalsWanted.keys()) if (h <= head.height) this.proposalsWanted.delete(h)
    // A block names the state root of its parent, so only the height right above the head can be built;
    // the others are retried after each commit.
    const wanted = this.proposalsWanted.get(head.height + 1)
    if (wanted === undefined) return
    const want = { height: head.height + 1, view: wanted.view }
    const since = this.o.clock.now() - this.lastCommitAt
    const pending = this.o.mempool.size()
    const wait = pending > 0 ? this.o.blockIntervalMs - since : this.o.emptyBlockIntervalMs - since
    if (wait > 0) {
      // Re-check when the wait ends, or earlier when txs arrive (see `txsArrived`).
      this.proposeTimer = this.o.clock.setTimeout(
        () => {
          this.proposeTimer = undefined
          this.schedulePropose()
        },
        Math.min(wait, pending > 0 ? wait : this.o.blockIntervalMs),
      )
      return
    }
    this.proposalsWanted.delete(want.height)
    const txs = this.o.mempool.reap({ maxTxs: this.blockTxsCap(), maxBytes: this.o.maxBlockBytes })
    const block = this.o.ledger.propose(want.view, txs, this.o.wallClock(), this.o.publicKey)
    this.proposedAt.set(toHex(block.hash), this.o.clock.now())
    this.startRound(block.hash, want.view)
    this.checked.remember(block, txs)
    this.o.logger.debug({ height: want.height, view: want.view, txs: txs.length }, 'proposing')
    this.push(
      { type: 'proposal', height: want.height, view: want.view, block: block.bytes, digest: block.hash },
      wanted.epoch,
    )
  }

  /** Validates queued proposals whose parent is the head, in order; stale ones are dropped. */
  private async runValidations(): Promise<void> {
    if (this.validating) return
    this.validating = true
    try {
      for (;;) {
        const head = this.o.ledger.head
        // Drop requests for heights already committed.
        for (let i = this.validations.length - 1; i >= 0; i--) {
          if (this.validations[i]!.height <= head.height) this.validations.splice(i, 1)
        }
        const i = this.validations.findIndex((v) => v.height === head.height + 1)
        if (i < 0) return
        const v = this.validations.splice(i, 1)[0]!
        const result = await this.o.ledger.validate(v.block, (h) => this.o.mempool.get(h))
        const ok = result.ok && equalBytes(result.block.hash, v.digest)
        if (result.ok && ok) this.checked.remember(result.block, result.txs)
        if (!result.ok)
          this.o.logger.warn(
            { height: v.height, view: v.view, code: result.code, reason: result.message },
            'proposal refused',
          )
        if (!this.proposedAt.has(toHex(v.digest))) this.proposedAt.set(toHex(v.digest), this.o.clock.now())
        this.push({ type: 'validated', height: v.height, view: v.view, digest: v.digest, ok }, v.epoch)
      }
    } finally {
      this.validating = false
    }
  }

  private scheduleCommits(): void {
    this.committing = this.committing
      .then(() => this.runCommits())
      .catch((err) => this.o.onFatal(err as Error))
  }

  /** Executes committed blocks strictly in height order. */
  private async runCommits(): Promise<void> {
    for (;;) {
      const head = this.o.ledger.head
      for (const h of [...this.commits.keys()])
        if (h <= head.height) await this.checkSame(this.commits.get(h)!)
      const c = this.commits.get(head.height + 1)
      if (!c || this.stopped) return
      this.commits.delete(c.height)
      await this.applyCommit(c)
    }
  }

  private startRound(digest: Uint8Array, view: number): void {
    const hex = toHex(digest)
    if (!this.roundStart.has(hex)) this.roundStart.set(hex, { at: this.o.clock.now(), view })
    // Rounds that never commit (refused or superseded proposals) must not pile up.
    while (this.roundStart.size > 64) this.roundStart.delete(this.roundStart.keys().next().value!)
  }

  /** A commit for a height we already have must be for the same block (else the chain forked: stop). */
  private async checkSame(c: CommitOut): Promise<void> {
    this.commits.delete(c.height)
    if (c.isNull || equalBytes(c.digest, ZERO_HASH)) return
    const stored = await this.o.ledger.blockHashAt(c.height)
    if (stored && !equalBytes(stored, c.digest)) {
      throw new Error(
        `consensus committed ${toHex(c.digest)} at height ${c.height} but the store has ${toHex(stored)}`,
      )
    }
  }

  private async applyCommit(c: CommitOut): Promise<void> {
    const { chainId, ledger, mempool } = this.o
    const { block, txs } = await blockOfCommit(c, { chainId, ledger, mempool, checked: this.checked })
    await this.commitBlock(block, txs, encodeCertificate(c.certificate), c.certificate)
  }

  /**
   * For nodes without a replica (observers): commits a block that block sync fetched and whose
   * certificate checked out, on the same in-order commit chain as consensus commits.
   */
  commitSynced(c: CommitOut): Promise<void> {
    this.commits.set(c.height, c)
    this.scheduleCommits()
    return this.committing
  }

  /** Commits a block (from consensus or from sync) and tells the replica it was executed. */
  async commitBlock(
    block: Block,
    txs: Tx[],
    certBytes: Uint8Array,
    certificate: CommitCertificate,
  ): Promise<void> {
    const started = this.proposedAt.get(toHex(certificate.blockHash))
    const committed = await this.o.ledger.commit(block, txs, certBytes)
    this.lastCommitAt = this.o.clock.now()
    const m = this.o.metrics
    if (m)
      observeCommit(
        m,
        block,
        committed.results,
        started === undefined ? undefined : this.lastCommitAt - started,
      )
    const hex = toHex(certificate.blockHash)
    const round = this.roundStart.get(hex)
    // A round that spanned a view change measures the fault, not the block: not counted.
    if (round && round.view === certificate.view)
      this.budget?.observe(txs.length, this.lastCommitAt - round.at)
    m?.blockTxsCap.set(this.blockTxsCap())
    this.roundStart.delete(hex)
    this.proposedAt.delete(hex)
    this.checked.delete(hex)
    if (this.proposedAt.size > 1000) this.proposedAt.clear()
    this.o.mempool.update({ committed: txs, height: block.header.height })
    // The schedule takes in the changes this block executed before anything else is fed or built.
    const height = block.header.height
    const epochs = this.replicas.committed(height)
    this.reportPending()
    this.o.onCommitted({ block, txs, results: committed.results, blockEvents: committed.blockEvents })
    const stateDigest = checkpointDigest(block.hash, committed.stateRoot)
    this.push({ type: 'executed', height, stateDigest }, this.replicas.epochOf(height))
    // Before the next block is validated or built (those wait for this commit): the old set's end.
    if (epochs.epochEnd)
      this.push({ type: 'epochEnd', height: epochs.epochEnd.height }, epochs.epochEnd.epoch)
    if (epochs.switchAfter && !this.stopped) {
      this.queue.push({ switchAfter: height, digest: stateDigest })
      if (!this.draining) void this.drain()
    }
    this.schedulePropose()
    void this.runValidations()
  }

  /** New txs arrived: a waiting primary may propose sooner than the empty-block interval. */
  txsArrived(): void {
    this.reportPending()
    if (!this.proposalsWanted.has(this.o.ledger.head.height + 1) || !this.proposeTimer) return
    const since = this.o.clock.now() - this.lastCommitAt
    if (since >= this.o.blockIntervalMs) {
      this.o.clock.clearTimeout(this.proposeTimer)
      this.proposeTimer = undefined
      this.schedulePropose()
    }
  }

  private reportPending(): void {
    if (!this.o.reportPending) return
    const pending = this.o.mempool.size() > 0
    if (pending === this.pendingReported) return
    this.pendingReported = pending
    this.push({ type: 'pending', pending })
  }

  /** `send` of a run: validator `to` of its epoch, by key when it is not in the current epoch's set. */
  private send(run: EpochRun, to: number, bytes: Uint8Array): void {
    if (this.replicas.current() === run) return this.o.net.send(to, bytes)
    const key = run.validatorsHex[to]
    if (key !== undefined) this.o.net.sendKey?.(key, bytes)
  }
}

/** What checkpoints sign for a height: the block hash and the state root after it. */
export function checkpointDigest(blockHash: Uint8Array, stateRoot: Uint8Array): Uint8Array {
  return sha256(blockHash, stateRoot)
}
