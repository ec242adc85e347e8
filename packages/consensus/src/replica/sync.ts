import {
  type CommitCertificate,
  VoteKind,
  certificateVote,
  equalBytes,
  sha256,
  toHex,
  voteSignatureCheck,
} from '@cityledger/core'
import { makeVote } from '../certificate.ts'
import {
  certificateMessage,
  consensusSigningMessage,
  encodeMessage,
  encodeStatusBody,
} from '../messages/codec.ts'
import type { ConsensusMessage } from '../messages/types.ts'
import { drainCommits, emitCommit, onProgress } from './normalCase.ts'
import { requestMissingBlocks } from './blocks.ts'
import type { ReplicaState } from './state.ts'
import { ownViewChange } from './viewChange.ts'

// State transfer and catch-up (Castro & Liskov, sections 4.3 and 5.3, adapted): a replica below the
// stable checkpoint fetches committed blocks with their commit certificates; a stuck replica sends
// STATUS so that peers resend what it missed; retransmission covers lost messages (section 5.2).

/** Asks the node to fetch committed blocks up to `toHeight` (state transfer, paper 4.3/5.3). */
export function requestSync(r: ReplicaState, toHeight = r.stable.height): void {
  if (toHeight > r.lastCommitted)
    r.out.push({ type: 'requestSync', fromHeight: r.lastCommitted + 1, toHeight })
}

/** A committed block fetched by block sync: its certificate is proof enough (it is what light clients trust). */
export function onSyncBlock(
  r: ReplicaState,
  height: number,
  block: Uint8Array,
  digest: Uint8Array,
  cert: CommitCertificate,
): void {
  if (height !== r.lastCommitted + 1) return
  acceptCertificate(r, cert, block, height, digest)
}

/** A CERTIFICATE from a peer: a commit certificate with its block, inside the window (a lagging replica catches up from it). */
export function onCertificate(r: ReplicaState, cert: CommitCertificate, block: Uint8Array): void {
  const kind = 'certificate'
  r.checkChain(cert.chainId, kind)
  if (cert.height <= r.lastCommitted) r.fail('STALE', `height ${cert.height} already committed`, kind)
  if (cert.height > r.stable.height + r.config.windowSize)
    r.fail('ABOVE_WATERMARK', `certificate for ${cert.height}`, kind)
  if (r.slots.get(cert.height)?.committed) r.fail('DUPLICATE', 'height already has a certificate', kind)
  acceptCertificate(r, cert, block, cert.height, cert.blockHash)
}

/** 2f+1 signed commits on (view, height, digest) prove the block committed (committed-local, signature variant, paper 4.2). */
export function acceptCertificate(
  r: ReplicaState,
  cert: CommitCertificate,
  block: Uint8Array,
  height: number,
  digest: Uint8Array,
): void {
  const kind = 'certificate'
  r.checkChain(cert.chainId, kind)
  r.checkEpoch(height, kind)
  if (cert.height !== height || !equalBytes(cert.blockHash, digest))
    r.fail('BAD_CERTIFICATE', 'certificate is for another block', kind)
  r.checkBlock(digest, block, kind)
  const res = r.quorumCheck(cert.signatures, (v) =>
    makeVote(cert.chainId, VoteKind.commit, cert.view, cert.height, cert.blockHash, v),
  )
  if (!res.ok) r.fail('BAD_CERTIFICATE', `certificate: ${res.code}`, kind)
  const inWindow = height > r.stable.height && height <= r.stable.height + r.config.windowSize
  if (inWindow) {
    // Kept in the window so that this replica can pass the certificate on to peers that lag.
    const s = r.slot(height)
    if (s.committed) return
    s.blocks.set(toHex(digest), block)
    s.committed = { digest, block, certificate: cert }
    drainCommits(r)
  } else if (height === r.lastCommitted + 1) {
    // Outside the window only block sync brings these, strictly the next height.
    emitCommit(r, height, digest, block, cert)
    drainCommits(r)
    onProgress(r)
  }
}

/** STATUS bodies remembered per validator for deduplication. */
const STATUS_SEEN_PER_VALIDATOR = 16

/**
 * A stuck peer told us where it is: send what lets it catch up (stable proof, certificates, NEW-VIEW).
 * Cheap checks first: replayed bytes (an answered STATUS) and a peer already answered in this
 * retransmission tick are dropped without a signature check; then the signature; then one answer. A
 * peer ahead of us only moves us to sync when its STATUS carries the commit certificate of the height
 * it claims: a bare claim (say 2^53-1) proves nothing.
 */
