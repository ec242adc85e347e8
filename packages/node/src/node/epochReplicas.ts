// One replica per epoch (consensus README, "The node's contract"): the replica of the current epoch,
// the retired one of the epoch before (it brings laggards of that epoch to its end, unjournalled), and
// the schedule they follow, rebuilt from the chain's records of executed validator-set changes.
import { type CommitCertificate, type ValidatorChange, toHex } from '@cityledger/core'
import { type Epoch, type Input, type ValidatorSchedule, epochAt, lastHeightOf } from '@cityledger/consensus'
import type { Logger } from '../log/index.ts'
import type { ReplicaLike } from './driverOptions.ts'
import type { Journal } from './journal.ts'
import { type ChainSchedule, extendSchedule, genesisChainSchedule } from './schedule.ts'

type StartInput = Extract<Input, { type: 'start' }>

/** A replica and the epoch (and set) it runs. */
export interface EpochRun {
  epoch: number
  replica: ReplicaLike
  /** Its validators, hex, in consensus order (`send` outputs index into it). */
  validatorsHex: readonly string[]
}

/** What a new epoch's replica is built from (see `ReplicaConfig` of consensus). */
export interface EpochReplicaParams {
  epoch: number
  validators: Uint8Array[]
  /** The height the epoch starts after (0 in epoch 0). */
  baseHeight: number
  /** The checkpoint digest of `baseHeight` (undefined in epoch 0: the replica's default). */
  genesisDigest?: Uint8Array
  lastHeight?: number
}

/** The replicas the consensus driver feeds, by epoch. */
export interface ReplicaSet {
  current(): EpochRun | undefined
  retired(): EpochRun | undefined
  /** The held run of `epoch` (current or retired), if any. */
  run(epoch: number): EpochRun | undefined
  /** The epoch whose validators sign `height`. */
  epochOf(height: number): number
  /**
   * The node's `start` input: builds the replica of the epoch of `committedHeight + 1` if this key is in
   * its set and returns the input to give it (the journal only if it was written for that epoch), or
   * undefined when this node does not vote in that epoch.
   */
  start(input: StartInput): Promise<StartInput | undefined>
  /**
   * `height` was committed: the schedule takes in new records. `epochEnd` is set when the current
   * replica's epoch just got its last height; `switchAfter` when `height` is the last of its epoch.
   */
  committed(height: number): { epochEnd?: { epoch: number; height: number }; switchAfter: boolean }
  /**
   * After the last height `end` of an epoch executed (checkpoint digest `digest`): the old replica is
   * retired, the journal is started for the new epoch, and the new epoch's replica is built if this key
   * is in its set (returned with its start input; the node's head is `committedHeight`).
   */
  switchEpoch(
    end: number,
    digest: Uint8Array,
    head: { height: number; certificate?: CommitCertificate },
  ): Promise<{ run: EpochRun; input: StartInput } | undefined>
}

/** A single replica in epoch 0 for every height (a chain without reconfiguration; driver unit tests). */
export function singleReplica(replica: ReplicaLike, validatorsHex: readonly string[] = []): ReplicaSet {
  const run: EpochRun = { epoch: 0, replica, validatorsHex }
  return {
    current: () => run,
    retired: () => undefined,
    run: (e) => (e === 0 ? run : undefined),
    epochOf: () => 0,
    start: async (input) => input,
    committed: () => ({ switchAfter: false }),
    switchEpoch: async () => undefined,
  }
}

export interface EpochReplicasOptions {
  publicKey: Uint8Array
  genesisValidators: readonly Uint8Array[]
  /** K of the genesis: epochs change at its multiples. */
  checkpointInterval: number
  /** The executed change records with seq > `after`, from the latest committed state. */
  readChanges: (after: number) => ValidatorChange[]
  /** Builds the replica of an epoch (createNode: chain id, signer, verifier, timeouts, limits). */
  makeReplica: (p: EpochReplicaParams) => ReplicaLike
  /** The checkpoint digest of a stored height (block hash and state root): a restarted epoch's genesis. */
  digestAt: (height: number) => Promise<Uint8Array>
  journal: Journal
  /** Called whenever the schedule gains an epoch or the node switches epochs (p2p allow list, metrics). */
  onChange?: (schedule: ValidatorSchedule) => void
  logger: Logger
}

/** The node's replicas across epochs; see the top of this file. */
export class EpochReplicas implements ReplicaSet {
  private readonly o: EpochReplicasOptions
  private readonly publicKeyHex: string
  private chain: ChainSchedule
  private cur: EpochRun | undefined
  private old: EpochRun | undefined
  /** Epochs whose replica already knows its last height (from its config or an `epochEnd`). */
  private readonly endKnown = new Set<number>()

  constructor(o: EpochReplicasOptions) {
    this.o = o
    this.publicKeyHex = toHex(o.publicKey)
    this.chain = genesisChainSchedule(o.genesisValidators, o.checkpointInterval)
  }

  /** The schedule as executed so far (the last epoch may be announced, not started). */
  get schedule(): ValidatorSchedule {
    return this.chain.schedule
  }

