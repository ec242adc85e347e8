// Byzantine behaviours for a real validator process, built from createNode's test hooks. The node
// runs the honest replica (so it knows when and what to say) and these hooks rewrite, duplicate or add
// to what it sends. Test-only: loaded by test/fault/faultNode.ts, never by the CLI.
import {
  type KeyPair,
  type Vote,
  decodeBlock,
  encode,
  makeBlock,
  sign,
  voteSigningMessage,
} from '@cityledger/core'
import { decodeMessage, encodeMessage } from '@cityledger/consensus'
import { Rng } from '@cityledger/core/testing'
import { type NodeOptions, PROTOCOL, type P2P } from '@cityledger/node'
import { LIAR_KINDS, type LiarKind, liarHooks } from './liar.ts'

export type ByzantineKind = 'equivocate' | 'conflictingVotes' | 'replay' | 'flood' | LiarKind | 'liar'
/** The kinds byzantine.test.ts runs (the liar's kinds run in liar.test.ts). */
export const BYZANTINE_KINDS: ByzantineKind[] = ['equivocate', 'conflictingVotes', 'replay', 'flood']

type Hooks = NonNullable<NodeOptions['testHooks']>
type ConsensusNet = Parameters<NonNullable<Hooks['wrapConsensusNet']>>[0]

export function byzantineHooks(kind: ByzantineKind, key: KeyPair, seed: number, chainId: string): Hooks {
  const rng = new Rng(seed)
  if (kind === 'liar') return liarHooks(LIAR_KINDS, key, chainId, rng)
  if ((LIAR_KINDS as string[]).includes(kind)) return liarHooks([kind as LiarKind], key, chainId, rng)
  const signVote = (v: Vote) => sign(key.secretKey, voteSigningMessage(v))
  switch (kind) {
    case 'equivocate':
      return { wrapConsensusNet: (net, ctx) => equivocating(net, ctx, rng, signVote) }
    case 'conflictingVotes':
      return { wrapConsensusNet: (net, ctx) => conflicting(net, ctx, rng, signVote) }
    case 'replay':
      return { onP2P: (p2p) => replaying(p2p, rng) }
    case 'flood':
      return { onP2P: (p2p) => flooding(p2p, rng) }
    default:
      throw new Error(`unknown Byzantine kind ${kind}`)
  }
}

const others = (ctx: { validatorsHex: string[]; publicKey: string }) =>
  ctx.validatorsHex.map((_, i) => i).filter((i) => ctx.validatorsHex[i] !== ctx.publicKey)

/**
 * As primary: every pre-prepare goes out in two versions (the real block, and the same block with the
 * time moved by 1 ms, so a different valid block), one per half of the replicas, and now and then both
 * to one replica; its own prepares and commits then vote, per replica, for the version it got.
 */
function equivocating(
  net: ConsensusNet,
  ctx: { validatorsHex: string[]; publicKey: string },
  rng: Rng,
  signVote: (v: Vote) => Uint8Array,
): ConsensusNet {
  const alt = new Map<string, { digest: Uint8Array; groupB: Set<number> }>()
  /** Pre-prepares sent per view. */
  const doubled = new Map<number, number>()
  return {
    ...net,
    broadcast(bytes) {
      let m: ReturnType<typeof decodeMessage>
      try {
        m = decodeMessage(bytes)
      } catch {
        return net.broadcast(bytes)
      }
      const peers = others(ctx)
      const k = `${m.type === 'prePrepare' || m.type === 'prepare' || m.type === 'commit' ? `${m.vote.view}/${m.vote.height}` : ''}`
      if (m.type === 'prePrepare') {
        const b = decodeBlock(m.block)
        const altBlock = makeBlock({ ...b.header, time: b.header.time + 1 }, b.txs)
        const vote: Vote = { ...m.vote, digest: altBlock.hash }
        const altBytes = encodeMessage({
          type: 'prePrepare',
          vote,
          signature: signVote(vote),
          block: altBlock.bytes,
        })
        const groupB = new Set(peers.filter(() => rng.chance(0.5)))
        if (groupB.size === 0) groupB.add(rng.pick(peers))
        alt.set(k, { digest: altBlock.hash, groupB })
        if (alt.size > 256) alt.delete(alt.keys().next().value!)
        for (const i of peers) net.send(i, groupB.has(i) ? altBytes : bytes)
        // Now and then one replica gets both versions: signed proof of the equivocation. Always at the
        // first two of each view: a view change may take the primary role away early, and a replica
        // still starting or changing view refuses the first version unseen, so the second is no proof.
        const inView = (doubled.get(m.vote.view) ?? 0) + 1
        doubled.set(m.vote.view, inView)
        if (doubled.size > 64) doubled.delete(doubled.keys().next().value!)
        if (inView <= 2 || rng.chance(0.3)) {
          const i = rng.pick(peers)
          net.send(i, groupB.has(i) ? bytes : altBytes)
        }
        return
      }
      const a = alt.get(k)
      if ((m.type === 'prepare' || m.type === 'commit') && a) {
        const vote: Vote = { ...m.vote, digest: a.digest }
        const altBytes = encodeMessage({ type: m.type, vote, signature: signVote(vote) })
        for (const i of peers) net.send(i, a.groupB.has(i) ? altBytes : bytes)
        return
      }
      net.broadcast(bytes)
    },
  }
}

