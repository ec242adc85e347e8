import { VoteKind, equalBytes, toHex } from '@cityledger/core'
import { makeVote } from '../certificate.ts'
import { NULL_DIGEST } from '../config.ts'
import { consensusSigningMessage, decodeViewChangeBody, encodeNewViewBody } from '../messages/codec.ts'
import { encodeMessage } from '../messages/codec.ts'
import type {
  CheckpointProof,
  ConsensusMessage,
  NewViewBody,
  Reproposal,
  ViewChangeBody,
} from '../messages/types.ts'
import { needBlock } from './blocks.ts'
import { advanceStable } from './checkpoints.ts'
import { checkCommitted, maybePropose, tryPrepare } from './normalCase.ts'
import type { NewViewEntry, ParsedViewChange, ReplicaState } from './state.ts'
import { checkViewChangeBody, pruneViews } from './viewChange.ts'
/** One height of a NEW-VIEW as every replica recomputes it from the VIEW-CHANGEs. */
export interface PlannedReproposal {
  height: number
  digest: Uint8Array
  /** The view of the prepared certificate carried over, or -1 for a null filler. */
  fromView: number
}

export interface NewViewPlan {
  /** The highest stable checkpoint among the VIEW-CHANGEs (min-s in the paper). */
  checkpoint: CheckpointProof
  /** Heights min-s+1 .. max-s, ascending, one entry each. */
  reproposals: PlannedReproposal[]
}

/**
 * Castro & Liskov, section 4.4 (NEW-VIEW): min-s is the latest stable checkpoint in V, max-s the highest
 * height of a prepared certificate in V. For every height in (min-s, max-s] the new primary re-proposes
 * the digest of the prepared certificate with the highest view, or a null request when V has none.
 * Deterministic in its input (ties between equal views, impossible with at most f faults, go to the
 * smallest digest), so backups recompute it and compare. `ignorePrepared` is a deliberate bug for tests.
 */
export function planNewView(viewChanges: readonly ViewChangeBody[], ignorePrepared = false): NewViewPlan {
  let checkpoint = viewChanges[0]!.checkpoint
  for (const vc of viewChanges) if (vc.checkpoint.height > checkpoint.height) checkpoint = vc.checkpoint
  const minS = checkpoint.height
  const best = new Map<number, { view: number; digest: Uint8Array; hex: string }>()
  let maxS = minS
  for (const vc of viewChanges) {
    for (const p of vc.prepared) {
      if (p.height <= minS) continue
      if (p.height > maxS) maxS = p.height
      const hex = toHex(p.digest)
      const cur = best.get(p.height)
      if (!cur || p.view > cur.view || (p.view === cur.view && hex < cur.hex))
        best.set(p.height, { view: p.view, digest: p.digest, hex })
    }
  }
  const reproposals: PlannedReproposal[] = []
  for (let h = minS + 1; h <= maxS; h++) {
    const b = ignorePrepared ? undefined : best.get(h)
    reproposals.push(
      b
        ? { height: h, digest: b.digest, fromView: b.view }
        : { height: h, digest: NULL_DIGEST, fromView: -1 },
    )
  }
  return { checkpoint, reproposals }
}

/**
 * Validators that should hold the block `digest` at `height`: those whose VIEW-CHANGE reports a prepared
 * certificate for it, then the certificates' signers (each prepared it, so it had the block).
 */
function holdersOf(
  r: ReplicaState,
  bodies: readonly ViewChangeBody[],
  height: number,
  digest: Uint8Array,
): number[] {
  const out: number[] = []
  const add = (key: Uint8Array) => {
    const i = r.config.indexOf.get(toHex(key))
    if (i !== undefined && i !== r.config.index && !out.includes(i)) out.push(i)
  }
  const certs = bodies.flatMap((b) =>
    b.prepared.filter((p) => p.height === height && equalBytes(p.digest, digest)).map((p) => ({ b, p })),
  )
  for (const { b } of certs) add(b.validator)
  for (const { p } of certs) for (const sig of p.signatures) add(sig.validator)
  return out
}

/**
 * NEW-VIEW (paper 4.4): 2f+1 VIEW-CHANGEs (our own included) and the re-proposals they determine. Digests
 * and signatures only: a block this primary lacks is fetched like any backup would (blocks.ts).
 */
