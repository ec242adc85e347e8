import { type CommitCertificate, type Vote, VoteKind, equalBytes, toHex } from '@cityledger/core'
import { NULL_DIGEST } from '../config.ts'
import { ConsensusError } from '../errors.ts'
import { encodeMessage } from '../messages/codec.ts'
import type { ConsensusMessage, PreparedCertificate } from '../messages/types.ts'
import { needBlock } from './blocks.ts'
import type { ReplicaState, Slot } from './state.ts'

// Normal-case operation (Castro & Liskov, OSDI 1999, section 4.2): pre-prepare, prepare, commit, and
// execution in sequence-number (height) order. Sequence number = block height.

/** The primary asks its node for blocks for the next heights, within the high watermark and the in-flight limit. */
export function maybePropose(r: ReplicaState): void {
  if (r.changing || !r.isPrimary) return
  r.nextProposal = Math.max(r.nextProposal, r.lastCommitted + 1, r.stable.height + 1)
  // Never above the epoch's last height: the next validator set proposes those.
  const high = Math.min(r.stable.height + r.config.windowSize, r.lastHeight ?? Number.POSITIVE_INFINITY)
  while (r.nextProposal <= high && r.nextProposal - r.lastCommitted <= r.config.maxInFlight) {
    const h = r.nextProposal++
    if (r.slots.get(h)?.proposals.has(r.view)) continue
    r.out.push({ type: 'requestProposal', height: h, view: r.view })
  }
}

/** Pre-prepare phase (paper 4.2): the primary assigns the block to (view, height) and multicasts it. */
export function onProposal(
  r: ReplicaState,
  height: number,
  view: number,
  block: Uint8Array,
  digest: Uint8Array,
): void {
  if (r.changing || view !== r.view || !r.isPrimary) return
  if (
    height <= r.lastCommitted ||
    height <= r.stable.height ||
    height > r.stable.height + r.config.windowSize ||
    r.afterEpoch(height)
  )
    return
  const s = r.slot(height)
  if (s.proposals.has(view) || s.committed) return
  const d = r.digestOf(block)
  if (!d || !equalBytes(d, digest) || equalBytes(digest, NULL_DIGEST)) {
    throw new ConsensusError(
      'DIGEST_MISMATCH',
      `proposal for height ${height}: block does not hash to its digest`,
    )
  }
  const { vote, signature } = r.vote(VoteKind.prepare, view, height, digest)
  const hex = toHex(digest)
  r.journal({ type: 'proposal', view, height, digest, block })
  s.proposals.set(view, { view, digest, hex, block, signature, validated: 'ok' })
  s.blocks.set(hex, block)
  r.recordVote(s.prepares, view, r.config.index, digest, signature)
  r.markPrepareSent(s, view, hex)
  const bytes = encodeMessage({ type: 'prePrepare', vote, signature, block })
  r.remember(s, view, 'prePrepare', bytes)
  r.send('prePrepare', bytes)
  checkPrepared(r, s)
}

/**
 * A backup accepts a pre-prepare (paper 4.2) if it is signed by the primary of its current view, its
 * height is between the watermarks, the block matches the digest, and it has not accepted a different
 * one for the same view and height. It then asks the node to validate the block before preparing.
 */
export function onPrePrepare(r: ReplicaState, m: Extract<ConsensusMessage, { type: 'prePrepare' }>): void {
  const v = m.vote
  const kind = 'prePrepare'
  r.checkChain(v.chainId, kind)
  const who = r.validatorIndex(v.validator, kind)
  if (v.view < r.view) r.fail('OLD_VIEW', `prePrepare for view ${v.view} < ${r.view}`, kind)
  if (v.view > r.view || r.changing) {
    // Not usable yet, but honest primaries run ahead: refuse without penalty only what is really signed,
    // so that a forged flood costs its sender its connection (cheap checks, then signature, then penalty).
    r.checkVoteSignature(v, m.signature, kind)
    if (v.view > r.view) r.fail('FUTURE_VIEW', `prePrepare for view ${v.view} > ${r.view}`, kind)
    r.fail('NOT_READY', 'prePrepare during a view change', kind)
  }
  if (who !== r.primaryOf(v.view))
    r.fail('NOT_PRIMARY', `prePrepare from ${who}, primary is ${r.primaryOf(v.view)}`, kind)
  r.checkWindow(v.height, kind)
  r.checkEpoch(v.height, kind)
  if (v.height <= r.lastCommitted) r.fail('STALE', `height ${v.height} already committed`, kind)
  if (equalBytes(v.digest, NULL_DIGEST)) r.fail('DIGEST_MISMATCH', 'null digest outside a NEW-VIEW', kind)
  const s = r.slots.get(v.height)
  const prev = s?.proposals.get(v.view)
  const hex = toHex(v.digest)
  if (prev && prev.hex === hex) r.fail('DUPLICATE', 'prePrepare already accepted', kind)
  r.checkVoteSignature(v, m.signature, kind)
  if (prev) r.fail('EQUIVOCATION', `primary proposed two blocks at (${v.view}, ${v.height})`, kind, who)
  const primaryVote = s?.prepares.get(v.view)?.get(who)
  if (primaryVote && primaryVote.hex !== hex)
    r.fail('EQUIVOCATION', "pre-prepare contradicts the primary's prepare", kind, who)
  r.checkBlock(v.digest, m.block, kind)
  const slot = r.slot(v.height)
  slot.proposals.set(v.view, {
    view: v.view,
    digest: v.digest,
    hex,
    block: m.block,
    signature: m.signature,
    validated: 'pending',
  })
  slot.blocks.set(hex, m.block)
  r.recordVote(slot.prepares, v.view, who, v.digest, m.signature)
  r.out.push({ type: 'validate', height: v.height, view: v.view, digest: v.digest, block: m.block })
  checkCommitted(r, slot)
}

