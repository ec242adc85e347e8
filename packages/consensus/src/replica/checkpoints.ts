import { type Vote, VoteKind, equalBytes, toHex } from '@cityledger/core'
import { makeVote } from '../certificate.ts'
import { encodeMessage } from '../messages/codec.ts'
import type { CheckpointProof } from '../messages/types.ts'
import { maybePropose } from './normalCase.ts'
import type { ReplicaState } from './state.ts'
import { requestSync } from './sync.ts'

// Checkpoints, watermarks and garbage collection (Castro & Liskov, section 4.3).

/** Votes kept per validator at heights above the stable checkpoint (bounded memory). */
const MAX_CHECKPOINT_HEIGHTS_PER_VALIDATOR = 4

/** Checkpoints (paper 4.3): after executing a multiple of K, multicast a signed checkpoint of the state digest. */
export function onExecuted(r: ReplicaState, height: number, stateDigest: Uint8Array): void {
  if (height <= r.executed || height > r.lastCommitted) return
  r.executed = height
  if (height % r.config.checkpointInterval !== 0 || height <= r.stable.height) return
  const { vote, signature } = r.vote(VoteKind.checkpoint, 0, height, stateDigest)
  const m = r.checkpointVotes.get(height)
  const mine = m?.get(r.config.index)
  if (mine) return
  recordCheckpoint(r, height, r.config.index, stateDigest, signature)
  const bytes = encodeMessage({ type: 'checkpoint', vote, signature })
  r.ownCheckpoint = { height, bytes }
  r.send('checkpoint', bytes)
  checkStable(r, height)
}

/** Records a checkpoint vote (paper 4.3: the log keeps checkpoint messages until one is stable), bounded per validator. */
export function recordCheckpoint(
  r: ReplicaState,
  height: number,
  who: number,
  digest: Uint8Array,
  signature: Uint8Array,
): void {
  let m = r.checkpointVotes.get(height)
  if (!m) r.checkpointVotes.set(height, (m = new Map()))
  m.set(who, { hex: toHex(digest), digest, signature })
  // Bounded memory: a validator keeps votes at only a few heights above the stable checkpoint.
  const mine = [...r.checkpointVotes.entries()].filter(([, votes]) => votes.has(who)).map(([h]) => h)
  if (mine.length > MAX_CHECKPOINT_HEIGHTS_PER_VALIDATOR) {
    const lowest = Math.min(...mine)
    const votes = r.checkpointVotes.get(lowest)!
    votes.delete(who)
    if (votes.size === 0) r.checkpointVotes.delete(lowest)
  }
}

/** CHECKPOINT from a peer (paper 4.3): counted once per validator and height; two digests at one height convict the signer. */
export function onCheckpoint(r: ReplicaState, v: Vote, signature: Uint8Array): void {
  const kind = 'checkpoint'
  r.checkChain(v.chainId, kind)
  const who = r.validatorIndex(v.validator, kind)
  if (v.view !== 0 || v.height === 0 || v.height % r.config.checkpointInterval !== 0) {
    r.fail('MALFORMED', `checkpoint at (${v.view}, ${v.height})`, kind)
  }
  if (v.height <= r.stable.height)
    r.fail('BELOW_WATERMARK', `checkpoint ${v.height} <= stable ${r.stable.height}`, kind)
  r.checkEpoch(v.height, kind)
  const prev = r.checkpointVotes.get(v.height)?.get(who)
  const hex = toHex(v.digest)
  if (prev && prev.hex === hex) r.fail('DUPLICATE', 'checkpoint already counted', kind)
  r.checkVoteSignature(v, signature, kind)
  if (prev) r.fail('EQUIVOCATION', `validator ${who} signed two checkpoints at ${v.height}`, kind, who)
  recordCheckpoint(r, v.height, who, v.digest, signature)
  checkStable(r, v.height)
}