export function sendNewView(r: ReplicaState, forView: ParsedViewChange[]): void {
  const me = r.config.index
  const chosen = forView
    .map((vc) => ({ vc, who: r.config.indexOf.get(toHex(vc.body.validator))! }))
    .sort((a, b) => (a.who === me ? -1 : b.who === me ? 1 : a.who - b.who))
    .slice(0, r.config.quorum)
    .map((x) => x.vc)
  const bodies = chosen.map((c) => c.body)
  const plan = planNewView(bodies, r.config.faultInjection.newViewIgnoresPrepared)
  const reproposals: Reproposal[] = []
  const entries: NewViewEntry[] = []
  for (const res of plan.reproposals) {
    const { signature } = r.vote(VoteKind.prepare, r.view, res.height, res.digest)
    reproposals.push({ height: res.height, digest: res.digest, signature })
    entries.push({
      height: res.height,
      digest: res.digest,
      block: knownBlock(r, res.height, res.digest),
      signature,
      holders: holdersOf(r, bodies, res.height, res.digest),
    })
  }
  const body: NewViewBody = {
    chainId: r.config.chainId,
    view: r.view,
    validator: r.config.publicKey,
    viewChanges: chosen.map((c) => ({ bodyBytes: c.bodyBytes, signature: c.signature })),
    reproposals,
  }
  const bodyBytes = encodeNewViewBody(body)
  const signature = r.config.sign(consensusSigningMessage(bodyBytes))
  const bytes = encodeMessage({ type: 'newView', body, bodyBytes, signature })
  r.newViewSent = r.view
  r.journal({ type: 'newView', view: r.view, bytes })
  enterView(r, r.view, plan.checkpoint, entries, bytes, true)
}

/** The block this replica holds for (height, digest): empty for a null filler, and empty when unknown. */
function knownBlock(r: ReplicaState, height: number, digest: Uint8Array): Uint8Array {
  if (equalBytes(digest, NULL_DIGEST)) return new Uint8Array(0)
  const s = r.slots.get(height)
  return s?.blocks.get(toHex(digest)) ?? new Uint8Array(0)
}

/**
 * A backup accepts NEW-VIEW (paper 4.4) when it is signed by the primary of the new view, carries 2f+1
 * valid VIEW-CHANGEs for that view from distinct validators, and its re-proposals are exactly those the
 * backup recomputes from them (min-s, max-s, highest-view prepared digest or null).
 */
