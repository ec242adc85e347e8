import { VoteKind, equalBytes, toHex } from '@cityledger/core'
import { makeVote } from '../certificate.ts'
import { consensusSigningMessage, encodeMessage, encodeViewChangeBody } from '../messages/codec.ts'
import type { ConsensusMessage, PreparedCertificate, ViewChangeBody } from '../messages/types.ts'
import { advanceStable, verifyCheckpointProof } from './checkpoints.ts'
import { sendNewView } from './newView.ts'
import type { ParsedViewChange, ReplicaState } from './state.ts'

// View changes (Castro & Liskov, section 4.4, and 4.5.2 for liveness): VIEW-CHANGE messages and the
// rules that decide when to move to a higher view. NEW-VIEW is in newView.ts.

/**
 * VIEW-CHANGE messages kept per validator (paper 4.4 keeps them per view). Views below the current one are
 * dropped; above it, a validator's lowest views are kept plus its newest, so one faulty validator asking
 * for ever higher views holds a few entries, and a higher view never erases the support a lower one needs.
 */
export const MAX_VIEW_CHANGES_PER_VALIDATOR = 4

/**
 * VIEW-CHANGE (paper 4.4): stop accepting messages of the old view, and multicast the stable checkpoint
 * with its proof and, for every height above it, the prepared certificate of the highest view. Digests
 * and certificates only, never blocks, so the message is bounded whatever the block size (a replica that
 * lacks a re-proposed block fetches it: blocks.ts). Journalled before it is sent: a restarted replica
 * re-sends the same message.
 */
export function startViewChange(r: ReplicaState, newView: number): void {
  // A finished epoch has nothing left to agree on: its replica stays in its view and answers laggards.
  if (newView <= r.view || r.finished) return
  r.view = newView
  r.changing = true
  r.backoff++
  r.newViewBytes = undefined
  pruneViews(r)
  const prepared: PreparedCertificate[] = []
  const heights = [...r.slots.keys()].filter((h) => h > r.stable.height).sort((a, b) => a - b)
  for (const h of heights) {
    const p = r.slots.get(h)!.prepared
    if (p) prepared.push(p.cert)
  }
  const body: ViewChangeBody = {
    chainId: r.config.chainId,
    view: newView,
    validator: r.config.publicKey,
    checkpoint: r.stable,
    prepared,
  }
  const bodyBytes = encodeViewChangeBody(body)
  const signature = r.config.sign(consensusSigningMessage(bodyBytes))
  const bytes = encodeMessage({ type: 'viewChange', body, bodyBytes, signature })
  r.journal({ type: 'viewChange', view: newView, bytes })
  r.cancelTimer('progress')
  r.cancelTimer('viewChange')
  r.viewChangeTimerFor = -1
  r.out.push({ type: 'viewChanged', view: newView, changing: true })
  r.send('viewChange', bytes)
  storeViewChange(r, r.config.index, { body, bodyBytes, signature, bytes })
  keepOwnViewChange(r, newView, bytes)
  afterViewChangeUpdate(r)
}

export function parsedViewChange(
  m: Extract<ConsensusMessage, { type: 'viewChange' }>,
  bytes: Uint8Array,
): ParsedViewChange {
  return { body: m.body, bodyBytes: m.bodyBytes, signature: m.signature, bytes }
}

/** Records a verified VIEW-CHANGE of validator `who`, within the bound above. */
export function storeViewChange(r: ReplicaState, who: number, vc: ParsedViewChange): void {
  let m = r.viewChanges.get(who)
  if (!m) r.viewChanges.set(who, (m = new Map()))
  m.set(vc.body.view, vc)
  if (m.size <= MAX_VIEW_CHANGES_PER_VALIDATOR) return
  const others = [...m.keys()].filter((v) => v !== vc.body.view)
  m.delete(Math.max(...others))
}