export function onStatus(r: ReplicaState, m: Extract<ConsensusMessage, { type: 'status' }>): void {
  const kind = 'status'
  const b = m.body
  const epoch = r.otherEpoch(b.chainId)
  if (epoch !== undefined && epoch > r.config.epoch) laterEpochStatus(r, m)
  r.checkChain(b.chainId, kind)
  const who = r.validatorIndex(b.validator, kind)
  if (who === r.config.index) r.fail('DUPLICATE', 'own status', kind)
  const hex = toHex(sha256(m.bodyBytes, m.signature))
  const seen = r.statusSeen.get(who) ?? []
  if (seen.includes(hex)) r.fail('DUPLICATE', 'status already answered', kind)
  if (!r.canAnswer('status', who)) r.fail('NOT_READY', `status from ${who} already answered this tick`, kind)
  if (
    !r.config.verify({
      publicKey: b.validator,
      message: consensusSigningMessage(m.bodyBytes),
      signature: m.signature,
    })
  ) {
    r.fail('BAD_SIGNATURE', 'status: bad signature', kind)
  }
  r.spendAnswer('status', who)
  seen.push(hex)
  if (seen.length > STATUS_SEEN_PER_VALIDATOR) seen.shift()
  r.statusSeen.set(who, seen)
  // A peer further ahead: fetch what it committed through block sync, up to the height its certificate proves.
  if (b.committedHeight > r.lastCommitted && m.certificate) {
    const c = m.certificate
    if (c.chainId !== r.config.chainId || c.height !== b.committedHeight)
      r.fail('BAD_CERTIFICATE', 'status: certificate is not for the height claimed', kind)
    const res = r.quorumCheck(c.signatures, (v) =>
      makeVote(c.chainId, VoteKind.commit, c.view, c.height, c.blockHash, v),
    )
    if (!res.ok) r.fail('BAD_CERTIFICATE', `status: certificate: ${res.code}`, kind)
    requestSync(r, c.height)
  }
  // A peer behind: tell it where we are, so it can sync from us even if our consensus memory is gone.
  if (b.committedHeight < r.lastCommitted) r.send('status', statusMessage(r), who)
  if (r.stable.height > b.committedHeight && r.stable.signatures.length > 0) {
    for (const s of r.stable.signatures) {
      const vote = makeVote(
        r.config.chainId,
        VoteKind.checkpoint,
        0,
        r.stable.height,
        r.stable.digest,
        s.validator,
      )
      r.send('checkpoint', encodeMessage({ type: 'checkpoint', vote, signature: s.signature }), who)
    }
  }
  const from = Math.max(b.committedHeight, r.stable.height) + 1
  for (let h = from; h <= r.lastCommitted && h < from + r.config.windowSize; h++) {
    const c = r.slots.get(h)?.committed
    if (!c) continue
    r.send('certificate', encodeMessage(certificateMessage(c.certificate, c.block)), who)
  }
  if (!r.changing && r.newViewBytes && b.view <= r.view && r.canAnswer('newView', who)) {
    r.spendAnswer('newView', who)
    r.send('newView', r.newViewBytes, who)
  }
}

/**
 * A STATUS of a later epoch: its certificate is signed by a validator set this replica does not know, so
 * it cannot verify it as a certificate. But a commit signature verifies with the signer's key alone: if
 * f+1 validators of this epoch signed it, one of them is honest and the height is real, so the node is
 * told to fetch up to it with block sync (which verifies every block against the schedule). Bounded: one
 * such check per retransmission tick, never beyond the window (nor the epoch's end). A set replaced by
 * more than f keys gives no such proof: laggards then finish the epoch from the retired replicas of
 * their peers (README.md, the node's contract). The caller refuses the message as OTHER_EPOCH, unpenalised.
 */
function laterEpochStatus(r: ReplicaState, m: Extract<ConsensusMessage, { type: 'status' }>): void {
  const b = m.body
  const c = m.certificate
  if (r.finished || !c || c.chainId !== b.chainId || c.height !== b.committedHeight) return
  if (b.committedHeight <= r.lastCommitted || r.laterEpochSyncTick === r.tick) return
  if (!Array.isArray(c.signatures)) return
  r.laterEpochSyncTick = r.tick
  const tried = new Set<string>()
  let ours = 0
  for (const s of c.signatures) {
    const hex = s.validator instanceof Uint8Array ? toHex(s.validator) : ''
    // At most n verifications: only keys of this epoch, each once.
    if (tried.has(hex) || !r.config.indexOf.has(hex) || s.signature.length !== 64) continue
    tried.add(hex)
    if (r.config.verify(voteSignatureCheck(certificateVote(c, s.validator), s.signature))) ours++
  }
  if (ours < r.config.weak) return
  const cap = r.lastHeight ?? Number.POSITIVE_INFINITY
  requestSync(r, Math.min(b.committedHeight, r.lastCommitted + r.config.windowSize, cap))
}

/**
 * Retransmission tick (paper 5.2: messages get lost): resend our own messages for heights that stalled,
 * ask again for missing blocks, and ask for help when stuck. Each tick also renews the answer budgets.
 */
export function retransmit(r: ReplicaState): void {
  r.tick++
  if (r.changing) {
    const own = ownViewChange(r)
    if (own) r.send('viewChange', own.bytes)
  } else {
    for (const s of r.slots.values()) {
      if (s.committed || s.height <= r.lastCommitted) continue
      if (s.stall++ < 1) continue
      for (const m of s.ownMessages.get(r.view) ?? []) r.send(m.kind, m.bytes)
    }
  }
  requestMissingBlocks(r)
  if (r.ownCheckpoint && r.ownCheckpoint.height > r.stable.height) r.send('checkpoint', r.ownCheckpoint.bytes)
  if (r.lastCommitted === r.committedAtLastTick) r.ticksWithoutCommit++
  else r.ticksWithoutCommit = 0
  r.committedAtLastTick = r.lastCommitted
  // A finished epoch is not stuck: it waits for nothing, and only answers laggards.
  if (r.ticksWithoutCommit >= 2 && !r.finished) {
    r.send('status', statusMessage(r))
  }
  if (r.lastCommitted < r.stable.height) requestSync(r)
}

/**
 * This replica's signed STATUS: its view and committed height, a fresh round (so that peers tell it from
 * a replay), and the commit certificate of that height when it has it (the proof of the claim).
 */
export function statusMessage(r: ReplicaState): Uint8Array {
  const body = {
    chainId: r.config.chainId,
    view: r.view,
    committedHeight: r.lastCommitted,
    validator: r.config.publicKey,
    round: ++r.statusRound,
  }
  const bodyBytes = encodeStatusBody(body)
  const signature = r.config.sign(consensusSigningMessage(bodyBytes))
  const cert = r.lastCertificate?.height === r.lastCommitted ? r.lastCertificate : undefined
  return encodeMessage({ type: 'status', body, bodyBytes, signature, ...(cert ? { certificate: cert } : {}) })
}
