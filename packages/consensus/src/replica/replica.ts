import {
  type CommitCertificate,
  type Vote,
  VoteKind,
  equalBytes,
  toHex,
  voteSignatureCheck,
  voteSigningMessage,
} from '@cityledger/core'
import { type CertificateVerdict, makeVote, verifyVoteQuorum } from '../certificate.ts'
import { NULL_DIGEST, type ReplicaConfig, type ResolvedConfig, resolveConfig } from '../config.ts'
import { ConsensusError, type ConsensusErrorCode } from '../errors.ts'
import { type JournalEntry, restoreFromJournal } from '../journal.ts'
import {
  certificateMessage,
  consensusSigningMessage,
  decodeMessage,
  decodeViewChangeBody,
  encodeMessage,
  encodeNewViewBody,
  encodeStatusBody,
  encodeViewChangeBody,
} from '../messages/codec.ts'
import type {
  CheckpointProof,
  ConsensusMessage,
  MessageKind,
  NewViewBody,
  PreparedCertificate,
  Reproposal,
  SignatureEntry,
  ViewChangeBody,
} from '../messages/types.ts'
import { planNewView } from './newView.ts'
import type { Input, Output, TimerId } from './types.ts'

interface VoteRecord {
  hex: string
  digest: Uint8Array
  signature: Uint8Array
}

interface Proposal {
  view: number
  digest: Uint8Array
  hex: string
  block: Uint8Array
  /** The primary's prepare vote on (view, height, digest). */
  signature: Uint8Array
  validated: 'pending' | 'ok' | 'bad'
}

/** Everything known about one height inside the watermark window. */
interface Slot {
  height: number
  /** At most one accepted pre-prepare per view. */
  proposals: Map<number, Proposal>
  prepares: Map<number, Map<number, VoteRecord>>
  commits: Map<number, Map<number, VoteRecord>>
  sentPrepare: Map<number, string>
  sentCommit: Map<number, string>
  /** Own messages of a view, resent when the height stalls. */
  ownMessages: Map<number, { kind: MessageKind; bytes: Uint8Array }[]>
  /** Highest-view prepared certificate (survives view changes; goes into VIEW-CHANGE). */
  prepared?: { cert: PreparedCertificate; hex: string; block: Uint8Array }
  committed?: { digest: Uint8Array; block: Uint8Array; certificate: CommitCertificate }
  blocks: Map<string, Uint8Array>
  stall: number
}

interface ParsedViewChange {
  body: ViewChangeBody
  bodyBytes: Uint8Array
  signature: Uint8Array
  /** Wire bytes (with blocks) as received or sent. */
  bytes: Uint8Array
  blocks: Map<string, Uint8Array>
}

/** Sizes of the replica's collections, to check that memory stays bounded over long runs. */
export interface ReplicaFootprint {
  slots: number
  checkpointVoteHeights: number
  viewChanges: number
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
}

const MAX_CHECKPOINT_HEIGHTS_PER_VALIDATOR = 4

/**
 * A PBFT replica (Castro & Liskov, OSDI 1999, with signatures instead of MACs) as a deterministic,
 * synchronous state machine: `step(input)` returns what to do and never touches a network, a disk or
 * a clock. Sequence number = block height. See README.md for the protocol as implemented.
 *
 * @example
 * const r = createReplica(config)
 * for (const out of r.step({ type: 'start', committedHeight: store.height, journal })) node.apply(out)
 * for (const out of r.step({ type: 'message', bytes, from: peerId })) node.apply(out)
 */
export class Replica {
  readonly config: ResolvedConfig
  private out: Output[] = []
  private started = false
  private view = 0
  private changing = false
  private lastCommitted = 0
  private executed = 0
  private stable: CheckpointProof
  private readonly slots = new Map<number, Slot>()
  private readonly checkpointVotes = new Map<number, Map<number, VoteRecord>>()
  private ownCheckpoint?: { height: number; bytes: Uint8Array }
  private readonly viewChanges = new Map<number, ParsedViewChange>()
  private newViewBytes?: Uint8Array
  private newViewSent = -1
  private viewChangeTimerFor = -1
  private nextProposal = 1
  private backoff = 0
  private readonly tokens: Record<TimerId, number> = { progress: 0, viewChange: 0, retransmit: 0 }
  private ticksWithoutCommit = 0
  private committedAtLastTick = -1

  constructor(config: ReplicaConfig) {
    this.config = resolveConfig(config)
    this.stable = { height: 0, digest: this.config.genesisDigest, signatures: [] }
  }

  /** Applies one input and returns the outputs to act on, in order. Never throws on bad input. */
  step(input: Input): Output[] {
    this.out = []
    try {
      this.dispatch(input)
    } catch (err) {
      if (!(err instanceof ConsensusError)) throw err
      const from = input.type === 'message' ? input.from : undefined
      this.out.push({
        type: 'reject',
        code: err.code,
        penalize: err.penalize,
        reason: err.message,
        ...(from !== undefined ? { from } : {}),
        ...(err.details.kind ? { kind: err.details.kind as MessageKind } : {}),
        ...(typeof err.details.offender === 'number' ? { offender: err.details.offender } : {}),
      })
    }
    const out = this.out
    this.out = []
    return out
  }

  status(): ReplicaStatus {
    return {
      index: this.config.index,
      view: this.view,
      changingView: this.changing,
      primary: this.primaryOf(this.view),
      committedHeight: this.lastCommitted,
      executedHeight: this.executed,
      stableCheckpoint: this.stable.height,
      started: this.started,
    }
  }

  footprint(): ReplicaFootprint {
    let blocks = 0
    let votes = 0
    for (const s of this.slots.values()) {
      blocks += s.blocks.size
      for (const m of s.prepares.values()) votes += m.size
      for (const m of s.commits.values()) votes += m.size
    }
    return {
      slots: this.slots.size,
      checkpointVoteHeights: this.checkpointVotes.size,
      viewChanges: this.viewChanges.size,
      blocks,
      votes,
    }
  }

  // ---------------------------------------------------------------- dispatch

  private dispatch(input: Input): void {
    if (input.type === 'start') return this.onStart(input)
    if (!this.started) throw new ConsensusError('NOT_READY', 'replica not started')
    switch (input.type) {
      case 'message':
        return this.onMessage(input.bytes)
      case 'timeout':
        return this.onTimeout(input.timer, input.token)
      case 'proposal':
        return this.onProposal(input.height, input.view, input.block, input.digest)
      case 'validated':
        return this.onValidated(input.height, input.view, input.digest, input.ok)
      case 'executed':
        return this.onExecuted(input.height, input.stateDigest)
      case 'syncBlock':
        return this.onSyncBlock(input.height, input.block, input.digest, input.certificate)
    }
  }