/** Remembers this replica's VIEW-CHANGE for `view` (the last MAX_VIEW_CHANGES_PER_VALIDATOR views). */
export function keepOwnViewChange(r: ReplicaState, view: number, bytes: Uint8Array): void {
  r.ownViewChanges.set(view, bytes)
  while (r.ownViewChanges.size > MAX_VIEW_CHANGES_PER_VALIDATOR)
    r.ownViewChanges.delete(Math.min(...r.ownViewChanges.keys()))
}

/** This replica's own VIEW-CHANGE for its current view, if it sent one. */
export function ownViewChange(r: ReplicaState): ParsedViewChange | undefined {
  return r.viewChanges.get(r.config.index)?.get(r.view)
}

/** The VIEW-CHANGEs for `view`, one per validator, in validator order. */
export function viewChangesFor(r: ReplicaState, view: number): ParsedViewChange[] {
  const out: ParsedViewChange[] = []
  const who = [...r.viewChanges.keys()].sort((a, b) => a - b)
  for (const w of who) {
    const vc = r.viewChanges.get(w)!.get(view)
    if (vc) out.push(vc)
  }
  return out
}

/**
 * Drops per-view state that can no longer matter: votes and proposals of views below current - 1 (prepared
 * certificates stay), VIEW-CHANGEs for views below the current one. Blocks stay while a proposal, a
 * prepared certificate, a commit or this replica's own PREPARE (`Slot.voted`) names them.
 */
export function pruneViews(r: ReplicaState): void {
  const keep = r.view - 1
  for (const s of r.slots.values()) {
    for (const m of [s.proposals, s.prepares, s.commits, s.sentPrepare, s.sentCommit, s.ownMessages] as Map<
      number,
      unknown
    >[]) {
      for (const v of m.keys()) if (v < keep) m.delete(v)
    }
    const live = new Set<string>()
    for (const p of s.proposals.values()) live.add(p.hex)
    for (const hex of s.voted.keys()) live.add(hex)
    if (s.prepared) live.add(s.prepared.hex)
    if (s.committed) live.add(toHex(s.committed.digest))
    for (const m of s.commits.values()) for (const res of m.values()) live.add(res.hex)
    for (const hex of s.blocks.keys()) if (!live.has(hex)) s.blocks.delete(hex)
  }
  for (const [who, m] of r.viewChanges) {
    for (const v of m.keys()) if (v < r.view) m.delete(v)
    if (m.size === 0) r.viewChanges.delete(who)
  }
}

/** Full check of a VIEW-CHANGE body (paper 4.4: checkpoint proof and prepared certificates). Returns a reason or undefined. */
export function checkViewChangeBody(
  r: ReplicaState,
  b: ViewChangeBody,
  bodyBytes: Uint8Array,
  signature: Uint8Array,
): string | undefined {
  if (b.chainId !== r.config.chainId) return 'wrong chain'
  if (!r.config.indexOf.has(toHex(b.validator))) return 'unknown validator'
  if (b.view === 0) return 'view 0'
  if (!r.config.verify({ publicKey: b.validator, message: consensusSigningMessage(bodyBytes), signature }))
    return 'bad signature'
  const cpErr = verifyCheckpointProof(r, b.checkpoint)
  if (cpErr) return cpErr
  let last = b.checkpoint.height
  for (const p of b.prepared) {
    if (p.height <= last) return 'prepared certificates out of order'
    if (p.height > b.checkpoint.height + r.config.windowSize) return 'prepared certificate above the window'
    if (p.view >= b.view) return 'prepared certificate from a future view'
    last = p.height
    const res = r.quorumCheck(p.signatures, (v) =>
      makeVote(r.config.chainId, VoteKind.prepare, p.view, p.height, p.digest, v),
    )
    if (!res.ok) return `prepared certificate at ${p.height}: ${res.code}`
  }
  return undefined
}

/**
 * VIEW-CHANGE from a peer (paper 4.4): accepted once per validator and view, when its checkpoint proof and
 * prepared certificates verify; two different ones for one view convict the signer. A peer still asking
 * for a view this replica already runs in missed the NEW-VIEW: it gets it again, but only once its
 * VIEW-CHANGE is authenticated, and at most once per retransmission tick.
 */