/** A checkpoint with 2f+1 matching signatures is stable (paper 4.3). */
export function checkStable(r: ReplicaState, height: number): void {
  const votes = r.checkpointVotes.get(height)
  if (!votes) return
  const tally = new Map<string, number>()
  for (const res of votes.values()) tally.set(res.hex, (tally.get(res.hex) ?? 0) + 1)
  for (const [hex, count] of tally) {
    if (count < r.config.quorum) continue
    const digest = [...votes.values()].find((res) => res.hex === hex)!.digest
    advanceStable(r, { height, digest, signatures: r.sortedSignatures(votes, hex) })
    return
  }
}

/**
 * Garbage collection (paper 4.3): the stable checkpoint becomes the low watermark; every message and
 * certificate at or below it is discarded. A replica that has not committed up to it cannot get those
 * heights through consensus any more and asks the node to sync them (state transfer, paper 4.3/5.3).
 */
export function advanceStable(r: ReplicaState, proof: CheckpointProof): void {
  if (proof.height <= r.stable.height) return
  r.stable = proof
  r.journal({ type: 'checkpoint', proof })
  for (const h of r.slots.keys()) if (h <= proof.height) r.slots.delete(h)
  for (const h of r.checkpointVotes.keys()) if (h <= proof.height) r.checkpointVotes.delete(h)
  for (const h of r.missing.keys()) if (h <= proof.height) r.missing.delete(h)
  if (r.ownCheckpoint && r.ownCheckpoint.height <= proof.height) r.ownCheckpoint = undefined
  r.out.push({ type: 'compactJournal', stableHeight: proof.height })
  r.out.push({ type: 'stableCheckpoint', height: proof.height, digest: proof.digest })
  if (r.lastCommitted < proof.height) requestSync(r)
  maybePropose(r)
}

/** A stable-checkpoint proof (paper 4.4: the C set of a VIEW-CHANGE) is 2f+1 checkpoint votes on (height, digest). Returns a reason or undefined. */
export function verifyCheckpointProof(r: ReplicaState, p: CheckpointProof): string | undefined {
  if (p.height % r.config.checkpointInterval !== 0) return 'checkpoint height is not a multiple of K'
  // The epoch's genesis checkpoint (height 0, or the height the epoch starts after) needs no signatures.
  if (p.height < r.config.baseHeight) return 'checkpoint before the epoch'
  if (p.height === r.config.baseHeight) {
    return equalBytes(p.digest, r.config.genesisDigest) && p.signatures.length === 0
      ? undefined
      : 'bad genesis checkpoint'
  }
  if (r.afterEpoch(p.height)) return 'checkpoint after the epoch'
  const res = r.quorumCheck(p.signatures, (v) =>
    makeVote(r.config.chainId, VoteKind.checkpoint, 0, p.height, p.digest, v),
  )
  return res.ok ? undefined : `checkpoint proof: ${res.code}`
}

/**
 * The node executed a validator-set change: `height` is the last height of this epoch (epochs.ts explains
 * why no honest replica has worked above it). Everything kept above it is dropped; from now on nothing
 * above it is proposed, voted, committed or filled. A different end later is a broken node invariant.
 */
export function onEpochEnd(r: ReplicaState, height: number): void {
  if (
    !Number.isSafeInteger(height) ||
    height <= r.config.baseHeight ||
    height % r.config.checkpointInterval !== 0
  )
    throw new RangeError(`epochEnd: ${height} is not a checkpoint height above ${r.config.baseHeight}`)
  if (r.lastHeight === height) return
  if (r.lastHeight !== undefined)
    throw new RangeError(`epochEnd: ${height}, but the epoch already ends at ${r.lastHeight}`)
  if (r.lastCommitted > height)
    throw new RangeError(`epochEnd: ${height}, but height ${r.lastCommitted} is already committed`)
  r.lastHeight = height
  for (const h of r.slots.keys()) if (h > height) r.slots.delete(h)
  for (const h of r.missing.keys()) if (h > height) r.missing.delete(h)
  for (const h of r.checkpointVotes.keys()) if (h > height) r.checkpointVotes.delete(h)
}