  private onMessage(bytes: Uint8Array): void {
    const m = decodeMessage(bytes, { maxBytes: this.config.maxMessageBytes })
    switch (m.type) {
      case 'prePrepare':
        return this.onPrePrepare(m)
      case 'prepare':
      case 'commit':
        return this.onVote(m.type, m.vote, m.signature)
      case 'checkpoint':
        return this.onCheckpoint(m.vote, m.signature)
      case 'viewChange':
        return this.onViewChange(m, bytes)
      case 'newView':
        return this.onNewView(m, bytes)
      case 'status':
        return this.onStatus(m)
      case 'certificate':
        return this.onCertificate(m.certificate, m.block)
    }
  }

  // ---------------------------------------------------------------- helpers

  private primaryOf(view: number): number {
    return view % this.config.n
  }

  private get isPrimary(): boolean {
    return this.primaryOf(this.view) === this.config.index
  }

  private fail(code: ConsensusErrorCode, message: string, kind?: MessageKind, offender?: number): never {
    // Refusals are routine (duplicates and late votes on any lossy network): skip the stack trace they never need.
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    try {
      throw new ConsensusError(code, message, {
        ...(kind ? { kind } : {}),
        ...(offender !== undefined ? { offender } : {}),
      })
    } finally {
      Error.stackTraceLimit = limit
    }
  }

  private validatorIndex(key: Uint8Array, kind: MessageKind): number {
    const i = this.config.indexOf.get(toHex(key))
    if (i === undefined) this.fail('UNKNOWN_VALIDATOR', `${kind}: signer is not a validator`, kind)
    return i
  }

  private checkChain(chainId: string, kind: MessageKind): void {
    if (chainId !== this.config.chainId) this.fail('WRONG_CHAIN', `${kind}: chain ${chainId}`, kind)
  }

  private checkWindow(height: number, kind: MessageKind): void {
    if (height <= this.stable.height)
      this.fail('BELOW_WATERMARK', `${kind}: height ${height} <= stable ${this.stable.height}`, kind)
    if (height > this.stable.height + this.config.windowSize) {
      this.fail(
        'ABOVE_WATERMARK',
        `${kind}: height ${height} above window ${this.stable.height + this.config.windowSize}`,
        kind,
      )
    }
  }

  private checkVoteSignature(vote: Vote, signature: Uint8Array, kind: MessageKind): void {
    if (!this.config.verify(voteSignatureCheck(vote, signature)))
      this.fail('BAD_SIGNATURE', `${kind}: bad signature`, kind)
  }

  private digestOf(block: Uint8Array): Uint8Array | undefined {
    try {
      const d = this.config.blockDigest(block)
      return d instanceof Uint8Array && d.length === 32 ? d : undefined
    } catch {
      return undefined
    }
  }

  private checkBlock(digest: Uint8Array, block: Uint8Array, kind: MessageKind): void {
    if (equalBytes(digest, NULL_DIGEST)) {
      if (block.length !== 0) this.fail('DIGEST_MISMATCH', `${kind}: a null block carries no bytes`, kind)
      return
    }
    const d = this.digestOf(block)
    if (!d || !equalBytes(d, digest))
      this.fail('DIGEST_MISMATCH', `${kind}: block does not hash to the digest`, kind)
  }

  private vote(
    kind: VoteKind,
    view: number,
    height: number,
    digest: Uint8Array,
  ): { vote: Vote; signature: Uint8Array } {
    const vote = makeVote(this.config.chainId, kind, view, height, digest, this.config.publicKey)
    return { vote, signature: this.config.sign(voteSigningMessage(vote)) }
  }

  private quorumCheck(
    signatures: readonly SignatureEntry[],
    voteFor: (v: Uint8Array) => Vote,
  ): CertificateVerdict {
    const members = new Set(this.config.validatorHex)
    return verifyVoteQuorum(signatures, voteFor, members, this.config.quorum, this.config.verify)
  }

  private slot(height: number): Slot {
    let s = this.slots.get(height)
    if (!s) {
      s = {
        height,
        proposals: new Map(),
        prepares: new Map(),
        commits: new Map(),
        sentPrepare: new Map(),
        sentCommit: new Map(),
        ownMessages: new Map(),
        blocks: new Map(),
        stall: 0,
      }
      this.slots.set(height, s)
    }
    return s
  }

  private recordVote(
    map: Map<number, Map<number, VoteRecord>>,
    view: number,
    who: number,
    digest: Uint8Array,
    signature: Uint8Array,
  ): void {
    let m = map.get(view)
    if (!m) map.set(view, (m = new Map()))
    m.set(who, { hex: toHex(digest), digest, signature })
  }

  private send(kind: MessageKind, bytes: Uint8Array, to?: number): void {
    if (to === undefined) this.out.push({ type: 'broadcast', kind, bytes })
    else if (to !== this.config.index) this.out.push({ type: 'send', to, kind, bytes })
  }

  private remember(slot: Slot, view: number, kind: MessageKind, bytes: Uint8Array): void {
    let l = slot.ownMessages.get(view)
    if (!l) slot.ownMessages.set(view, (l = []))
    l.push({ kind, bytes })
  }

  private journal(entry: JournalEntry): void {
    this.out.push({ type: 'journal', entry })
  }

  private timeoutMs(): number {
    return this.config.viewTimeoutMs * 2 ** Math.min(this.backoff, this.config.maxBackoffExponent)
  }

  private setTimer(timer: TimerId, ms: number): void {
    this.tokens[timer]++
    this.out.push({ type: 'setTimer', timer, ms, token: this.tokens[timer] })
  }

  private cancelTimer(timer: TimerId): void {
    this.tokens[timer]++
    this.out.push({ type: 'cancelTimer', timer })
  }

  private sortedSignatures(votes: Map<number, VoteRecord>, hex: string): SignatureEntry[] {
    const idx = [...votes.entries()].filter(([, r]) => r.hex === hex).map(([i]) => i)
    idx.sort((a, b) => a - b)
    return idx
      .slice(0, this.config.quorum)
      .map((i) => ({ validator: this.config.validators[i]!, signature: votes.get(i)!.signature }))
  }

  private countFor(votes: Map<number, VoteRecord> | undefined, hex: string): number {
    if (!votes) return 0
    let c = 0
    for (const r of votes.values()) if (r.hex === hex) c++
    return c
  }

  // ---------------------------------------------------------------- start / restart

  private onStart(input: Extract<Input, { type: 'start' }>): void {
    if (this.started) throw new ConsensusError('DUPLICATE', 'replica already started')
    this.started = true
    this.lastCommitted = this.executed = input.committedHeight ?? 0
    this.nextProposal = this.lastCommitted + 1
    if (input.journal?.length) this.restore(input.journal)
    if (this.changing) {
      const own = this.viewChanges.get(this.config.index)
      if (own) this.send('viewChange', own.bytes)
      this.afterViewChangeUpdate()
    } else {
      this.setTimer('progress', this.timeoutMs())
    }
    this.setTimer('retransmit', this.config.retransmitMs)
    if (this.lastCommitted < this.stable.height) this.requestSync()
    this.maybePropose()
  }

