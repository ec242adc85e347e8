import {
  type CommitCertificate,
  type Vote,
  type VoteKind,
  equalBytes,
  toHex,
  voteSignatureCheck,
  voteSigningMessage,
} from '@cityledger/core'
import { type CertificateVerdict, makeVote, verifyVoteQuorum } from '../certificate.ts'
import { epochOfChainId } from '../epochs.ts'
import { NULL_DIGEST, type ReplicaConfig, type ResolvedConfig, resolveConfig } from '../config.ts'
import { ConsensusError, type ConsensusErrorCode } from '../errors.ts'
import type { JournalEntry } from '../journal.ts'
import type {
  CheckpointProof,
  MessageKind,
  PreparedCertificate,
  SignatureEntry,
  ViewChangeBody,
} from '../messages/types.ts'
import type { Output, TimerId } from './types.ts'

/** One validator's vote (prepare, commit or checkpoint) on a digest. */
export interface VoteRecord {
  hex: string
  digest: Uint8Array
  signature: Uint8Array
}

/** A pre-prepare accepted for (view, height). */
export interface Proposal {
  view: number
  digest: Uint8Array
  hex: string
  block: Uint8Array
  /** The primary's prepare vote on (view, height, digest). */
  signature: Uint8Array
  validated: 'pending' | 'ok' | 'bad'
}

/** Everything known about one height inside the watermark window. */
/**
 * Voted-for blocks a replica keeps per height beyond the views it still tracks. Every prepared
 * certificate has at least f+1 honest signers; one of them drops the block only after voting for this
 * many later proposals at the same height, each from a NEW-VIEW that found no prepared certificate
 * above it. Memory: at most this many extra blocks per height of the window.
 */
export const VOTED_BLOCKS_PER_HEIGHT = 4

export interface Slot {
  height: number
  /** At most one accepted pre-prepare per view. */
  proposals: Map<number, Proposal>
  prepares: Map<number, Map<number, VoteRecord>>
  commits: Map<number, Map<number, VoteRecord>>
  sentPrepare: Map<number, string>
  /**
   * Blocks this replica voted PREPARE for (or proposed) at this height: hex -> highest such view. Kept
   * across view pruning (at most VOTED_BLOCKS_PER_HEIGHT, the newest views), because a prepared
   * certificate naming one of them may be re-proposed by digest later and its 2f+1 signers are the
   * only replicas known to hold it (sweep n=4 seed 13956).
   */
  voted: Map<string, number>
  sentCommit: Map<number, string>
  /** Own messages of a view, resent when the height stalls. */
  ownMessages: Map<number, { kind: MessageKind; bytes: Uint8Array }[]>
  /** Highest-view prepared certificate (survives view changes; goes into VIEW-CHANGE). */
  prepared?: { cert: PreparedCertificate; hex: string }
  committed?: { digest: Uint8Array; block: Uint8Array; certificate: CommitCertificate }
  blocks: Map<string, Uint8Array>
  stall: number
}

/** A verified VIEW-CHANGE. */
export interface ParsedViewChange {
  body: ViewChangeBody
  bodyBytes: Uint8Array
  signature: Uint8Array
  /** Wire bytes as received or sent. */
  bytes: Uint8Array
}

/**
 * One re-proposal of a NEW-VIEW with the primary's signature, and its block: empty for a null filler, and
 * also when this replica lacks it (it then fetches it from `holders`, validators known to have it).
 */
export interface NewViewEntry {
  height: number
  digest: Uint8Array
  block: Uint8Array
  signature: Uint8Array
  holders: number[]
}

/** A block this replica must have to commit a height (re-proposed in a NEW-VIEW, or certified) but lacks. */
export interface MissingBlock {
  digest: Uint8Array
  hex: string
  /** Validators asked in turn, one per retransmission tick (those known to hold it first). */
  holders: number[]
  next: number
}

/**
 * The replica's whole mutable state and the small helpers every protocol part uses. The protocol's
 * rules live in functions over it, one file per part of the paper: normalCase.ts (4.2), checkpoints.ts
 * (4.3), viewChange.ts and newView.ts (4.4, 4.5.2), sync.ts (state transfer and catch-up), restore.ts
 * (restart from the journal). Internal to the replica folder: `Replica` is the public face.
 */