export function onViewChange(
  r: ReplicaState,
  m: Extract<ConsensusMessage, { type: 'viewChange' }>,
  bytes: Uint8Array,
): void {
  const kind = 'viewChange'
  const b = m.body
  r.checkChain(b.chainId, kind)
  const who = r.validatorIndex(b.validator, kind)
  if (who === r.config.index) r.fail('DUPLICATE', 'own view change', kind)
  const prev = r.viewChanges.get(who)?.get(b.view)
  const same = prev !== undefined && equalBytes(prev.bodyBytes, m.bodyBytes)
  const known = same && equalBytes(prev.signature, m.signature)
  // Forwarded only for a VIEW-CHANGE that is authenticated and refused for no fault of its sender (or
  // accepted): a penalised refusal never makes this replica send anything.
  const forward = () => {
    if (!r.changing && r.newViewBytes && b.view <= r.view && b.view > 0 && r.canAnswer('newView', who)) {
      r.spendAnswer('newView', who)
      r.send('newView', r.newViewBytes, who)
    }
  }
  if (known) {
    forward()
    r.fail('DUPLICATE', 'view change already counted', kind)
  }
  if (b.view < r.view) {
    const signed = r.config.verify({
      publicKey: b.validator,
      message: consensusSigningMessage(m.bodyBytes),
      signature: m.signature,
    })
    if (!signed) r.fail('BAD_SIGNATURE', 'viewChange: bad signature', kind)
    forward()
    // The peer still asks for a lower view: it may lack our VIEW-CHANGE for it (lost before we moved on,
    // and we retransmit only the newest). Without it the peer can miss both 2f+1 for its view and f+1 for
    // higher ones, with no timer armed: a deadlock once the network heals (sim n=4, seed 5004).
    const mine = r.ownViewChanges.get(b.view)
    if (mine && r.canAnswer('viewChange', who)) {
      r.spendAnswer('viewChange', who)
      r.send('viewChange', mine, who)
    }
    r.fail('OLD_VIEW', `view change to ${b.view} < ${r.view}`, kind)
  }
  const err = checkViewChangeBody(r, b, m.bodyBytes, m.signature)
  if (err) r.fail(err === 'bad signature' ? 'BAD_SIGNATURE' : 'BAD_VIEW_CHANGE', `viewChange: ${err}`, kind)
  if (prev && !same)
    r.fail('EQUIVOCATION', `validator ${who} signed two view changes for ${b.view}`, kind, who)
  forward()
  if (prev) r.fail('DUPLICATE', 'view change already counted', kind)
  storeViewChange(r, who, parsedViewChange(m, bytes))
  if (b.checkpoint.height > r.stable.height) advanceStable(r, b.checkpoint)
  afterViewChangeUpdate(r)
}

/**
 * After any VIEW-CHANGE: join a view change once f+1 validators ask for views above ours, moving to the
 * smallest of them (paper 4.5.2, liveness); start the view-change timer once 2f+1 ask for ours (4.5.2);
 * as the new primary, send NEW-VIEW (4.4).
 */
export function afterViewChangeUpdate(r: ReplicaState): void {
  const higher: number[] = []
  for (const [who, m] of r.viewChanges) {
    if (who === r.config.index) continue
    let low = Number.POSITIVE_INFINITY
    for (const v of m.keys()) if (v > r.view && v < low) low = v
    if (low !== Number.POSITIVE_INFINITY) higher.push(low)
  }
  if (higher.length >= r.config.weak) {
    startViewChange(r, Math.min(...higher))
    return
  }
  if (!r.changing) return
  const forView = viewChangesFor(r, r.view)
  if (forView.length < r.config.quorum) return
  if (r.viewChangeTimerFor !== r.view) {
    r.viewChangeTimerFor = r.view
    r.setTimer('viewChange', r.timeoutMs())
  }
  if (r.isPrimary && r.newViewSent !== r.view) sendNewView(r, forView)
}