  /** Rebuilds what this replica signed from its journal, so that it never signs anything contradicting it. */
  private restore(entries: readonly JournalEntry[]): void {
    const r = restoreFromJournal(entries)
    this.view = r.view
    this.changing = r.changingView
    if (r.stable) this.stable = r.stable
    if (r.changingView && r.viewChangeBytes) {
      const m = decodeMessage(r.viewChangeBytes, { maxBytes: this.config.maxMessageBytes })
      if (m.type === 'viewChange')
        this.viewChanges.set(this.config.index, this.parsedViewChange(m, r.viewChangeBytes))
    }
    if (!r.changingView && r.newViewBytes) {
      this.newViewBytes = r.newViewBytes
      this.newViewSent = r.view
    }
    if (this.config.faultInjection.forgetVotesOnRestart) return
    const inWindow = (h: number) => h > this.stable.height && h <= this.stable.height + this.config.windowSize
    const me = this.config.index
    for (const e of r.proposals) {
      if (!inWindow(e.height)) continue
      const s = this.slot(e.height)
      const { vote, signature } = this.vote(VoteKind.prepare, e.view, e.height, e.digest)
      s.proposals.set(e.view, {
        view: e.view,
        digest: e.digest,
        hex: toHex(e.digest),
        block: e.block,
        signature,
        validated: 'ok',
      })
      s.blocks.set(toHex(e.digest), e.block)
      this.recordVote(s.prepares, e.view, me, e.digest, signature)
      s.sentPrepare.set(e.view, toHex(e.digest))
      if (!equalBytes(e.digest, NULL_DIGEST))
        this.remember(
          s,
          e.view,
          'prePrepare',
          encodeMessage({ type: 'prePrepare', vote, signature, block: e.block }),
        )
      if (e.view === this.view) this.nextProposal = Math.max(this.nextProposal, e.height + 1)
    }
    for (const e of r.prepares) {
      if (!inWindow(e.height)) continue
      const s = this.slot(e.height)
      const primary = this.primaryOf(e.view)
      s.proposals.set(e.view, {
        view: e.view,
        digest: e.digest,
        hex: toHex(e.digest),
        block: e.block,
        signature: e.primarySignature,
        validated: 'ok',
      })
      s.blocks.set(toHex(e.digest), e.block)
      this.recordVote(s.prepares, e.view, primary, e.digest, e.primarySignature)
      const { vote, signature } = this.vote(VoteKind.prepare, e.view, e.height, e.digest)
      this.recordVote(s.prepares, e.view, me, e.digest, signature)
      s.sentPrepare.set(e.view, toHex(e.digest))
      this.remember(s, e.view, 'prepare', encodeMessage({ type: 'prepare', vote, signature }))
    }
    for (const e of r.commits) {
      if (!inWindow(e.height)) continue
      const s = this.slot(e.height)
      const hex = toHex(e.digest)
      s.blocks.set(hex, e.block)
      if (!s.prepared || s.prepared.cert.view < e.view) s.prepared = { cert: e.prepared, hex, block: e.block }
      const { vote, signature } = this.vote(VoteKind.commit, e.view, e.height, e.digest)
      this.recordVote(s.commits, e.view, me, e.digest, signature)
      s.sentCommit.set(e.view, hex)
      this.remember(s, e.view, 'commit', encodeMessage({ type: 'commit', vote, signature }))
    }
  }

  // ---------------------------------------------------------------- normal case

  /** The primary asks its node for blocks for the next heights, within the high watermark and the in-flight limit. */
  private maybePropose(): void {
    if (this.changing || !this.isPrimary) return
    this.nextProposal = Math.max(this.nextProposal, this.lastCommitted + 1, this.stable.height + 1)
    const high = this.stable.height + this.config.windowSize
    while (this.nextProposal <= high && this.nextProposal - this.lastCommitted <= this.config.maxInFlight) {
      const h = this.nextProposal++
      if (this.slots.get(h)?.proposals.has(this.view)) continue
      this.out.push({ type: 'requestProposal', height: h, view: this.view })
    }
  }

  /** Pre-prepare phase (paper 4.2): the primary assigns the block to (view, height) and multicasts it. */
  private onProposal(height: number, view: number, block: Uint8Array, digest: Uint8Array): void {
    if (this.changing || view !== this.view || !this.isPrimary) return
    if (
      height <= this.lastCommitted ||
      height <= this.stable.height ||
      height > this.stable.height + this.config.windowSize
    )
      return
    const s = this.slot(height)
    if (s.proposals.has(view) || s.committed) return
    const d = this.digestOf(block)
    if (!d || !equalBytes(d, digest) || equalBytes(digest, NULL_DIGEST)) {
      throw new ConsensusError(
        'DIGEST_MISMATCH',
        `proposal for height ${height}: block does not hash to its digest`,
      )
    }
    const { vote, signature } = this.vote(VoteKind.prepare, view, height, digest)
    const hex = toHex(digest)
    this.journal({ type: 'proposal', view, height, digest, block })
    s.proposals.set(view, { view, digest, hex, block, signature, validated: 'ok' })
    s.blocks.set(hex, block)
    this.recordVote(s.prepares, view, this.config.index, digest, signature)
    s.sentPrepare.set(view, hex)
    const bytes = encodeMessage({ type: 'prePrepare', vote, signature, block })
    this.remember(s, view, 'prePrepare', bytes)
    this.send('prePrepare', bytes)
    this.checkPrepared(s)
  }

  /**
   * A backup accepts a pre-prepare (paper 4.2) if it is signed by the primary of its current view, its
   * height is between the watermarks, the block matches the digest, and it has not accepted a different
   * one for the same view and height. It then asks the node to validate the block before preparing.
   */
  private onPrePrepare(m: Extract<ConsensusMessage, { type: 'prePrepare' }>): void {
    const v = m.vote
    const kind = 'prePrepare'
    this.checkChain(v.chainId, kind)
    const who = this.validatorIndex(v.validator, kind)
    if (v.view < this.view) this.fail('OLD_VIEW', `prePrepare for view ${v.view} < ${this.view}`, kind)
    if (v.view > this.view) this.fail('FUTURE_VIEW', `prePrepare for view ${v.view} > ${this.view}`, kind)
    if (this.changing) this.fail('NOT_READY', 'prePrepare during a view change', kind)
    if (who !== this.primaryOf(v.view))
      this.fail('NOT_PRIMARY', `prePrepare from ${who}, primary is ${this.primaryOf(v.view)}`, kind)
    this.checkWindow(v.height, kind)
    if (v.height <= this.lastCommitted) this.fail('STALE', `height ${v.height} already committed`, kind)
    if (equalBytes(v.digest, NULL_DIGEST))
      this.fail('DIGEST_MISMATCH', 'null digest outside a NEW-VIEW', kind)
    const s = this.slots.get(v.height)
    const prev = s?.proposals.get(v.view)
    const hex = toHex(v.digest)
    if (prev && prev.hex === hex) this.fail('DUPLICATE', 'prePrepare already accepted', kind)
    this.checkVoteSignature(v, m.signature, kind)
    if (prev) this.fail('EQUIVOCATION', `primary proposed two blocks at (${v.view}, ${v.height})`, kind, who)
    const primaryVote = s?.prepares.get(v.view)?.get(who)
    if (primaryVote && primaryVote.hex !== hex)
      this.fail('EQUIVOCATION', "pre-prepare contradicts the primary's prepare", kind, who)
    this.checkBlock(v.digest, m.block, kind)
    const slot = this.slot(v.height)
    slot.proposals.set(v.view, {
      view: v.view,
      digest: v.digest,
      hex,
      block: m.block,
      signature: m.signature,
      validated: 'pending',
    })
    slot.blocks.set(hex, m.block)
    this.recordVote(slot.prepares, v.view, who, v.digest, m.signature)
    this.out.push({ type: 'validate', height: v.height, view: v.view, digest: v.digest, block: m.block })
    this.checkCommitted(slot)
  }

