import { equalBytes, toHex } from '@cityledger/core'
import { NULL_DIGEST } from '../config.ts'
import { consensusSigningMessage, encodeBlockRequestBody, encodeMessage } from '../messages/codec.ts'
import type { ConsensusMessage } from '../messages/types.ts'
import { checkCommitted } from './normalCase.ts'
import type { ReplicaState } from './state.ts'

// Fetching the block of a digest (Castro & Liskov, section 4.4: a replica that accepts a NEW-VIEW
// pre-prepare "does not have the request" fetches it; here blocks play the requests). VIEW-CHANGE and
// NEW-VIEW name blocks by digest only, so every message stays bounded whatever the block size.

/** Blocks one requester may get from this replica per retransmission tick. */
export const MAX_BLOCK_ANSWERS_PER_TICK = 4

/**
 * This replica must have the block `digest` at `height` (re-proposed, or certified) and lacks it: ask
 * `holders` for it, one per retransmission tick, then everyone else.
 */
export function needBlock(r: ReplicaState, height: number, digest: Uint8Array, holders: number[]): void {
  if (equalBytes(digest, NULL_DIGEST) || height <= r.lastCommitted || height <= r.stable.height) return
  const hex = toHex(digest)
  if (r.slots.get(height)?.blocks.has(hex)) return
  const cur = r.missing.get(height)
  if (cur && cur.hex === hex) return
  const rest: number[] = []
  for (let i = 0; i < r.config.n; i++) if (i !== r.config.index && !holders.includes(i)) rest.push(i)
  r.missing.set(height, {
    digest,
    hex,
    holders: [...holders.filter((h) => h !== r.config.index), ...rest],
    next: 0,
  })
  requestBlock(r, height)
}

/** Sends one BLOCK-REQUEST for a missing height, to the next holder in turn. */
function requestBlock(r: ReplicaState, height: number): void {
  const m = r.missing.get(height)
  if (!m || m.holders.length === 0) return
  const to = m.holders[m.next++ % m.holders.length]!
  const body = { chainId: r.config.chainId, height, digest: m.digest, validator: r.config.publicKey }
  const bodyBytes = encodeBlockRequestBody(body)
  const signature = r.config.sign(consensusSigningMessage(bodyBytes))
  r.send('blockRequest', encodeMessage({ type: 'blockRequest', body, bodyBytes, signature }), to)
}

/** Retransmission tick: ask again for every block still missing (drop those no longer needed). */
export function requestMissingBlocks(r: ReplicaState): void {
  for (const h of [...r.missing.keys()]) {
    const s = r.slots.get(h)
    if (h <= r.lastCommitted || h <= r.stable.height || s?.blocks.has(r.missing.get(h)!.hex)) {
      r.missing.delete(h)
      continue
    }
    requestBlock(r, h)
  }
}

/**
 * BLOCK-REQUEST from a peer: cheap checks first (a block we do not hold, or a requester over its budget
 * for this tick, is dropped without a signature check), then the signature, then the answer.
 */
export function onBlockRequest(
  r: ReplicaState,
  m: Extract<ConsensusMessage, { type: 'blockRequest' }>,
): void {
  const kind = 'blockRequest'
  const b = m.body
  r.checkChain(b.chainId, kind)
  const who = r.validatorIndex(b.validator, kind)
  if (who === r.config.index) r.fail('DUPLICATE', 'own block request', kind)
  const s = r.slots.get(b.height)
  const hex = toHex(b.digest)
  const block =
    s?.blocks.get(hex) ??
    (s?.committed && s.committed.block.length && toHex(s.committed.digest) === hex
      ? s.committed.block
      : undefined)
  if (!block || block.length === 0) r.fail('STALE', `no block ${hex.slice(0, 8)} at ${b.height}`, kind)
  let budget = r.blockAnswers.get(who)
  if (!budget || budget.tick !== r.tick) r.blockAnswers.set(who, (budget = { tick: r.tick, count: 0 }))
  if (budget.count >= MAX_BLOCK_ANSWERS_PER_TICK)
    r.fail('NOT_READY', `validator ${who} asked for too many blocks this tick`, kind)
  if (
    !r.config.verify({
      publicKey: b.validator,
      message: consensusSigningMessage(m.bodyBytes),
      signature: m.signature,
    })
  )
    r.fail('BAD_SIGNATURE', 'blockRequest: bad signature', kind)
  budget.count++
  r.send(
    'block',
    encodeMessage({ type: 'block', chainId: r.config.chainId, height: b.height, digest: b.digest, block }),
    who,
  )
}

/** BLOCK from a peer: kept only if this replica asked for it and it hashes to the digest asked for. */
export function onBlock(r: ReplicaState, m: Extract<ConsensusMessage, { type: 'block' }>): void {
  const kind = 'block'
  r.checkChain(m.chainId, kind)
  const want = r.missing.get(m.height)
  if (!want || !equalBytes(want.digest, m.digest)) r.fail('STALE', `block at ${m.height} not asked for`, kind)
  r.checkBlock(m.digest, m.block, kind)
  r.missing.delete(m.height)
  const s = r.slot(m.height)
  s.blocks.set(want.hex, m.block)
  for (const p of s.proposals.values()) if (p.hex === want.hex && p.block.length === 0) p.block = m.block
  checkCommitted(r, s)
}