export function onNewView(
  r: ReplicaState,
  m: Extract<ConsensusMessage, { type: 'newView' }>,
  bytes: Uint8Array,
): void {
  const kind = 'newView'
  const b = m.body
  r.checkChain(b.chainId, kind)
  const who = r.validatorIndex(b.validator, kind)
  if (b.view < r.view) r.fail('OLD_VIEW', `newView ${b.view} < ${r.view}`, kind)
  if (b.view === r.view && !r.changing) r.fail('DUPLICATE', `already in view ${b.view}`, kind)
  if (b.view === 0) r.fail('MALFORMED', 'newView for view 0', kind)
  if (who !== r.primaryOf(b.view)) r.fail('NOT_PRIMARY', `newView ${b.view} from ${who}`, kind)
  if (
    !r.config.verify({
      publicKey: b.validator,
      message: consensusSigningMessage(m.bodyBytes),
      signature: m.signature,
    })
  ) {
    r.fail('BAD_SIGNATURE', 'newView: bad signature', kind)
  }
  if (b.viewChanges.length < r.config.quorum)
    r.fail('BAD_NEW_VIEW', 'newView: fewer than 2f+1 view changes', kind)
  const seen = new Set<string>()
  const bodies: ViewChangeBody[] = []
  for (const vc of b.viewChanges) {
    let body: ViewChangeBody
    const known = [...r.viewChanges.values()]
      .flatMap((m) => [...m.values()])
      .find((p) => equalBytes(p.bodyBytes, vc.bodyBytes) && equalBytes(p.signature, vc.signature))
    if (known) body = known.body
    else {
      try {
        body = decodeViewChangeBody(vc.bodyBytes, r.config.maxMessageBytes)
      } catch {
        r.fail('BAD_NEW_VIEW', 'newView: undecodable view change', kind)
      }
      const err = checkViewChangeBody(r, body, vc.bodyBytes, vc.signature)
      if (err) r.fail('BAD_NEW_VIEW', `newView: view change: ${err}`, kind)
    }
    if (body.view !== b.view) r.fail('BAD_NEW_VIEW', 'newView: view change for another view', kind)
    const hex = toHex(body.validator)
    if (seen.has(hex)) r.fail('BAD_NEW_VIEW', 'newView: two view changes from one validator', kind)
    seen.add(hex)
    bodies.push(body)
  }
  const plan = planNewView(bodies, r.config.faultInjection.newViewIgnoresPrepared)
  if (plan.reproposals.length !== b.reproposals.length)
    r.fail('BAD_NEW_VIEW', 'newView: re-proposals differ from the recomputed ones', kind)
  const entries: NewViewEntry[] = []
  for (let i = 0; i < plan.reproposals.length; i++) {
    const want = plan.reproposals[i]!
    const got = b.reproposals[i]!
    if (got.height !== want.height || !equalBytes(got.digest, want.digest)) {
      r.fail('BAD_NEW_VIEW', `newView: re-proposal at ${want.height} differs from the recomputed one`, kind)
    }
    const vote = makeVote(r.config.chainId, VoteKind.prepare, b.view, got.height, got.digest, b.validator)
    r.checkVoteSignature(vote, got.signature, kind)
    entries.push({
      height: got.height,
      digest: got.digest,
      block: knownBlock(r, got.height, got.digest),
      signature: got.signature,
      holders: [who, ...holdersOf(r, bodies, got.height, got.digest).filter((h) => h !== who)],
    })
  }
  enterView(r, b.view, plan.checkpoint, entries, bytes, false)
}

/**
 * Enter view `view` in normal operation with its re-proposals as pre-prepares (paper 4.4): backups
 * multicast PREPAREs for them; re-proposed blocks skip validation (a prepared certificate shows f+1
 * honest validators validated them) and null fillers need none. Votes name digests, so a replica votes
 * without the block; a block it lacks is fetched from the validators that hold it (paper 4.4: "if it
 * does not have the request, it fetches it"), and the height commits once it is there. The primary's
 * next fresh proposal goes right after max-s.
 */
export function enterView(
  r: ReplicaState,
  view: number,
  checkpoint: CheckpointProof,
  entries: NewViewEntry[],
  newViewBytes: Uint8Array,
  asPrimary: boolean,
): void {
  r.journal({ type: 'view', view })
  if (view > r.view) r.view = view
  r.changing = false
  r.newViewBytes = newViewBytes
  pruneViews(r)
  r.cancelTimer('viewChange')
  r.setTimer('progress', r.timeoutMs())
  r.out.push({ type: 'viewChanged', view, changing: false })
  if (checkpoint.height > r.stable.height) advanceStable(r, checkpoint)
  const primary = r.primaryOf(view)
  let maxS = checkpoint.height
  for (const e of entries) {
    maxS = Math.max(maxS, e.height)
    // Re-proposals above the epoch's last height (nulls included) are not this validator set's to fill.
    if (e.height <= r.stable.height || r.afterEpoch(e.height)) continue
    const s = r.slot(e.height)
    const hex = toHex(e.digest)
    s.proposals.set(view, {
      view,
      digest: e.digest,
      hex,
      block: e.block,
      signature: e.signature,
      validated: 'ok',
    })
    r.keepBlock(s, e.digest, e.block)
    if (!s.blocks.has(hex)) needBlock(r, e.height, e.digest, e.holders)
    r.recordVote(s.prepares, view, primary, e.digest, e.signature)
    if (asPrimary) {
      r.journal({ type: 'proposal', view, height: e.height, digest: e.digest, block: e.block })
      r.markPrepareSent(s, view, hex)
    }
  }
  if (asPrimary) r.send('newView', newViewBytes)
  for (const e of entries) {
    const s = r.slots.get(e.height)
    if (!s) continue
    tryPrepare(r, s)
    checkCommitted(r, s)
  }
  r.nextProposal = maxS + 1
  maybePropose(r)
}