  private onValidated(height: number, view: number, digest: Uint8Array, ok: boolean): void {
    const s = this.slots.get(height)
    const p = s?.proposals.get(view)
    if (!s || !p || !equalBytes(p.digest, digest) || p.validated !== 'pending') return
    p.validated = ok ? 'ok' : 'bad'
    if (!ok) {
      this.out.push({
        type: 'reject',
        code: 'INVALID_BLOCK',
        penalize: true,
        reason: `invalid block at (${view}, ${height})`,
        kind: 'prePrepare',
        offender: this.primaryOf(view),
      })
      return
    }
    this.tryPrepare(s)
  }

  /** Prepare phase (paper 4.2): a backup that accepted and validated the pre-prepare multicasts PREPARE (journalled first). */
  private tryPrepare(s: Slot): void {
    const view = this.view
    if (this.changing) return
    const p = s.proposals.get(view)
    if (!p || p.validated !== 'ok') return
    if (!s.sentPrepare.has(view)) {
      if (this.primaryOf(view) === this.config.index) return
      this.journal({
        type: 'prepare',
        view,
        height: s.height,
        digest: p.digest,
        block: p.block,
        primarySignature: p.signature,
      })
      const { vote, signature } = this.vote(VoteKind.prepare, view, s.height, p.digest)
      this.recordVote(s.prepares, view, this.config.index, p.digest, signature)
      s.sentPrepare.set(view, p.hex)
      const bytes = encodeMessage({ type: 'prepare', vote, signature })
      this.remember(s, view, 'prepare', bytes)
      this.send('prepare', bytes)
    }
    this.checkPrepared(s)
  }

  /**
   * prepared(m, v, n, i) (paper 4.2): the pre-prepare plus matching prepares from 2f+1 validators in all
   * (the primary's pre-prepare counts as its prepare). The certificate is journalled with the commit vote
   * before COMMIT is multicast, so a restarted replica still reports it in VIEW-CHANGEs.
   */
  private checkPrepared(s: Slot): void {
    const view = this.view
    if (this.changing) return
    const p = s.proposals.get(view)
    if (!p || s.sentPrepare.get(view) !== p.hex || s.sentCommit.has(view)) return
    const votes = s.prepares.get(view)
    if (this.countFor(votes, p.hex) < this.config.quorum) return
    const cert: PreparedCertificate = {
      height: s.height,
      view,
      digest: p.digest,
      signatures: this.sortedSignatures(votes!, p.hex),
    }
    if (!s.prepared || s.prepared.cert.view < view) s.prepared = { cert, hex: p.hex, block: p.block }
    this.journal({ type: 'commit', view, height: s.height, digest: p.digest, block: p.block, prepared: cert })
    const { vote, signature } = this.vote(VoteKind.commit, view, s.height, p.digest)
    this.recordVote(s.commits, view, this.config.index, p.digest, signature)
    s.sentCommit.set(view, p.hex)
    const bytes = encodeMessage({ type: 'commit', vote, signature })
    this.remember(s, view, 'commit', bytes)
    this.send('commit', bytes)
    this.checkCommitted(s)
  }

  /** PREPARE and COMMIT (paper 4.2): accepted for views v-1..v+1 (commits of the previous view still prove commitment). */
  private onVote(kind: 'prepare' | 'commit', v: Vote, signature: Uint8Array): void {
    this.checkChain(v.chainId, kind)
    const who = this.validatorIndex(v.validator, kind)
    const oldest = kind === 'prepare' ? this.view : this.view - 1
    if (v.view < oldest) this.fail('OLD_VIEW', `${kind} for view ${v.view}`, kind)
    if (v.view > this.view + 1) this.fail('FUTURE_VIEW', `${kind} for view ${v.view}`, kind)
    this.checkWindow(v.height, kind)
    const s = this.slots.get(v.height)
    if (v.height <= this.lastCommitted || s?.committed)
      this.fail('STALE', `height ${v.height} already committed`, kind)
    const map = kind === 'prepare' ? s?.prepares : s?.commits
    const prev = map?.get(v.view)?.get(who)
    const hex = toHex(v.digest)
    if (prev && prev.hex === hex) this.fail('DUPLICATE', `${kind} already counted`, kind)
    this.checkVoteSignature(v, signature, kind)
    if (prev)
      this.fail('EQUIVOCATION', `validator ${who} sent two ${kind}s at (${v.view}, ${v.height})`, kind, who)
    const slot = this.slot(v.height)
    this.recordVote(kind === 'prepare' ? slot.prepares : slot.commits, v.view, who, v.digest, signature)
    if (kind === 'prepare') this.checkPrepared(slot)
    else this.checkCommitted(slot)
  }

  /**
   * committed-local (paper 4.2), signature variant: 2f+1 matching commits of one view are a certificate
   * that f+1 honest validators prepared the block, so no other block can commit at this height. The
   * block must be known (from a pre-prepare, a NEW-VIEW or a certificate).
   */
  private checkCommitted(s: Slot): void {
    if (s.committed) return
    for (const [view, votes] of s.commits) {
      const tally = new Map<string, number>()
      for (const r of votes.values()) tally.set(r.hex, (tally.get(r.hex) ?? 0) + 1)
      for (const [hex, count] of tally) {
        if (count < this.config.quorum) continue
        const sigs = this.sortedSignatures(votes, hex)
        const digest = [...votes.values()].find((r) => r.hex === hex)!.digest
        const block = equalBytes(digest, NULL_DIGEST) ? new Uint8Array(0) : s.blocks.get(hex)
        if (!block) continue
        s.committed = {
          digest,
          block,
          certificate: {
            chainId: this.config.chainId,
            view,
            height: s.height,
            blockHash: digest,
            signatures: sigs,
          },
        }
        this.drainCommits()
        return
      }
    }
  }

  /** Execution strictly in height order (paper 4.2: requests execute in sequence-number order). */
  private drainCommits(): void {
    let progressed = false
    for (
      let s = this.slots.get(this.lastCommitted + 1);
      s?.committed;
      s = this.slots.get(this.lastCommitted + 1)
    ) {
      const c = s.committed
      this.emitCommit(s.height, c.digest, c.block, c.certificate)
      progressed = true
    }
    if (progressed) this.onProgress()
  }