export class ReplicaState {
  readonly config: ResolvedConfig
  /** Outputs of the step in progress. */
  out: Output[] = []
  started = false
  view = 0
  changing = false
  lastCommitted = 0
  executed = 0
  stable: CheckpointProof
  readonly slots = new Map<number, Slot>()
  readonly checkpointVotes = new Map<number, Map<number, VoteRecord>>()
  ownCheckpoint?: { height: number; bytes: Uint8Array }
  /** VIEW-CHANGEs by validator, then by view (a bounded range: see viewChange.ts). */
  readonly viewChanges = new Map<number, Map<number, ParsedViewChange>>()
  /** This replica's own VIEW-CHANGEs of its last few views, by view, as sent (for peers still asking for them). */
  readonly ownViewChanges = new Map<number, Uint8Array>()
  /** Blocks being fetched, by height (heights inside the window only). */
  readonly missing = new Map<number, MissingBlock>()
  /** Retransmission ticks so far: the unit of time of the answer budgets (no wall clock in here). */
  tick = 0
  /** Tick of the last answer by key (`kind:validator`): at most one answer per peer and kind per tick. */
  readonly answered = new Map<string, number>()
  /** Block answers per requester in the current tick. */
  readonly blockAnswers = new Map<number, { tick: number; count: number }>()
  /** Hex digests of the last STATUS bodies answered, per validator: replayed bytes get no second answer. */
  readonly statusSeen = new Map<number, string[]>()
  /** Sequence number of this replica's STATUS messages (so that two of them always differ). */
  statusRound = 0
  /** Certificate of `lastCommitted`, carried in STATUS as the proof of the height claimed. */
  lastCertificate?: CommitCertificate
  newViewBytes?: Uint8Array
  newViewSent = -1
  viewChangeTimerFor = -1
  nextProposal = 1
  backoff = 0
  readonly tokens: Record<TimerId, number> = { progress: 0, viewChange: 0, retransmit: 0 }
  ticksWithoutCommit = 0
  committedAtLastTick = -1
  /** Last height of this epoch once known (config or `epochEnd`): nothing above it is proposed, voted or committed. */
  lastHeight?: number
  /** Retransmission tick of the last sync asked for by a STATUS of a later epoch (at most one per tick). */
  laterEpochSyncTick = -1
  /** The node's last `pending` report: it holds txs to order (see replica.ts `onPending`). */
  pending = false
  /** The progress timer now armed is the idle one (heartbeat + timeout); false when none is armed. */
  progressIdle = false
  /** The progress timer now armed was armed by progress (a commit, a new view, the start), not by `pending`. */
  progressFresh = false

  constructor(config: ReplicaConfig) {
    this.config = resolveConfig(config)
    this.stable = { height: this.config.baseHeight, digest: this.config.genesisDigest, signatures: [] }
    if (this.config.lastHeight !== undefined) this.lastHeight = this.config.lastHeight
  }

  /** True for heights above this epoch's last height (known so far). */
  afterEpoch(height: number): boolean {
    return this.lastHeight !== undefined && height > this.lastHeight
  }

  /** The epoch has ended here: everything up to its last height is committed. It only helps laggards now. */
  get finished(): boolean {
    return this.lastHeight !== undefined && this.lastCommitted >= this.lastHeight
  }

  /** The epoch of `chainId` when it is another epoch of this chain, else undefined. */
  otherEpoch(chainId: string): number | undefined {
    const e = epochOfChainId(this.config.baseChainId, chainId)
    return e === undefined || e === this.config.epoch ? undefined : e
  }

  primaryOf(view: number): number {
    return view % this.config.n
  }

  get isPrimary(): boolean {
    return this.primaryOf(this.view) === this.config.index
  }

  fail(
    code: ConsensusErrorCode,
    message: string,
    kind?: MessageKind,
    offender?: number,
    epoch?: number,
  ): never {
    // Refusals are routine (duplicates and late votes on any lossy network): skip the stack trace they never need.
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    try {
      throw new ConsensusError(code, message, {
        ...(kind ? { kind } : {}),
        ...(offender !== undefined ? { offender } : {}),
        ...(epoch !== undefined ? { epoch } : {}),
      })
    } finally {
      Error.stackTraceLimit = limit
    }
  }

  validatorIndex(key: Uint8Array, kind: MessageKind): number {
    const i = this.config.indexOf.get(toHex(key))
    if (i === undefined) this.fail('UNKNOWN_VALIDATOR', `${kind}: signer is not a validator`, kind)
    return i
  }

  checkChain(chainId: string, kind: MessageKind): void {
    if (chainId === this.config.chainId) return
    const e = this.otherEpoch(chainId)
    if (e !== undefined)
      this.fail(
        'OTHER_EPOCH',
        `${kind}: epoch ${e}, this replica runs ${this.config.epoch}`,
        kind,
        undefined,
        e,
      )
    this.fail('WRONG_CHAIN', `${kind}: chain ${chainId}`, kind)
  }

  /** Refuses, without penalty, a height above the epoch's last height. */
  checkEpoch(height: number, kind: MessageKind): void {
    if (this.afterEpoch(height))
      this.fail(
        'EPOCH_ENDED',
        `${kind}: height ${height} > last height ${this.lastHeight} of the epoch`,
        kind,
      )
  }

