import { type CommitCertificate, VoteKind, equalBytes, toHex } from '@cityledger/core'
import { makeVote } from '../certificate.ts'
import {
  certificateMessage,
  consensusSigningMessage,
  encodeMessage,
  encodeStatusBody,
} from '../messages/codec.ts'
import type { ConsensusMessage } from '../messages/types.ts'
import { drainCommits, emitCommit, onProgress } from './normalCase.ts'
import type { ReplicaState } from './state.ts'

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
  if (cert.chainId !== r.config.chainId) r.fail('WRONG_CHAIN', 'certificate for another chain', kind)
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

/** A stuck peer told us where it is: send what lets it catch up (stable proof, certificates, NEW-VIEW). */
export function onStatus(r: ReplicaState, m: Extract<ConsensusMessage, { type: 'status' }>): void {
  const kind = 'status'
  const b = m.body
  r.checkChain(b.chainId, kind)
  const who = r.validatorIndex(b.validator, kind)
  if (
    !r.config.verify({
      publicKey: b.validator,
      message: consensusSigningMessage(m.bodyBytes),
      signature: m.signature,
    })
  ) {
    r.fail('BAD_SIGNATURE', 'status: bad signature', kind)
  }
  if (who === r.config.index) return
  // A peer further ahead: fetch what it committed through block sync (certificates make it trustless).
  if (b.committedHeight > r.lastCommitted) requestSync(r, b.committedHeight)
  // A peer behind: tell it where we are, so it can sync from us even if our consensus memory is gone.
  if (b.committedHeight < r.lastCommitted) r.send('status', statusMessage(r), who)
  if (r.stable.height > b.committedHeight && r.stable.height > 0) {
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
  if (!r.changing && r.newViewBytes && b.view <= r.view) r.send('newView', r.newViewBytes, who)
}

/** Messages get lost: resend our own messages for heights that stalled, and ask for help when stuck. */
export function retransmit(r: ReplicaState): void {
  if (r.changing) {
    const own = r.viewChanges.get(r.config.index)
    if (own && own.body.view === r.view) r.send('viewChange', own.bytes)
  } else {
    for (const s of r.slots.values()) {
      if (s.committed || s.height <= r.lastCommitted) continue
      if (s.stall++ < 1) continue
      for (const m of s.ownMessages.get(r.view) ?? []) r.send(m.kind, m.bytes)
    }
  }
  if (r.ownCheckpoint && r.ownCheckpoint.height > r.stable.height) r.send('checkpoint', r.ownCheckpoint.bytes)
  if (r.lastCommitted === r.committedAtLastTick) r.ticksWithoutCommit++
  else r.ticksWithoutCommit = 0
  r.committedAtLastTick = r.lastCommitted
  if (r.ticksWithoutCommit >= 2) {
    r.send('status', statusMessage(r))
  }
  if (r.lastCommitted < r.stable.height) requestSync(r)
}

/** This replica's signed STATUS: its view and committed height. */
export function statusMessage(r: ReplicaState): Uint8Array {
  const body = {
    chainId: r.config.chainId,
    view: r.view,
    committedHeight: r.lastCommitted,
    validator: r.config.publicKey,
  }
  const bodyBytes = encodeStatusBody(body)
  const signature = r.config.sign(consensusSigningMessage(bodyBytes))
  return encodeMessage({ type: 'status', body, bodyBytes, signature })
}