  private emitCommit(
    height: number,
    digest: Uint8Array,
    block: Uint8Array,
    certificate: CommitCertificate,
  ): void {
    const isNull = equalBytes(digest, NULL_DIGEST)
    this.out.push({ type: 'commit', height, view: certificate.view, digest, block, isNull, certificate })
    this.lastCommitted = height
  }

  private onProgress(): void {
    this.backoff = 0
    if (!this.changing) this.setTimer('progress', this.timeoutMs())
    this.maybePropose()
  }

  // ---------------------------------------------------------------- checkpoints

  /** Checkpoints (paper 4.3): after executing a multiple of K, multicast a signed checkpoint of the state digest. */
  private onExecuted(height: number, stateDigest: Uint8Array): void {
    if (height <= this.executed || height > this.lastCommitted) return
    this.executed = height
    if (height % this.config.checkpointInterval !== 0 || height <= this.stable.height) return
    const { vote, signature } = this.vote(VoteKind.checkpoint, 0, height, stateDigest)
    const m = this.checkpointVotes.get(height)
    const mine = m?.get(this.config.index)
    if (mine) return
    this.recordCheckpoint(height, this.config.index, stateDigest, signature)
    const bytes = encodeMessage({ type: 'checkpoint', vote, signature })
    this.ownCheckpoint = { height, bytes }
    this.send('checkpoint', bytes)
    this.checkStable(height)
  }

  private recordCheckpoint(height: number, who: number, digest: Uint8Array, signature: Uint8Array): void {
    let m = this.checkpointVotes.get(height)
    if (!m) this.checkpointVotes.set(height, (m = new Map()))
    m.set(who, { hex: toHex(digest), digest, signature })
    // Bounded memory: a validator keeps votes at only a few heights above the stable checkpoint.
    const mine = [...this.checkpointVotes.entries()].filter(([, votes]) => votes.has(who)).map(([h]) => h)
    if (mine.length > MAX_CHECKPOINT_HEIGHTS_PER_VALIDATOR) {
      const lowest = Math.min(...mine)
      const votes = this.checkpointVotes.get(lowest)!
      votes.delete(who)
      if (votes.size === 0) this.checkpointVotes.delete(lowest)
    }
  }

  private onCheckpoint(v: Vote, signature: Uint8Array): void {
    const kind = 'checkpoint'
    this.checkChain(v.chainId, kind)
    const who = this.validatorIndex(v.validator, kind)
    if (v.view !== 0 || v.height === 0 || v.height % this.config.checkpointInterval !== 0) {
      this.fail('MALFORMED', `checkpoint at (${v.view}, ${v.height})`, kind)
    }
    if (v.height <= this.stable.height)
      this.fail('BELOW_WATERMARK', `checkpoint ${v.height} <= stable ${this.stable.height}`, kind)
    const prev = this.checkpointVotes.get(v.height)?.get(who)
    const hex = toHex(v.digest)
    if (prev && prev.hex === hex) this.fail('DUPLICATE', 'checkpoint already counted', kind)
    this.checkVoteSignature(v, signature, kind)
    if (prev) this.fail('EQUIVOCATION', `validator ${who} signed two checkpoints at ${v.height}`, kind, who)
    this.recordCheckpoint(v.height, who, v.digest, signature)
    this.checkStable(v.height)
  }

  /** A checkpoint with 2f+1 matching signatures is stable (paper 4.3). */
  private checkStable(height: number): void {
    const votes = this.checkpointVotes.get(height)
    if (!votes) return
    const tally = new Map<string, number>()
    for (const r of votes.values()) tally.set(r.hex, (tally.get(r.hex) ?? 0) + 1)
    for (const [hex, count] of tally) {
      if (count < this.config.quorum) continue
      const digest = [...votes.values()].find((r) => r.hex === hex)!.digest
      this.advanceStable({ height, digest, signatures: this.sortedSignatures(votes, hex) })
      return
    }
  }

  /**
   * Garbage collection (paper 4.3): the stable checkpoint becomes the low watermark; every message and
   * certificate at or below it is discarded. A replica that has not committed up to it cannot get those
   * heights through consensus any more and asks the node to sync them (state transfer, paper 4.3/5.3).
   */
  private advanceStable(proof: CheckpointProof): void {
    if (proof.height <= this.stable.height) return
    this.stable = proof
    this.journal({ type: 'checkpoint', proof })
    for (const h of this.slots.keys()) if (h <= proof.height) this.slots.delete(h)
    for (const h of this.checkpointVotes.keys()) if (h <= proof.height) this.checkpointVotes.delete(h)
    if (this.ownCheckpoint && this.ownCheckpoint.height <= proof.height) this.ownCheckpoint = undefined
    this.out.push({ type: 'compactJournal', stableHeight: proof.height })
    this.out.push({ type: 'stableCheckpoint', height: proof.height, digest: proof.digest })
    if (this.lastCommitted < proof.height) this.requestSync()
    this.maybePropose()
  }

  private requestSync(toHeight = this.stable.height): void {
    if (toHeight > this.lastCommitted)
      this.out.push({ type: 'requestSync', fromHeight: this.lastCommitted + 1, toHeight })
  }

  private verifyCheckpointProof(p: CheckpointProof): string | undefined {
    if (p.height % this.config.checkpointInterval !== 0) return 'checkpoint height is not a multiple of K'
    if (p.height === 0) {
      return equalBytes(p.digest, this.config.genesisDigest) && p.signatures.length === 0
        ? undefined
        : 'bad genesis checkpoint'
    }
    const r = this.quorumCheck(p.signatures, (v) =>
      makeVote(this.config.chainId, VoteKind.checkpoint, 0, p.height, p.digest, v),
    )
    return r.ok ? undefined : `checkpoint proof: ${r.code}`
  }

  // ---------------------------------------------------------------- sync and catch-up

  /** A committed block fetched by block sync: its certificate is proof enough (it is what light clients trust). */
  private onSyncBlock(height: number, block: Uint8Array, digest: Uint8Array, cert: CommitCertificate): void {
    if (height !== this.lastCommitted + 1) return
    this.acceptCertificate(cert, block, height, digest)
  }

  private onCertificate(cert: CommitCertificate, block: Uint8Array): void {
    const kind = 'certificate'
    this.checkChain(cert.chainId, kind)
    if (cert.height <= this.lastCommitted) this.fail('STALE', `height ${cert.height} already committed`, kind)
    if (cert.height > this.stable.height + this.config.windowSize)
      this.fail('ABOVE_WATERMARK', `certificate for ${cert.height}`, kind)
    if (this.slots.get(cert.height)?.committed)
      this.fail('DUPLICATE', 'height already has a certificate', kind)
    this.acceptCertificate(cert, block, cert.height, cert.blockHash)
  }