  checkWindow(height: number, kind: MessageKind): void {
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

  checkVoteSignature(vote: Vote, signature: Uint8Array, kind: MessageKind): void {
    if (!this.config.verify(voteSignatureCheck(vote, signature)))
      this.fail('BAD_SIGNATURE', `${kind}: bad signature`, kind)
  }

  digestOf(block: Uint8Array): Uint8Array | undefined {
    try {
      const d = this.config.blockDigest(block)
      return d instanceof Uint8Array && d.length === 32 ? d : undefined
    } catch {
      return undefined
    }
  }

  checkBlock(digest: Uint8Array, block: Uint8Array, kind: MessageKind): void {
    if (equalBytes(digest, NULL_DIGEST)) {
      if (block.length !== 0) this.fail('DIGEST_MISMATCH', `${kind}: a null block carries no bytes`, kind)
      return
    }
    const d = this.digestOf(block)
    if (!d || !equalBytes(d, digest))
      this.fail('DIGEST_MISMATCH', `${kind}: block does not hash to the digest`, kind)
  }

  vote(
    kind: VoteKind,
    view: number,
    height: number,
    digest: Uint8Array,
  ): { vote: Vote; signature: Uint8Array } {
    const vote = makeVote(this.config.chainId, kind, view, height, digest, this.config.publicKey)
    return { vote, signature: this.config.sign(voteSigningMessage(vote)) }
  }

  quorumCheck(signatures: readonly SignatureEntry[], voteFor: (v: Uint8Array) => Vote): CertificateVerdict {
    const members = new Set(this.config.validatorHex)
    return verifyVoteQuorum(signatures, voteFor, members, this.config.quorum, this.config.verify)
  }

  slot(height: number): Slot {
    let s = this.slots.get(height)
    if (!s) {
      s = {
        height,
        proposals: new Map(),
        prepares: new Map(),
        commits: new Map(),
        sentPrepare: new Map(),
        voted: new Map(),
        sentCommit: new Map(),
        ownMessages: new Map(),
        blocks: new Map(),
        stall: 0,
      }
      this.slots.set(height, s)
    }
    return s
  }

  recordVote(
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

  send(kind: MessageKind, bytes: Uint8Array, to?: number): void {
    if (to === undefined) this.out.push({ type: 'broadcast', kind, bytes })
    else if (to !== this.config.index) this.out.push({ type: 'send', to, kind, bytes })
  }

  remember(slot: Slot, view: number, kind: MessageKind, bytes: Uint8Array): void {
    let l = slot.ownMessages.get(view)
    if (!l) slot.ownMessages.set(view, (l = []))
    l.push({ kind, bytes })
  }

  /** True if no answer of `kind` went to validator `who` in this tick. Does not spend it. */
  canAnswer(kind: string, who: number): boolean {
    return this.answered.get(`${kind}:${who}`) !== this.tick
  }

  spendAnswer(kind: string, who: number): void {
    this.answered.set(`${kind}:${who}`, this.tick)
  }

  /**
   * Records that this replica sent its PREPARE (or, as primary, its pre-prepare) for `hex` in `view`:
   * the vote itself, and the block's place among the voted blocks pruning keeps.
   */
  markPrepareSent(s: Slot, view: number, hex: string): void {
    s.sentPrepare.set(view, hex)
    if ((s.voted.get(hex) ?? -1) < view) s.voted.set(hex, view)
    while (s.voted.size > VOTED_BLOCKS_PER_HEIGHT) {
      let oldest: string | undefined
      for (const [h, v] of s.voted) if (oldest === undefined || v < s.voted.get(oldest)!) oldest = h
      s.voted.delete(oldest!)
    }
  }

  /** Keeps a block for (slot, digest) unless it is unknown (empty bytes for a non-null digest). */
  keepBlock(s: Slot, digest: Uint8Array, block: Uint8Array): void {
    if (block.length === 0 && !equalBytes(digest, NULL_DIGEST)) return
    s.blocks.set(toHex(digest), block)
  }

  journal(entry: JournalEntry): void {
    this.out.push({ type: 'journal', entry })
  }

  timeoutMs(): number {
    return this.config.viewTimeoutMs * 2 ** Math.min(this.backoff, this.config.maxBackoffExponent)
  }

  /**
   * Every progress timer (armed after a commit, on entering a view, at start) gets `heartbeatMs` more
   * while the node reports no pending work: the primary's node then proposes only once per heartbeat.
   */
  setTimer(timer: TimerId, ms: number): void {
    this.tokens[timer]++
    if (timer === 'progress') {
      this.progressFresh = true
      this.progressIdle = this.config.heartbeatMs > 0 && !this.pending
      if (this.progressIdle) ms += this.config.heartbeatMs
    }
    this.out.push({ type: 'setTimer', timer, ms, token: this.tokens[timer] })
  }

  cancelTimer(timer: TimerId): void {
    this.tokens[timer]++
    if (timer === 'progress') this.progressIdle = this.progressFresh = false
    this.out.push({ type: 'cancelTimer', timer })
  }

  sortedSignatures(votes: Map<number, VoteRecord>, hex: string): SignatureEntry[] {
    const idx = [...votes.entries()].filter(([, r]) => r.hex === hex).map(([i]) => i)
    idx.sort((a, b) => a - b)
    return idx
      .slice(0, this.config.quorum)
      .map((i) => ({ validator: this.config.validators[i]!, signature: votes.get(i)!.signature }))
  }

  countFor(votes: Map<number, VoteRecord> | undefined, hex: string): number {
    if (!votes) return 0
    let c = 0
    for (const r of votes.values()) if (r.hex === hex) c++
    return c
  }
}
