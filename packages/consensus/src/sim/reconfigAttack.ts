import { VoteKind, sha256, voteSigningMessage } from '@cityledger/core'
import { makeVote } from '../certificate.ts'
import { epochChainId, lastHeightOf } from '../epochs.ts'
import { consensusSigningMessage, encodeMessage, encodeStatusBody } from '../messages/codec.ts'
import { encodeEpochBlock } from './reconfigBlocks.ts'
import { RECONFIG_CHAIN, type ReconfigNode, type ReconfigWorld } from './reconfigWorld.ts'

// A validator that left the set and turned Byzantine: it still holds its old key and everything it saw.
// Every retransmission period it replays old-epoch messages, equivocates with its old key in the old
// epoch (votes, checkpoints, a STATUS claiming a height nobody reached), and sends new-epoch messages
// signed with its old key (votes, a pre-prepare, a STATUS with a certificate it signed alone), and garbage.

function vote(
  node: ReconfigNode,
  epoch: number,
  kind: VoteKind,
  view: number,
  height: number,
  digest: Uint8Array,
) {
  const v = makeVote(epochChainId(RECONFIG_CHAIN, epoch), kind, view, height, digest, node.key.publicKey)
  return { vote: v, signature: node.key.sign(voteSigningMessage(v)) }
}

function status(node: ReconfigNode, epoch: number, height: number, withCertificate: boolean): Uint8Array {
  const chainId = epochChainId(RECONFIG_CHAIN, epoch)
  const body = { chainId, view: 0, committedHeight: height, validator: node.key.publicKey, round: height }
  const bodyBytes = encodeStatusBody(body)
  const signature = node.key.sign(consensusSigningMessage(bodyBytes))
  const digest = sha256(bodyBytes)
  const certificate = withCertificate
    ? {
        chainId,
        view: 0,
        height,
        blockHash: digest,
        signatures: [
          {
            validator: node.key.publicKey,
            signature: vote(node, epoch, VoteKind.commit, 0, height, digest).signature,
          },
        ],
      }
    : undefined
  return encodeMessage({
    type: 'status',
    body,
    bodyBytes,
    signature,
    ...(certificate ? { certificate } : {}),
  })
}

export function attack(w: ReconfigWorld, node: ReconfigNode): void {
  if (!node.turned || !node.up) return
  const rng = w.rng
  // Its last epoch is the one before the first it is not in.
  const epochs = node.schedule.epochs
  const old = epochs.length >= 2 ? epochs.at(-2)!.epoch : 0
  const end = lastHeightOf(node.schedule, old) ?? node.store.length
  const K = w.o.checkpointInterval
  const msgs: Uint8Array[] = []
  if (node.seen.length) for (let i = 0; i < 3; i++) msgs.push(rng.pick(node.seen))
  const digest = sha256(new Uint8Array([rng.int(256), rng.int(256)]))
  for (const h of [end - 1, end, end + 1, end + K]) {
    if (h < 1) continue
    const kind = rng.pick([VoteKind.prepare, VoteKind.commit])
    msgs.push(
      encodeMessage({
        type: kind === VoteKind.prepare ? 'prepare' : 'commit',
        ...vote(node, old, kind, rng.int(3), h, digest),
      }),
    )
    const next = vote(node, old + 1, kind, rng.int(3), h + 1, digest)
    msgs.push(encodeMessage({ type: kind === VoteKind.prepare ? 'prepare' : 'commit', ...next }))
  }
  msgs.push(encodeMessage({ type: 'checkpoint', ...vote(node, old, VoteKind.checkpoint, 0, end, digest) }))
  const block = encodeEpochBlock({ height: end + 1, view: 0, proposer: node.id, nonce: w.nonce++ })
  msgs.push(
    encodeMessage({
      type: 'prePrepare',
      ...vote(node, old + 1, VoteKind.prepare, 0, end + 1, sha256(block)),
      block,
    }),
  )
  msgs.push(status(node, old, end + 100, false))
  msgs.push(status(node, old + 1, end + 2 * K, true))
  const garbage = new Uint8Array(rng.range(1, 64))
  for (let i = 0; i < garbage.length; i++) garbage[i] = rng.int(256)
  msgs.push(garbage)
  for (const bytes of msgs) {
    const to = rng.pick(w.nodes.filter((n) => n.id !== node.id))
    w.q.push(w.now + rng.range(1, 10), { k: 'deliver', to: to.id, from: node.id, bytes })
  }
  w.q.push(w.now + w.retransmitMs, { k: 'attack', node: node.id })
}