  private acceptCertificate(
    cert: CommitCertificate,
    block: Uint8Array,
    height: number,
    digest: Uint8Array,
  ): void {
    const kind = 'certificate'
    if (cert.chainId !== this.config.chainId) this.fail('WRONG_CHAIN', 'certificate for another chain', kind)
    if (cert.height !== height || !equalBytes(cert.blockHash, digest))
      this.fail('BAD_CERTIFICATE', 'certificate is for another block', kind)
    this.checkBlock(digest, block, kind)
    const r = this.quorumCheck(cert.signatures, (v) =>
      makeVote(cert.chainId, VoteKind.commit, cert.view, cert.height, cert.blockHash, v),
    )
    if (!r.ok) this.fail('BAD_CERTIFICATE', `certificate: ${r.code}`, kind)
    const inWindow = height > this.stable.height && height <= this.stable.height + this.config.windowSize
    if (inWindow) {
      // Kept in the window so that this replica can pass the certificate on to peers that lag.
      const s = this.slot(height)
      if (s.committed) return
      s.blocks.set(toHex(digest), block)
      s.committed = { digest, block, certificate: cert }
      this.drainCommits()
    } else if (height === this.lastCommitted + 1) {
      // Outside the window only block sync brings these, strictly the next height.
      this.emitCommit(height, digest, block, cert)
      this.drainCommits()
      this.onProgress()
    }
  }

  /** A stuck peer told us where it is: send what lets it catch up (stable proof, certificates, NEW-VIEW). */
  private onStatus(m: Extract<ConsensusMessage, { type: 'status' }>): void {
    const kind = 'status'
    const b = m.body
    this.checkChain(b.chainId, kind)
    const who = this.validatorIndex(b.validator, kind)
    if (
      !this.config.verify({
        publicKey: b.validator,
        message: consensusSigningMessage(m.bodyBytes),
        signature: m.signature,
      })
    ) {
      this.fail('BAD_SIGNATURE', 'status: bad signature', kind)
    }
    if (who === this.config.index) return
    // A peer further ahead: fetch what it committed through block sync (certificates make it trustless).
    if (b.committedHeight > this.lastCommitted) this.requestSync(b.committedHeight)
    // A peer behind: tell it where we are, so it can sync from us even if our consensus memory is gone.
    if (b.committedHeight < this.lastCommitted) this.send('status', this.statusMessage(), who)
    if (this.stable.height > b.committedHeight && this.stable.height > 0) {
      for (const s of this.stable.signatures) {
        const vote = makeVote(
          this.config.chainId,
          VoteKind.checkpoint,
          0,
          this.stable.height,
          this.stable.digest,
          s.validator,
        )
        this.send('checkpoint', encodeMessage({ type: 'checkpoint', vote, signature: s.signature }), who)
      }
    }
    const from = Math.max(b.committedHeight, this.stable.height) + 1
    for (let h = from; h <= this.lastCommitted && h < from + this.config.windowSize; h++) {
      const c = this.slots.get(h)?.committed
      if (!c) continue
      this.send('certificate', encodeMessage(certificateMessage(c.certificate, c.block)), who)
    }
    if (!this.changing && this.newViewBytes && b.view <= this.view)
      this.send('newView', this.newViewBytes, who)
  }

  // ---------------------------------------------------------------- timers

  private onTimeout(timer: TimerId, token: number): void {
    if (token !== this.tokens[timer]) return
    switch (timer) {
      case 'progress':
        // View change trigger (paper 4.4): no progress within the timeout while in normal operation.
        if (!this.changing) this.startViewChange(this.view + 1)
        return
      case 'viewChange':
        // Paper 4.4: if the timer started on 2f+1 VIEW-CHANGEs expires before a valid NEW-VIEW, move to v+1.
        if (this.changing) this.startViewChange(this.view + 1)
        return
      case 'retransmit':
        this.retransmit()
        this.setTimer('retransmit', this.config.retransmitMs)
        return
    }
  }

  /** Messages get lost: resend our own messages for heights that stalled, and ask for help when stuck. */
  private retransmit(): void {
    if (this.changing) {
      const own = this.viewChanges.get(this.config.index)
      if (own && own.body.view === this.view) this.send('viewChange', own.bytes)
    } else {
      for (const s of this.slots.values()) {
        if (s.committed || s.height <= this.lastCommitted) continue
        if (s.stall++ < 1) continue
        for (const m of s.ownMessages.get(this.view) ?? []) this.send(m.kind, m.bytes)
      }
    }
    if (this.ownCheckpoint && this.ownCheckpoint.height > this.stable.height)
      this.send('checkpoint', this.ownCheckpoint.bytes)
    if (this.lastCommitted === this.committedAtLastTick) this.ticksWithoutCommit++
    else this.ticksWithoutCommit = 0
    this.committedAtLastTick = this.lastCommitted
    if (this.ticksWithoutCommit >= 2) {
      this.send('status', this.statusMessage())
    }
    if (this.lastCommitted < this.stable.height) this.requestSync()
  }

  private statusMessage(): Uint8Array {
    const body = {
      chainId: this.config.chainId,
      view: this.view,
      committedHeight: this.lastCommitted,
      validator: this.config.publicKey,
    }
    const bodyBytes = encodeStatusBody(body)
    const signature = this.config.sign(consensusSigningMessage(bodyBytes))
    return encodeMessage({ type: 'status', body, bodyBytes, signature })
  }

  // ---------------------------------------------------------------- view change

  /**
   * VIEW-CHANGE (paper 4.4): stop accepting messages of the old view, and multicast the stable checkpoint
   * with its proof and, for every height above it, the prepared certificate of the highest view.
   * Journalled before it is sent: a restarted replica re-sends the same message.
   */
  private startViewChange(newView: number): void {
    if (newView <= this.view) return
    this.view = newView
    this.changing = true
    this.backoff++
    this.newViewBytes = undefined
    this.pruneViews()
    const prepared: PreparedCertificate[] = []
    const blocks: Uint8Array[] = []
    const heights = [...this.slots.keys()].filter((h) => h > this.stable.height).sort((a, b) => a - b)
    for (const h of heights) {
      const p = this.slots.get(h)!.prepared
      if (!p) continue
      prepared.push(p.cert)
      if (!equalBytes(p.cert.digest, NULL_DIGEST)) blocks.push(p.block)
    }
    const body: ViewChangeBody = {
      chainId: this.config.chainId,
      view: newView,
      validator: this.config.publicKey,
      checkpoint: this.stable,
      prepared,
    }
    const bodyBytes = encodeViewChangeBody(body)
    const signature = this.config.sign(consensusSigningMessage(bodyBytes))
    const bytes = encodeMessage({ type: 'viewChange', body, bodyBytes, signature, blocks })
    this.journal({ type: 'viewChange', view: newView, bytes })
    this.cancelTimer('progress')
    this.cancelTimer('viewChange')
    this.viewChangeTimerFor = -1
    this.out.push({ type: 'viewChanged', view: newView, changing: true })
    this.send('viewChange', bytes)
    this.viewChanges.set(
      this.config.index,
      this.parsedViewChange({ type: 'viewChange', body, bodyBytes, signature, blocks }, bytes),
    )
    this.afterViewChangeUpdate()
  }

  private parsedViewChange(
    m: Extract<ConsensusMessage, { type: 'viewChange' }>,
    bytes: Uint8Array,
  ): ParsedViewChange {
    const blocks = new Map<string, Uint8Array>()
    let i = 0
    for (const p of m.body.prepared)
      if (!equalBytes(p.digest, NULL_DIGEST)) blocks.set(toHex(p.digest), m.blocks[i++]!)
    return { body: m.body, bodyBytes: m.bodyBytes, signature: m.signature, bytes, blocks }
  }

