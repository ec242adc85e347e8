import { VoteKind, equalBytes, toHex } from '@cityledger/core'
import { makeVote } from '../certificate.ts'
import { NULL_DIGEST } from '../config.ts'
import { consensusSigningMessage, encodeMessage, encodeViewChangeBody } from '../messages/codec.ts'
import type { ConsensusMessage, PreparedCertificate, ViewChangeBody } from '../messages/types.ts'
import { advanceStable, verifyCheckpointProof } from './checkpoints.ts'
import { sendNewView } from './newView.ts'
import type { ParsedViewChange, ReplicaState } from './state.ts'

// View changes (Castro & Liskov, section 4.4, and 4.5.2 for liveness): VIEW-CHANGE messages and the
// rules that decide when to move to a higher view. NEW-VIEW is in newView.ts.

/**
 * VIEW-CHANGE (paper 4.4): stop accepting messages of the old view, and multicast the stable checkpoint
 * with its proof and, for every height above it, the prepared certificate of the highest view.
 * Journalled before it is sent: a restarted replica re-sends the same message.
 */
export function startViewChange(r: ReplicaState, newView: number): void {
  if (newView <= r.view) return
  r.view = newView
  r.changing = true
  r.backoff++
  r.newViewBytes = undefined
  pruneViews(r)
  const prepared: PreparedCertificate[] = []
  const blocks: Uint8Array[] = []
  const heights = [...r.slots.keys()].filter((h) => h > r.stable.height).sort((a, b) => a - b)
  for (const h of heights) {
    const p = r.slots.get(h)!.prepared
    if (!p) continue
    prepared.push(p.cert)
    if (!equalBytes(p.cert.digest, NULL_DIGEST)) blocks.push(p.block)
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
  const bytes = encodeMessage({ type: 'viewChange', body, bodyBytes, signature, blocks })
  r.journal({ type: 'viewChange', view: newView, bytes })
  r.cancelTimer('progress')
  r.cancelTimer('viewChange')
  r.viewChangeTimerFor = -1
  r.out.push({ type: 'viewChanged', view: newView, changing: true })
  r.send('viewChange', bytes)
  r.viewChanges.set(
    r.config.index,
    parsedViewChange({ type: 'viewChange', body, bodyBytes, signature, blocks }, bytes),
  )
  afterViewChangeUpdate(r)
}

/** Indexes the blocks attached to a VIEW-CHANGE by digest. */
export function parsedViewChange(
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
    if (s.prepared) live.add(s.prepared.hex)
    if (s.committed) live.add(toHex(s.committed.digest))
    for (const m of s.commits.values()) for (const res of m.values()) live.add(res.hex)
    for (const hex of s.blocks.keys()) if (!live.has(hex)) s.blocks.delete(hex)
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
 * prepared certificates verify; two different ones for one view convict the signer.
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
  const prev = r.viewChanges.get(who)
  // A peer still asking for a view we already run in has missed the NEW-VIEW: forward it (it is self-authenticating).
  if (!r.changing && r.newViewBytes && b.view <= r.view && b.view > 0) r.send('newView', r.newViewBytes, who)
  if (prev && equalBytes(prev.bodyBytes, m.bodyBytes))
    r.fail('DUPLICATE', 'view change already counted', kind)
  if (prev && prev.body.view > b.view)
    r.fail('OLD_VIEW', `validator ${who} already asked for view ${prev.body.view}`, kind)
  if (b.view < r.view) r.fail('OLD_VIEW', `view change to ${b.view} < ${r.view}`, kind)
  const err = checkViewChangeBody(r, b, m.bodyBytes, m.signature)
  if (err) r.fail(err === 'bad signature' ? 'BAD_SIGNATURE' : 'BAD_VIEW_CHANGE', `viewChange: ${err}`, kind)
  const nonNull = b.prepared.filter((p) => !equalBytes(p.digest, NULL_DIGEST))
  if (m.blocks.length !== nonNull.length)
    r.fail('BAD_VIEW_CHANGE', 'viewChange: one block per non-null prepared certificate', kind)
  nonNull.forEach((p, i) => r.checkBlock(p.digest, m.blocks[i]!, kind))
  if (prev && prev.body.view === b.view)
    r.fail('EQUIVOCATION', `validator ${who} signed two view changes for ${b.view}`, kind, who)
  r.viewChanges.set(who, parsedViewChange(m, bytes))
  if (b.checkpoint.height > r.stable.height) advanceStable(r, b.checkpoint)
  afterViewChangeUpdate(r)
}

/**
 * After any VIEW-CHANGE: join a view change once f+1 validators ask for higher views (paper 4.5.2,
 * liveness); start the view-change timer once 2f+1 ask for ours; as the new primary, send NEW-VIEW.
 */
export function afterViewChangeUpdate(r: ReplicaState): void {
  const higher = new Map<number, number>()
  for (const [who, vc] of r.viewChanges)
    if (who !== r.config.index && vc.body.view > r.view) higher.set(who, vc.body.view)
  if (higher.size >= r.config.weak) {
    startViewChange(r, Math.min(...higher.values()))
    return
  }
  if (!r.changing) return
  const forView = [...r.viewChanges.values()].filter((vc) => vc.body.view === r.view)
  if (forView.length < r.config.quorum) return
  if (r.viewChangeTimerFor !== r.view) {
    r.viewChangeTimerFor = r.view
    r.setTimer('viewChange', r.timeoutMs())
  }
  if (r.isPrimary && r.newViewSent !== r.view) sendNewView(r, forView)
}