/** The node's verdict on a pre-prepared block: a backup prepares only a block it validated (paper 4.2: the request is checked before it is accepted); an invalid one convicts the primary. */
export function onValidated(
  r: ReplicaState,
  height: number,
  view: number,
  digest: Uint8Array,
  ok: boolean,
): void {
  const s = r.slots.get(height)
  const p = s?.proposals.get(view)
  if (!s || !p || !equalBytes(p.digest, digest) || p.validated !== 'pending') return
  p.validated = ok ? 'ok' : 'bad'
  if (!ok) {
    r.out.push({
      type: 'reject',
      code: 'INVALID_BLOCK',
      penalize: true,
      reason: `invalid block at (${view}, ${height})`,
      kind: 'prePrepare',
      offender: r.primaryOf(view),
    })
    return
  }
  tryPrepare(r, s)
}

/** Prepare phase (paper 4.2): a backup that accepted and validated the pre-prepare multicasts PREPARE (journalled first). */
export function tryPrepare(r: ReplicaState, s: Slot): void {
  const view = r.view
  if (r.changing || r.afterEpoch(s.height)) return
  const p = s.proposals.get(view)
  if (!p || p.validated !== 'ok') return
  if (!s.sentPrepare.has(view)) {
    if (r.primaryOf(view) === r.config.index) return
    r.journal({
      type: 'prepare',
      view,
      height: s.height,
      digest: p.digest,
      block: p.block,
      primarySignature: p.signature,
    })
    const { vote, signature } = r.vote(VoteKind.prepare, view, s.height, p.digest)
    r.recordVote(s.prepares, view, r.config.index, p.digest, signature)
    r.markPrepareSent(s, view, p.hex)
    const bytes = encodeMessage({ type: 'prepare', vote, signature })
    r.remember(s, view, 'prepare', bytes)
    r.send('prepare', bytes)
  }
  checkPrepared(r, s)
}

/**
 * prepared(m, v, n, i) (paper 4.2): the pre-prepare plus matching prepares from 2f+1 validators in all
 * (the primary's pre-prepare counts as its prepare). The certificate is journalled with the commit vote
 * before COMMIT is multicast, so a restarted replica still reports it in VIEW-CHANGEs.
 */
export function checkPrepared(r: ReplicaState, s: Slot): void {
  const view = r.view
  if (r.changing || r.afterEpoch(s.height)) return
  const p = s.proposals.get(view)
  if (!p || s.sentPrepare.get(view) !== p.hex || s.sentCommit.has(view)) return
  const votes = s.prepares.get(view)
  if (r.countFor(votes, p.hex) < r.config.quorum) return
  const cert: PreparedCertificate = {
    height: s.height,
    view,
    digest: p.digest,
    signatures: r.sortedSignatures(votes!, p.hex),
  }
  if (!s.prepared || s.prepared.cert.view < view) s.prepared = { cert, hex: p.hex }
  r.journal({ type: 'commit', view, height: s.height, digest: p.digest, block: p.block, prepared: cert })
  const { vote, signature } = r.vote(VoteKind.commit, view, s.height, p.digest)
  r.recordVote(s.commits, view, r.config.index, p.digest, signature)
  s.sentCommit.set(view, p.hex)
  const bytes = encodeMessage({ type: 'commit', vote, signature })
  r.remember(s, view, 'commit', bytes)
  r.send('commit', bytes)
  checkCommitted(r, s)
}