  /** Drops per-view state that can no longer matter (views below current - 1). Prepared certificates stay. */
  private pruneViews(): void {
    const keep = this.view - 1
    for (const s of this.slots.values()) {
      for (const m of [s.proposals, s.prepares, s.commits, s.sentPrepare, s.sentCommit, s.ownMessages] as Map<
        number,
        unknown
      >[]) {
        for (const v of m.keys()) if (v < keep) m.delete(v)
      }
      const live = new Set<string>()
      for (const p of s.proposals.values()) live.add(p.hex)
      if (s.prepared) live.add(s.prepared.hex)
      if (s.committed) live.add(toHex(s.committed.digest))
      for (const m of s.commits.values()) for (const r of m.values()) live.add(r.hex)
      for (const hex of s.blocks.keys()) if (!live.has(hex)) s.blocks.delete(hex)
    }
  }

  /** Full check of a VIEW-CHANGE body (paper 4.4: checkpoint proof and prepared certificates). Returns a reason or undefined. */
  private checkViewChangeBody(
    b: ViewChangeBody,
    bodyBytes: Uint8Array,
    signature: Uint8Array,
  ): string | undefined {
    if (b.chainId !== this.config.chainId) return 'wrong chain'
    if (!this.config.indexOf.has(toHex(b.validator))) return 'unknown validator'
    if (b.view === 0) return 'view 0'
    if (
      !this.config.verify({ publicKey: b.validator, message: consensusSigningMessage(bodyBytes), signature })
    )
      return 'bad signature'
    const cpErr = this.verifyCheckpointProof(b.checkpoint)
    if (cpErr) return cpErr
    let last = b.checkpoint.height
    for (const p of b.prepared) {
      if (p.height <= last) return 'prepared certificates out of order'
      if (p.height > b.checkpoint.height + this.config.windowSize)
        return 'prepared certificate above the window'
      if (p.view >= b.view) return 'prepared certificate from a future view'
      last = p.height
      const r = this.quorumCheck(p.signatures, (v) =>
        makeVote(this.config.chainId, VoteKind.prepare, p.view, p.height, p.digest, v),
      )
      if (!r.ok) return `prepared certificate at ${p.height}: ${r.code}`
    }
    return undefined
  }

  private onViewChange(m: Extract<ConsensusMessage, { type: 'viewChange' }>, bytes: Uint8Array): void {
    const kind = 'viewChange'
    const b = m.body
    this.checkChain(b.chainId, kind)
    const who = this.validatorIndex(b.validator, kind)
    if (who === this.config.index) this.fail('DUPLICATE', 'own view change', kind)
    const prev = this.viewChanges.get(who)
    // A peer still asking for a view we already run in has missed the NEW-VIEW: forward it (it is self-authenticating).
    if (!this.changing && this.newViewBytes && b.view <= this.view && b.view > 0)
      this.send('newView', this.newViewBytes, who)
    if (prev && equalBytes(prev.bodyBytes, m.bodyBytes))
      this.fail('DUPLICATE', 'view change already counted', kind)
    if (prev && prev.body.view > b.view)
      this.fail('OLD_VIEW', `validator ${who} already asked for view ${prev.body.view}`, kind)
    if (b.view < this.view) this.fail('OLD_VIEW', `view change to ${b.view} < ${this.view}`, kind)
    const err = this.checkViewChangeBody(b, m.bodyBytes, m.signature)
    if (err)
      this.fail(err === 'bad signature' ? 'BAD_SIGNATURE' : 'BAD_VIEW_CHANGE', `viewChange: ${err}`, kind)
    const nonNull = b.prepared.filter((p) => !equalBytes(p.digest, NULL_DIGEST))
    if (m.blocks.length !== nonNull.length)
      this.fail('BAD_VIEW_CHANGE', 'viewChange: one block per non-null prepared certificate', kind)
    nonNull.forEach((p, i) => this.checkBlock(p.digest, m.blocks[i]!, kind))
    if (prev && prev.body.view === b.view)
      this.fail('EQUIVOCATION', `validator ${who} signed two view changes for ${b.view}`, kind, who)
    this.viewChanges.set(who, this.parsedViewChange(m, bytes))
    if (b.checkpoint.height > this.stable.height) this.advanceStable(b.checkpoint)
    this.afterViewChangeUpdate()
  }

  /**
   * After any VIEW-CHANGE: join a view change once f+1 validators ask for higher views (paper 4.5.2,
   * liveness); start the view-change timer once 2f+1 ask for ours; as the new primary, send NEW-VIEW.
   */
  private afterViewChangeUpdate(): void {
    const higher = new Map<number, number>()
    for (const [who, vc] of this.viewChanges)
      if (who !== this.config.index && vc.body.view > this.view) higher.set(who, vc.body.view)
    if (higher.size >= this.config.weak) {
      this.startViewChange(Math.min(...higher.values()))
      return
    }
    if (!this.changing) return
    const forView = [...this.viewChanges.values()].filter((vc) => vc.body.view === this.view)
    if (forView.length < this.config.quorum) return
    if (this.viewChangeTimerFor !== this.view) {
      this.viewChangeTimerFor = this.view
      this.setTimer('viewChange', this.timeoutMs())
    }
    if (this.isPrimary && this.newViewSent !== this.view) this.sendNewView(forView)
  }

  /** NEW-VIEW (paper 4.4): 2f+1 VIEW-CHANGEs (our own included) and the re-proposals they determine. */
  private sendNewView(forView: ParsedViewChange[]): void {
    const me = this.config.index
    const chosen = forView
      .map((vc) => ({ vc, who: this.config.indexOf.get(toHex(vc.body.validator))! }))
      .sort((a, b) => (a.who === me ? -1 : b.who === me ? 1 : a.who - b.who))
      .slice(0, this.config.quorum)
      .map((x) => x.vc)
    const plan = planNewView(
      chosen.map((c) => c.body),
      this.config.faultInjection.newViewIgnoresPrepared,
    )
    const reproposals: Reproposal[] = []
    const blocks: Uint8Array[] = []
    const entries: { height: number; digest: Uint8Array; block: Uint8Array; signature: Uint8Array }[] = []
    for (const r of plan.reproposals) {
      const isNull = equalBytes(r.digest, NULL_DIGEST)
      const hex = toHex(r.digest)
      let block: Uint8Array | undefined = isNull ? new Uint8Array(0) : undefined
      for (const c of chosen) block ??= c.blocks.get(hex)
      block ??= this.slots.get(r.height)?.blocks.get(hex)
      if (!block) throw new Error(`invariant broken: block of a prepared certificate missing at ${r.height}`)
      const { signature } = this.vote(VoteKind.prepare, this.view, r.height, r.digest)
      reproposals.push({ height: r.height, digest: r.digest, signature })
      if (!isNull) blocks.push(block)
      entries.push({ height: r.height, digest: r.digest, block, signature })
    }
    const body: NewViewBody = {
      chainId: this.config.chainId,
      view: this.view,
      validator: this.config.publicKey,
      viewChanges: chosen.map((c) => ({ bodyBytes: c.bodyBytes, signature: c.signature })),
      reproposals,
    }
    const bodyBytes = encodeNewViewBody(body)
    const signature = this.config.sign(consensusSigningMessage(bodyBytes))
    const bytes = encodeMessage({ type: 'newView', body, bodyBytes, signature, blocks })
    this.newViewSent = this.view
    this.journal({ type: 'newView', view: this.view, bytes })
    this.enterView(this.view, plan.checkpoint, entries, bytes, true)
  }

