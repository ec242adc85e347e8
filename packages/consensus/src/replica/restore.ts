import { VoteKind, equalBytes, toHex } from '@cityledger/core'
import { NULL_DIGEST } from '../config.ts'
import { ConsensusError } from '../errors.ts'
import { type JournalEntry, restoreFromJournal } from '../journal.ts'
import { decodeMessage, encodeMessage } from '../messages/codec.ts'
import { maybePropose } from './normalCase.ts'
import type { ReplicaState } from './state.ts'
import { requestSync } from './sync.ts'
import type { Input } from './types.ts'
import {
  afterViewChangeUpdate,
  keepOwnViewChange,
  ownViewChange,
  parsedViewChange,
  storeViewChange,
} from './viewChange.ts'

// Start and restart: a replica re-reads what it signed (paper 4.1: "a replica must not forget what it
// sent"; here the journal, written before anything it signs is sent) so that it never equivocates.

/** First input: restore what was signed, re-send an unfinished VIEW-CHANGE, arm the timers, sync if below the stable checkpoint. */
export function onStart(r: ReplicaState, input: Extract<Input, { type: 'start' }>): void {
  if (r.started) throw new ConsensusError('DUPLICATE', 'replica already started')
  const base = r.config.baseHeight
  const committed = input.committedHeight ?? base
  if (committed < base) throw new RangeError(`start: committedHeight ${committed} < baseHeight ${base}`)
  if (r.lastHeight !== undefined && committed > r.lastHeight)
    throw new RangeError(`start: committedHeight ${committed} > lastHeight ${r.lastHeight} of the epoch`)
  r.started = true
  r.lastCommitted = r.executed = committed
  r.nextProposal = r.lastCommitted + 1
  // Without it a restarted replica's STATUS proves nothing, and peers one block behind never fetch the
  // blocks it has (sweep n=4, seeds 2345 and 3264: with one validator down for good, nothing committed).
  // Only a certificate of this epoch: the base height's one was signed by the previous validator set.
  if (
    input.certificate?.height === r.lastCommitted &&
    r.lastCommitted > base &&
    input.certificate.chainId === r.config.chainId
  )
    r.lastCertificate = input.certificate
  if (input.journal?.length) restore(r, input.journal)
  if (r.changing) {
    const own = ownViewChange(r)
    if (own) r.send('viewChange', own.bytes)
    afterViewChangeUpdate(r)
  } else {
    r.setTimer('progress', r.timeoutMs())
  }
  r.setTimer('retransmit', r.config.retransmitMs)
  if (r.lastCommitted < r.stable.height) requestSync(r)
  maybePropose(r)
}

/** Rebuilds what this replica signed from its journal, so that it never signs anything contradicting it. */
export function restore(r: ReplicaState, entries: readonly JournalEntry[]): void {
  const res = restoreFromJournal(entries)
  r.view = res.view
  r.changing = res.changingView
  if (res.stable) r.stable = res.stable
  // Journals written before VIEW-CHANGE and NEW-VIEW stopped carrying blocks hold them as attachments:
  // the same signed body is re-encoded without them (the signature covers the body only).
  const own = (bytes: Uint8Array) => {
    const m = decodeMessage(bytes, { maxBytes: r.config.maxMessageBytes, legacyAttachments: true })
    return m.type === 'viewChange' || m.type === 'newView' ? m : undefined
  }
  // Every VIEW-CHANGE it signed, also for views it left since: a peer still asking for one of them gets
  // it again (sweep n=4 seed 973: without it nobody reached 2f+1 for view 1 after a restart).
  for (const vc of res.ownViewChanges) {
    const m = own(vc.bytes)
    if (m?.type !== 'viewChange') continue
    const bytes = encodeMessage(m)
    keepOwnViewChange(r, m.body.view, bytes)
    if (res.changingView && m.body.view === res.view)
      storeViewChange(r, r.config.index, parsedViewChange(m, bytes))
  }
  if (!res.changingView && res.newViewBytes) {
    const m = own(res.newViewBytes)
    if (m?.type === 'newView') {
      r.newViewBytes = encodeMessage(m)
      r.newViewSent = res.view
    }
  }
  if (r.config.faultInjection.forgetVotesOnRestart) return
  const inWindow = (h: number) => h > r.stable.height && h <= r.stable.height + r.config.windowSize
  const me = r.config.index
  for (const e of res.proposals) {
    if (!inWindow(e.height)) continue
    const s = r.slot(e.height)
    const { vote, signature } = r.vote(VoteKind.prepare, e.view, e.height, e.digest)
    s.proposals.set(e.view, {
      view: e.view,
      digest: e.digest,
      hex: toHex(e.digest),
      block: e.block,
      signature,
      validated: 'ok',
    })
    r.keepBlock(s, e.digest, e.block)
    r.recordVote(s.prepares, e.view, me, e.digest, signature)
    r.markPrepareSent(s, e.view, toHex(e.digest))
    // A re-proposal whose block this primary lacked was journalled without it (empty): nothing to resend.
    if (!equalBytes(e.digest, NULL_DIGEST) && e.block.length > 0)
      r.remember(
        s,
        e.view,
        'prePrepare',
        encodeMessage({ type: 'prePrepare', vote, signature, block: e.block }),
      )
    if (e.view === r.view) r.nextProposal = Math.max(r.nextProposal, e.height + 1)
  }
  for (const e of res.prepares) {
    if (!inWindow(e.height)) continue
    const s = r.slot(e.height)
    const primary = r.primaryOf(e.view)
    s.proposals.set(e.view, {
      view: e.view,
      digest: e.digest,
      hex: toHex(e.digest),
      block: e.block,
      signature: e.primarySignature,
      validated: 'ok',
    })
    r.keepBlock(s, e.digest, e.block)
    r.recordVote(s.prepares, e.view, primary, e.digest, e.primarySignature)
    const { vote, signature } = r.vote(VoteKind.prepare, e.view, e.height, e.digest)
    r.recordVote(s.prepares, e.view, me, e.digest, signature)
    r.markPrepareSent(s, e.view, toHex(e.digest))
    r.remember(s, e.view, 'prepare', encodeMessage({ type: 'prepare', vote, signature }))
  }
  for (const e of res.commits) {
    if (!inWindow(e.height)) continue
    const s = r.slot(e.height)
    const hex = toHex(e.digest)
    r.keepBlock(s, e.digest, e.block)
    if (!s.prepared || s.prepared.cert.view < e.view) s.prepared = { cert: e.prepared, hex }
    const { vote, signature } = r.vote(VoteKind.commit, e.view, e.height, e.digest)
    r.recordVote(s.commits, e.view, me, e.digest, signature)
    s.sentCommit.set(e.view, hex)
    r.remember(s, e.view, 'commit', encodeMessage({ type: 'commit', vote, signature }))
  }
}