/** PREPARE and COMMIT (paper 4.2): accepted for views v-1..v+1 (commits of the previous view still prove commitment). */
export function onVote(r: ReplicaState, kind: 'prepare' | 'commit', v: Vote, signature: Uint8Array): void {
  r.checkChain(v.chainId, kind)
  const who = r.validatorIndex(v.validator, kind)
  const oldest = kind === 'prepare' ? r.view : r.view - 1
  if (v.view < oldest) r.fail('OLD_VIEW', `${kind} for view ${v.view}`, kind)
  if (v.view > r.view + 1) {
    r.checkVoteSignature(v, signature, kind)
    r.fail('FUTURE_VIEW', `${kind} for view ${v.view}`, kind)
  }
  r.checkWindow(v.height, kind)
  r.checkEpoch(v.height, kind)
  const s = r.slots.get(v.height)
  if (v.height <= r.lastCommitted || s?.committed)
    r.fail('STALE', `height ${v.height} already committed`, kind)
  const map = kind === 'prepare' ? s?.prepares : s?.commits
  const prev = map?.get(v.view)?.get(who)
  const hex = toHex(v.digest)
  if (prev && prev.hex === hex) r.fail('DUPLICATE', `${kind} already counted`, kind)
  r.checkVoteSignature(v, signature, kind)
  if (prev)
    r.fail('EQUIVOCATION', `validator ${who} sent two ${kind}s at (${v.view}, ${v.height})`, kind, who)
  const slot = r.slot(v.height)
  r.recordVote(kind === 'prepare' ? slot.prepares : slot.commits, v.view, who, v.digest, signature)
  if (kind === 'prepare') checkPrepared(r, slot)
  else checkCommitted(r, slot)
}

/**
 * committed-local (paper 4.2), signature variant: 2f+1 matching commits of one view are a certificate
 * that f+1 honest validators prepared the block, so no other block can commit at this height. The
 * block must be known (from a pre-prepare, a certificate, or fetched by digest: blocks.ts).
 */
export function checkCommitted(r: ReplicaState, s: Slot): void {
  if (s.committed || r.afterEpoch(s.height)) return
  for (const [view, votes] of s.commits) {
    const tally = new Map<string, number>()
    for (const res of votes.values()) tally.set(res.hex, (tally.get(res.hex) ?? 0) + 1)
    for (const [hex, count] of tally) {
      if (count < r.config.quorum) continue
      const sigs = r.sortedSignatures(votes, hex)
      const digest = [...votes.values()].find((res) => res.hex === hex)!.digest
      const block = equalBytes(digest, NULL_DIGEST) ? new Uint8Array(0) : s.blocks.get(hex)
      if (!block) {
        // Committed, but the block never reached us: fetch it from those who voted for it.
        needBlock(
          r,
          s.height,
          digest,
          [...votes.entries()].filter(([, v]) => v.hex === hex).map(([i]) => i),
        )
        continue
      }
      s.committed = {
        digest,
        block,
        certificate: {
          chainId: r.config.chainId,
          view,
          height: s.height,
          blockHash: digest,
          signatures: sigs,
        },
      }
      drainCommits(r)
      return
    }
  }
}

/** Execution strictly in height order (paper 4.2: requests execute in sequence-number order). */
export function drainCommits(r: ReplicaState): void {
  let progressed = false
  for (let s = r.slots.get(r.lastCommitted + 1); s?.committed; s = r.slots.get(r.lastCommitted + 1)) {
    const c = s.committed
    emitCommit(r, s.height, c.digest, c.block, c.certificate)
    progressed = true
  }
  if (progressed) onProgress(r)
}

/** Hands one committed height to the node (paper 4.2: execute after committed-local, in order). */
export function emitCommit(
  r: ReplicaState,
  height: number,
  digest: Uint8Array,
  block: Uint8Array,
  certificate: CommitCertificate,
): void {
  const isNull = equalBytes(digest, NULL_DIGEST)
  r.out.push({ type: 'commit', height, view: certificate.view, digest, block, isNull, certificate })
  r.lastCommitted = height
  r.lastCertificate = certificate
  r.missing.delete(height)
}

/** Progress was made: the view-change timer restarts with the base timeout (paper 4.5.2: backoff resets once a request executes). */
export function onProgress(r: ReplicaState): void {
  r.backoff = 0
  if (!r.changing) r.setTimer('progress', r.timeoutMs())
  maybePropose(r)
}