  /**
   * A backup accepts NEW-VIEW (paper 4.4) when it is signed by the primary of the new view, carries 2f+1
   * valid VIEW-CHANGEs for that view from distinct validators, and its re-proposals are exactly those the
   * backup recomputes from them (min-s, max-s, highest-view prepared digest or null).
   */
  private onNewView(m: Extract<ConsensusMessage, { type: 'newView' }>, bytes: Uint8Array): void {
    const kind = 'newView'
    const b = m.body
    this.checkChain(b.chainId, kind)
    const who = this.validatorIndex(b.validator, kind)
    if (b.view < this.view) this.fail('OLD_VIEW', `newView ${b.view} < ${this.view}`, kind)
    if (b.view === this.view && !this.changing) this.fail('DUPLICATE', `already in view ${b.view}`, kind)
    if (b.view === 0) this.fail('MALFORMED', 'newView for view 0', kind)
    if (who !== this.primaryOf(b.view)) this.fail('NOT_PRIMARY', `newView ${b.view} from ${who}`, kind)
    if (
      !this.config.verify({
        publicKey: b.validator,
        message: consensusSigningMessage(m.bodyBytes),
        signature: m.signature,
      })
    ) {
      this.fail('BAD_SIGNATURE', 'newView: bad signature', kind)
    }
    if (b.viewChanges.length < this.config.quorum)
      this.fail('BAD_NEW_VIEW', 'newView: fewer than 2f+1 view changes', kind)
    const seen = new Set<string>()
    const bodies: ViewChangeBody[] = []
    for (const vc of b.viewChanges) {
      let body: ViewChangeBody
      const known = [...this.viewChanges.values()].find(
        (p) => equalBytes(p.bodyBytes, vc.bodyBytes) && equalBytes(p.signature, vc.signature),
      )
      if (known) body = known.body
      else {
        try {
          body = decodeViewChangeBody(vc.bodyBytes, this.config.maxMessageBytes)
        } catch {
          this.fail('BAD_NEW_VIEW', 'newView: undecodable view change', kind)
        }
        const err = this.checkViewChangeBody(body, vc.bodyBytes, vc.signature)
        if (err) this.fail('BAD_NEW_VIEW', `newView: view change: ${err}`, kind)
      }
      if (body.view !== b.view) this.fail('BAD_NEW_VIEW', 'newView: view change for another view', kind)
      const hex = toHex(body.validator)
      if (seen.has(hex)) this.fail('BAD_NEW_VIEW', 'newView: two view changes from one validator', kind)
      seen.add(hex)
      bodies.push(body)
    }
    const plan = planNewView(bodies, this.config.faultInjection.newViewIgnoresPrepared)
    if (plan.reproposals.length !== b.reproposals.length)
      this.fail('BAD_NEW_VIEW', 'newView: re-proposals differ from the recomputed ones', kind)
    const nonNull = b.reproposals.filter((r) => !equalBytes(r.digest, NULL_DIGEST)).length
    if (m.blocks.length !== nonNull)
      this.fail('BAD_NEW_VIEW', 'newView: one block per non-null re-proposal', kind)
    const entries: { height: number; digest: Uint8Array; block: Uint8Array; signature: Uint8Array }[] = []
    let bi = 0
    for (let i = 0; i < plan.reproposals.length; i++) {
      const want = plan.reproposals[i]!
      const got = b.reproposals[i]!
      if (got.height !== want.height || !equalBytes(got.digest, want.digest)) {
        this.fail(
          'BAD_NEW_VIEW',
          `newView: re-proposal at ${want.height} differs from the recomputed one`,
          kind,
        )
      }
      const vote = makeVote(
        this.config.chainId,
        VoteKind.prepare,
        b.view,
        got.height,
        got.digest,
        b.validator,
      )
      this.checkVoteSignature(vote, got.signature, kind)
      const isNull = equalBytes(got.digest, NULL_DIGEST)
      const block = isNull ? new Uint8Array(0) : m.blocks[bi++]!
      this.checkBlock(got.digest, block, kind)
      entries.push({ height: got.height, digest: got.digest, block, signature: got.signature })
    }
    this.enterView(b.view, plan.checkpoint, entries, bytes, false)
  }

  /**
   * Enter view `view` in normal operation with its re-proposals as pre-prepares (paper 4.4): backups
   * multicast PREPAREs for them; re-proposed blocks skip validation (a prepared certificate shows f+1
   * honest validators validated them) and null fillers need none. The primary's next fresh proposal
   * goes right after max-s.
   */
  private enterView(
    view: number,
    checkpoint: CheckpointProof,
    entries: { height: number; digest: Uint8Array; block: Uint8Array; signature: Uint8Array }[],
    newViewBytes: Uint8Array,
    asPrimary: boolean,
  ): void {
    this.journal({ type: 'view', view })
    if (view > this.view) this.view = view
    this.changing = false
    this.newViewBytes = newViewBytes
    this.pruneViews()
    this.cancelTimer('viewChange')
    this.setTimer('progress', this.timeoutMs())
    this.out.push({ type: 'viewChanged', view, changing: false })
    if (checkpoint.height > this.stable.height) this.advanceStable(checkpoint)
    const primary = this.primaryOf(view)
    let maxS = checkpoint.height
    for (const e of entries) {
      maxS = Math.max(maxS, e.height)
      if (e.height <= this.stable.height) continue
      const s = this.slot(e.height)
      const hex = toHex(e.digest)
      s.proposals.set(view, {
        view,
        digest: e.digest,
        hex,
        block: e.block,
        signature: e.signature,
        validated: 'ok',
      })
      s.blocks.set(hex, e.block)
      this.recordVote(s.prepares, view, primary, e.digest, e.signature)
      if (asPrimary) {
        this.journal({ type: 'proposal', view, height: e.height, digest: e.digest, block: e.block })
        s.sentPrepare.set(view, hex)
      }
    }
    if (asPrimary) this.send('newView', newViewBytes)
    for (const e of entries) {
      const s = this.slots.get(e.height)
      if (!s) continue
      this.tryPrepare(s)
      this.checkCommitted(s)
    }
    this.nextProposal = maxS + 1
    this.maybePropose()
  }
}

/** Creates a replica; feed it `{ type: 'start' }` (with the journal after a restart) before anything else. */
export function createReplica(config: ReplicaConfig): Replica {
  return new Replica(config)
}