  /** Takes in records the latest committed state has and the schedule does not; true if any. */
  refresh(): boolean {
    const changes = this.o.readChanges(this.chain.seq)
    if (!changes.length) return false
    const before = this.chain.schedule.epochs.length
    this.chain = extendSchedule(this.chain, changes)
    const added = this.chain.schedule.epochs.slice(before)
    for (const e of added)
      this.o.logger.info(
        { epoch: e.epoch, firstHeight: e.firstHeight, validators: e.validators.map(toHex) },
        'validator set change scheduled',
      )
    this.o.onChange?.(this.chain.schedule)
    return added.length > 0
  }

  current(): EpochRun | undefined {
    return this.cur
  }

  retired(): EpochRun | undefined {
    return this.old
  }

  run(epoch: number): EpochRun | undefined {
    if (this.cur?.epoch === epoch) return this.cur
    if (this.old?.epoch === epoch) return this.old
    return undefined
  }

  epochOf(height: number): number {
    return epochAt(this.chain.schedule, Math.max(1, height)).epoch
  }

  async start(input: StartInput): Promise<StartInput | undefined> {
    this.refresh()
    const e = epochAt(this.chain.schedule, (input.committedHeight ?? 0) + 1)
    this.old = undefined
    this.cur = undefined
    if (!this.inSet(e)) {
      this.o.logger.info({ epoch: e.epoch }, 'not a validator of the current epoch: following by block sync')
      return undefined
    }
    const base = e.firstHeight - 1
    const journal = this.o.journal
    // The journal of another epoch says nothing this epoch's replica could contradict.
    const own = journal.epoch === e.epoch
    // The base digest the journal kept at the switch: the base block and root may be pruned since.
    const genesisDigest =
      e.epoch > 0 ? ((own ? journal.baseDigest : undefined) ?? (await this.o.digestAt(base))) : undefined
    if (!own) await journal.reset(e.epoch, genesisDigest)
    this.cur = this.build(e, base, genesisDigest)
    this.o.logger.info({ epoch: e.epoch, baseHeight: base, journal: own }, 'epoch replica started')
    return { ...input, journal: own ? input.journal : [] }
  }

  committed(height: number): { epochEnd?: { epoch: number; height: number }; switchAfter: boolean } {
    this.refresh()
    const out: { epochEnd?: { epoch: number; height: number }; switchAfter: boolean } = {
      switchAfter: height === lastHeightOf(this.chain.schedule, this.epochOf(height)),
    }
    const cur = this.cur
    if (cur && !this.endKnown.has(cur.epoch)) {
      const last = lastHeightOf(this.chain.schedule, cur.epoch)
      if (last !== undefined) {
        this.endKnown.add(cur.epoch)
        out.epochEnd = { epoch: cur.epoch, height: last }
      }
    }
    return out
  }

  async switchEpoch(
    end: number,
    digest: Uint8Array,
    head: { height: number; certificate?: CommitCertificate },
  ): Promise<{ run: EpochRun; input: StartInput } | undefined> {
    const next = epochAt(this.chain.schedule, end + 1)
    if (next.firstHeight !== end + 1)
      throw new Error(
        `invariant broken: switch after ${end}, but epoch ${next.epoch} starts at ${next.firstHeight}`,
      )
    if (this.cur && this.cur.epoch >= next.epoch) return undefined
    this.old = this.cur?.epoch === next.epoch - 1 ? this.cur : undefined
    this.cur = undefined
    // The retired replica signs nothing a restart needs: the journal is the new epoch's from here.
    await this.o.journal.reset(next.epoch, digest)
    this.o.onChange?.(this.chain.schedule)
    if (!this.inSet(next)) {
      this.o.logger.info(
        { epoch: next.epoch, height: end },
        'epoch switch: not in the new set, following by block sync',
      )
      return undefined
    }
    const run = this.build(next, end, digest)
    this.cur = run
    this.o.logger.info({ epoch: next.epoch, baseHeight: end }, 'epoch switch: new epoch replica started')
    return {
      run,
      input: {
        type: 'start',
        committedHeight: head.height,
        ...(head.certificate ? { certificate: head.certificate } : {}),
      },
    }
  }

  private inSet(e: Epoch): boolean {
    return e.validators.some((v) => toHex(v) === this.publicKeyHex)
  }

  private build(e: Epoch, baseHeight: number, genesisDigest: Uint8Array | undefined): EpochRun {
    const lastHeight = lastHeightOf(this.chain.schedule, e.epoch)
    if (lastHeight !== undefined) this.endKnown.add(e.epoch)
    const replica = this.o.makeReplica({
      epoch: e.epoch,
      validators: [...e.validators],
      baseHeight,
      ...(genesisDigest ? { genesisDigest } : {}),
      ...(lastHeight !== undefined ? { lastHeight } : {}),
    })
    return { epoch: e.epoch, replica, validatorsHex: e.validators.map(toHex) }
  }
}

/**
 * The keys the p2p layer lets in as validators with the chain at `head`: the set of the next height's
 * epoch and of every announced epoch after it (so a joiner connects and syncs before its epoch starts);
 * a validator that left is dropped once its last epoch is over.
 */
export function allowedValidators(schedule: ValidatorSchedule, head: number): string[] {
  const now = epochAt(schedule, head + 1)
  const keys = new Set<string>()
  for (const e of schedule.epochs) if (e.epoch >= now.epoch) for (const v of e.validators) keys.add(toHex(v))
  return [...keys]
}
