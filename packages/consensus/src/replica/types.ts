import type { CommitCertificate } from '@cityledger/core'
import type { ConsensusErrorCode } from '../errors.ts'
import type { JournalEntry } from '../journal.ts'
import type { MessageKind } from '../messages/types.ts'

/** The replica's timers. Each `setTimer` replaces the previous one of the same id. */
export type TimerId = 'progress' | 'viewChange' | 'retransmit'

/**
 * Everything that can happen to a replica. The node feeds them one at a time through a single queue.
 *
 * - `start`: first input of a replica's life; after a restart carries the durable journal and the height
 *   of the last block the node has persisted.
 * - `message`: bytes received from a peer (`from` is the node's peer id, echoed in `reject` outputs).
 * - `timeout`: a timer fired; `token` is the one given in its `setTimer` (stale firings are ignored).
 * - `proposal`: the node's answer to `requestProposal`.
 * - `validated`: the node's answer to `validate`.
 * - `executed`: the node executed the committed block at `height`; `stateDigest` is what checkpoints sign.
 * - `syncBlock`: a committed block fetched by block sync (after `requestSync`), with its certificate.
 * - `epochEnd`: the node executed a validator-set change; `height` (activationHeight, epochs.ts) is the
 *   last height of this replica's epoch. Fed once, right after the `executed` of the change's block and
 *   before the node validates or builds the next block; the same height again is ignored.
 * - `pending`: the node's mempool went from empty to non-empty (`true`) or back (`false`). Only matters
 *   with `heartbeatMs` (see replica.ts `onPending`); may come before `start`. Repeats change nothing.
 */
export type Input =
  | {
      type: 'start'
      committedHeight?: number
      journal?: readonly JournalEntry[]
      /**
       * The commit certificate of `committedHeight` from the node's store: a restarted replica's STATUS
       * carries it, so peers that lag can prove the height and fetch the blocks by sync.
       */
      certificate?: CommitCertificate
    }
  | { type: 'message'; bytes: Uint8Array; from?: string }
  | { type: 'timeout'; timer: TimerId; token: number }
  | { type: 'pending'; pending: boolean }
  | { type: 'proposal'; height: number; view: number; block: Uint8Array; digest: Uint8Array }
  | { type: 'validated'; height: number; view: number; digest: Uint8Array; ok: boolean }
  | { type: 'executed'; height: number; stateDigest: Uint8Array }
  | {
      type: 'syncBlock'
      height: number
      block: Uint8Array
      digest: Uint8Array
      certificate: CommitCertificate
    }
  | { type: 'epochEnd'; height: number }

/**
 * What the node must do, in order. A `journal` output must be durable before any later output is acted
 * on (the messages after it depend on it).
 *
 * - `broadcast`: send to every other validator; `send`: to validator `to` (index in the validator list).
 * - `commit`: persist `block` with `certificate` at `height` and execute it. Emitted strictly in height
 *   order, each height exactly once. `isNull` marks a null filler from a NEW-VIEW (no block: the node
 *   records an empty block for the height).
 * - `requestProposal`: build a block for (height, view) and answer with a `proposal` input.
 * - `validate`: check the block and answer with a `validated` input (the digest is already checked).
 * - `requestSync`: this replica is behind (below the stable checkpoint, or a peer reported a higher
 *   committed height); fetch the committed blocks `fromHeight..toHeight` (as many as peers have) with
 *   their certificates and feed them, in height order, as `syncBlock` inputs.
 * - `compactJournal`: entries made useless by the stable checkpoint may be dropped (`compactJournal()`).
 * - `reject`: an input was refused; `penalize` says whether its sender (or `offender`) should be penalised.
 * - `viewChanged`, `stableCheckpoint`: for logs and metrics.
 */
export type Output =
  | { type: 'broadcast'; kind: MessageKind; bytes: Uint8Array }
  | { type: 'send'; to: number; kind: MessageKind; bytes: Uint8Array }
  | { type: 'journal'; entry: JournalEntry }
  | { type: 'setTimer'; timer: TimerId; ms: number; token: number }
  | { type: 'cancelTimer'; timer: TimerId }
  | { type: 'requestProposal'; height: number; view: number }
  | { type: 'validate'; height: number; view: number; digest: Uint8Array; block: Uint8Array }
  | {
      type: 'commit'
      height: number
      view: number
      digest: Uint8Array
      block: Uint8Array
      isNull: boolean
      certificate: CommitCertificate
    }
  | { type: 'requestSync'; fromHeight: number; toHeight: number }
  | { type: 'compactJournal'; stableHeight: number }
  | {
      type: 'reject'
      code: ConsensusErrorCode
      penalize: boolean
      reason: string
      /** The peer the input came from (as given in the `message` input). */
      from?: string
      kind?: MessageKind
      /**
       * For signed evidence (EQUIVOCATION, INVALID_BLOCK): the validator index whose signature convicts it.
       * Penalise it rather than `from`, which may only have relayed a self-authenticating message.
       */
      offender?: number
      /**
       * For OTHER_EPOCH: the epoch the message belongs to. An earlier one goes to the node's retired replica
       * of that epoch (if any); a later one means this node is behind: a hint for block sync.
       */
      epoch?: number
    }
  | { type: 'viewChanged'; view: number; changing: boolean }
  | { type: 'stableCheckpoint'; height: number; digest: Uint8Array }