/** Prepares, commits and checkpoints: per replica, a vote for another (made-up) digest, sometimes both. */
function conflicting(
  net: ConsensusNet,
  ctx: { validatorsHex: string[]; publicKey: string },
  rng: Rng,
  signVote: (v: Vote) => Uint8Array,
): ConsensusNet {
  return {
    ...net,
    broadcast(bytes) {
      let m: ReturnType<typeof decodeMessage>
      try {
        m = decodeMessage(bytes)
      } catch {
        return net.broadcast(bytes)
      }
      if (m.type !== 'prepare' && m.type !== 'commit' && m.type !== 'checkpoint') return net.broadcast(bytes)
      for (const i of others(ctx)) {
        const vote: Vote = { ...m.vote, digest: rng.bytes(32) }
        const bad = encodeMessage({ type: m.type, vote, signature: signVote(vote) })
        const r = rng.int(3)
        if (r === 0) net.send(i, bytes)
        else if (r === 1) net.send(i, bad)
        else net.send(i, bad), net.send(i, bytes)
      }
    },
  }
}

/** Taps every consensus message it receives and sends random old ones back out, many times over. */
function replaying(p2p: P2P, rng: Rng): void {
  const seen: Uint8Array[] = []
  const handle = p2p.handle.bind(p2p)
  p2p.handle = (protocol, handler, limits) =>
    handle(
      protocol,
      (msg) => {
        if (protocol === PROTOCOL.consensus) {
          if (seen.length < 2000) seen.push(msg.data)
          else seen[rng.int(seen.length)] = msg.data
        }
        return handler(msg)
      },
      limits,
    )
  setInterval(() => {
    const peers = p2p.peers().map((p) => p.publicKey)
    if (!peers.length || !seen.length) return
    for (let j = 0; j < 20; j++)
      void p2p.send(rng.pick(peers), PROTOCOL.consensus, rng.pick(seen)).catch(() => {})
  }, 100).unref()
}

/**
 * Floods every peer with garbage on each protocol: random bytes, well-formed consensus envelopes with
 * nonsense inside, and frames longer than the protocol allows (announced in the frame header).
 */
function flooding(p2p: P2P, rng: Rng): void {
  const handle = p2p.handle.bind(p2p)
  // Our own send-side limits must not stop us.
  const big = { maxMessageBytes: 2 ** 31, ratePerSecond: 1e9, burst: 1e9 }
  p2p.handle = (protocol, handler) => handle(protocol, handler, big)
  const protocols = [PROTOCOL.consensus, PROTOCOL.txs, PROTOCOL.sync]
  const oversized = new Uint8Array(8 * 1024 * 1024 + 4 * 1024 * 1024 + 16)
  let rounds = 0
  setInterval(() => {
    const peers = p2p.peers().map((p) => p.publicKey)
    rounds++
    for (const peer of peers) {
      for (let j = 0; j < 30; j++) {
        const protocol = rng.pick(protocols)
        const data =
          rng.int(2) === 0
            ? rng.bytes(rng.range(1, 300))
            : encode([1, rng.range(1, 8), rng.bytes(rng.int(200)), rng.bytes(64), []])
        void p2p.send(peer, protocol, data).catch(() => {})
      }
      if (rounds % 20 === 0) void p2p.send(peer, PROTOCOL.consensus, oversized).catch(() => {})
    }
  }, 50).unref()
}
