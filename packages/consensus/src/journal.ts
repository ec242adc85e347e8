import type { CheckpointProof, PreparedCertificate } from './messages/types.ts'

/**
 * What a replica must find again after a restart so that it never contradicts what it already signed.
 * The node appends every `journal` output durably, in order, before it acts on any output after it
 * (in particular before sending the messages that follow it). Heights/views identify each entry.
 *
 * - `viewChange`: this replica moved to `view` and signed this VIEW-CHANGE (bytes as sent);
 * - `view`: this replica entered `view` in normal operation (after a NEW-VIEW, or at start);
 * - `newView`: as the new primary, this replica signed this NEW-VIEW (bytes as sent);
 * - `proposal`: as primary, it proposed `digest` at (view, height) (its pre-prepare = its prepare vote);
 *   in `proposal`, `prepare` and `commit` entries `block` is empty when the replica did not hold the block
 *   (a NEW-VIEW re-proposal it fetches by digest) or the digest is the null digest;
 * - `prepare`: it sent a prepare vote for `digest` at (view, height), having accepted the primary's
 *   pre-prepare (whose signature is kept to rebuild the prepared certificate);
 * - `commit`: it became prepared (the certificate is kept for later VIEW-CHANGEs) and sent a commit vote;
 * - `checkpoint`: a checkpoint became stable (proof kept: it is the low watermark after a restart).
 */
export type JournalEntry =
  | { type: 'viewChange'; view: number; bytes: Uint8Array }
  | { type: 'view'; view: number }
  | { type: 'newView'; view: number; bytes: Uint8Array }
  | { type: 'proposal'; view: number; height: number; digest: Uint8Array; block: Uint8Array }
  | {
      type: 'prepare'
      view: number
      height: number
      digest: Uint8Array
      block: Uint8Array
      primarySignature: Uint8Array
    }
  | {
      type: 'commit'
      view: number
      height: number
      digest: Uint8Array
      block: Uint8Array
      prepared: PreparedCertificate
    }
  | { type: 'checkpoint'; proof: CheckpointProof }

/**
 * VIEW-CHANGEs this replica signed that a restart keeps (the newest ones, whatever came after them): a
 * peer still asking for a view this replica left needs it to reach 2f+1 for that view.
 */
export const JOURNAL_OWN_VIEW_CHANGES = 4

/** What `restoreFromJournal` recovers; the replica rebuilds its state from it on a `start` input. */
export interface RestoredJournal {
  view: number
  /** True when the last thing done in `view` was to ask for it (VIEW-CHANGE sent, NEW-VIEW not yet seen). */
  changingView: boolean
  /** Every VIEW-CHANGE this replica signed (the newest JOURNAL_OWN_VIEW_CHANGES, oldest first). */
  ownViewChanges: { view: number; bytes: Uint8Array }[]
  /** The NEW-VIEW this replica signed for `view` as its primary, if any. */
  newViewBytes?: Uint8Array
  stable?: CheckpointProof
  proposals: Extract<JournalEntry, { type: 'proposal' }>[]
  prepares: Extract<JournalEntry, { type: 'prepare' }>[]
  commits: Extract<JournalEntry, { type: 'commit' }>[]
}

/** Folds journal entries (oldest first) into what a restarted replica needs. Pure; tolerates compacted journals. */
export function restoreFromJournal(entries: readonly JournalEntry[]): RestoredJournal {
  const r: RestoredJournal = {
    view: 0,
    changingView: false,
    ownViewChanges: [],
    proposals: [],
    prepares: [],
    commits: [],
  }
  for (const e of entries) {
    switch (e.type) {
      case 'viewChange':
        r.ownViewChanges = r.ownViewChanges.filter((x) => x.view !== e.view)
        r.ownViewChanges.push({ view: e.view, bytes: e.bytes })
        if (r.ownViewChanges.length > JOURNAL_OWN_VIEW_CHANGES) r.ownViewChanges.shift()
        if (e.view >= r.view) {
          if (e.view > r.view) r.newViewBytes = undefined
          r.view = e.view
          r.changingView = true
        }
        break
      case 'view':
        if (e.view >= r.view) {
          if (e.view > r.view) r.newViewBytes = undefined
          r.view = e.view
          r.changingView = false
        }
        break
      case 'newView':
        if (e.view >= r.view) r.newViewBytes = e.bytes
        break
      case 'proposal':
        r.proposals.push(e)
        break
      case 'prepare':
        r.prepares.push(e)
        break
      case 'commit':
        r.commits.push(e)
        break
      case 'checkpoint':
        if (!r.stable || e.proof.height > r.stable.height) r.stable = e.proof
        break
    }
  }
  const low = r.stable?.height ?? 0
  r.proposals = r.proposals.filter((e) => e.height > low)
  r.prepares = r.prepares.filter((e) => e.height > low)
  r.commits = r.commits.filter((e) => e.height > low)
  return r
}

/**
 * Drops what a stable checkpoint at `stableHeight` made useless: entries at or below it, all but the
 * newest checkpoint, and view records older than the newest (but the newest own VIEW-CHANGEs stay).
 * Apply on a `compactJournal` output.
 */
export function compactJournal(entries: readonly JournalEntry[], stableHeight: number): JournalEntry[] {
  const r = restoreFromJournal(entries)
  const kept = new Set(r.ownViewChanges.map((x) => x.bytes))
  const out: JournalEntry[] = []
  if (r.stable) out.push({ type: 'checkpoint', proof: r.stable })
  for (const e of entries) {
    if (e.type === 'checkpoint') continue
    if (e.type === 'proposal' || e.type === 'prepare' || e.type === 'commit') {
      if (e.height > stableHeight) out.push(e)
      continue
    }
    if (e.view >= r.view || (e.type === 'viewChange' && kept.has(e.bytes))) out.push(e)
  }
  return out
}
