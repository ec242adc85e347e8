// A Byzantine validator that lies about where the chain is and what a block may hold (issue #10,
// cases 3-5), built from createNode's test hooks like the behaviours in byzantine.ts:
// - statusReplay: one signed STATUS claiming height 0, replayed byte for byte to every peer;
// - hugeHeight: fresh signed STATUS messages claiming height 2^53-1;
// - futureTime: as primary, proposes blocks with far-future times (MAX_SAFE_INTEGER, or a day ahead);
// - reinclude: as primary, puts txs already committed at earlier heights into its proposals.
// `liar` does all four. It starts lying once the chain has passed height LIAR_FROM_HEIGHT (so that the
// harness's setup is done and the run has a clean first phase). Every 5 s the process prints one JSON line `{"liar":...}` with
// what it did and how many consensus bytes it received (the answers its STATUS messages got).
import {
  type KeyPair,
  type Vote,
  decodeBlock,
  makeBlock,
  merkleRoot,
  sha256,
  sign,
  voteSigningMessage,
} from '@cityledger/core'
import {
  consensusSigningMessage,
  decodeMessage,
  encodeMessage,
  encodeStatusBody,
} from '@cityledger/consensus'
import type { Rng } from '@cityledger/core/testing'
import { type NodeOptions, PROTOCOL, type P2P } from '@cityledger/node'

export type LiarKind = 'statusReplay' | 'hugeHeight' | 'futureTime' | 'reinclude'
export const LIAR_KINDS: LiarKind[] = ['statusReplay', 'hugeHeight', 'futureTime', 'reinclude']

/** The liar tells the truth below this height. */
export const LIAR_FROM_HEIGHT = 40

type Hooks = NonNullable<NodeOptions['testHooks']>
type ConsensusNet = Parameters<NonNullable<Hooks['wrapConsensusNet']>>[0]

/** What the liar did so far (printed as one JSON line now and then). */
interface LiarStats {
  statusSent: number
  hugeHeightSent: number
  futureTimeProposals: number
  reincludedTxs: number
  /** Consensus bytes received from honest peers (answers to STATUS among them). */
  receivedBytes: number
}

export function liarHooks(kinds: LiarKind[], key: KeyPair, chainId: string, rng: Rng): Hooks {
  const on = new Set(kinds)
  const stats: LiarStats = {
    statusSent: 0,
    hugeHeightSent: 0,
    futureTimeProposals: 0,
    reincludedTxs: 0,
    receivedBytes: 0,
  }
  let view = 0
  let height = 0
  const lying = () => height >= LIAR_FROM_HEIGHT
  /** Txs of blocks seen (proposed or received), by height: candidates to include again. */
  const seenTxs = new Map<number, Uint8Array[]>()
  const remember = (block: Uint8Array) => {
    try {
      const b = decodeBlock(block)
      if (b.txs.length) seenTxs.set(b.header.height, b.txs)
      if (seenTxs.size > 64) seenTxs.delete(seenTxs.keys().next().value!)
      height = Math.max(height, b.header.height)
    } catch {}
  }
  const learn = (bytes: Uint8Array) => {
    try {
      const m = decodeMessage(bytes)
      if (m.type === 'prePrepare' || m.type === 'prepare' || m.type === 'commit') {
        view = Math.max(view, m.vote.view)
        height = Math.max(height, m.vote.height - 1)
      }
      if (m.type === 'prePrepare') remember(m.block)
      if (m.type === 'certificate' && m.block.length) remember(m.block)
    } catch {}
  }
  const status = (committedHeight: number) => {
    const bodyBytes = encodeStatusBody({ chainId, view, committedHeight, validator: key.publicKey })
    return encodeMessage({
      type: 'status',
      body: { chainId, view, committedHeight, validator: key.publicKey },
      bodyBytes,
      signature: sign(key.secretKey, consensusSigningMessage(bodyBytes)),
    })
  }
  const signVote = (v: Vote) => sign(key.secretKey, voteSigningMessage(v))
  let proposals = 0
  /** Rewrites one of our pre-prepares into a lie; returns the new bytes and digest, or undefined. */
  const lie = (bytes: Uint8Array): { bytes: Uint8Array; digest: Uint8Array } | undefined => {
    const m = decodeMessage(bytes)
    if (m.type !== 'prePrepare' || !lying()) return undefined
    const b = decodeBlock(m.block)
    const lies: ('time' | 'txs')[] = []
    if (on.has('futureTime')) lies.push('time')
    if (on.has('reinclude')) lies.push('txs')
    const which = lies[proposals++ % lies.length]
    let { header, txs } = b
    if (which === 'time') {
      header = { ...header, time: rng.chance(0.5) ? Number.MAX_SAFE_INTEGER : Date.now() + 24 * 3600_000 }
      stats.futureTimeProposals++
    } else {
      const old = [...seenTxs.entries()].filter(([h]) => h < header.height).flatMap(([, t]) => t)
      if (!old.length) return undefined
      const again = Array.from({ length: Math.min(3, old.length) }, () => rng.pick(old))
      txs = [...new Map([...txs, ...again].map((t) => [Buffer.from(sha256(t)).toString('hex'), t])).values()]
      header = { ...header, txRoot: merkleRoot(txs.map((t) => sha256(t))) }
      stats.reincludedTxs += txs.length - b.txs.length
    }
    const block = makeBlock(header, txs)
    const vote: Vote = { ...m.vote, digest: block.hash }
    return {
      bytes: encodeMessage({ type: 'prePrepare', vote, signature: signVote(vote), block: block.bytes }),
      digest: block.hash,
    }
  }
  const lied = new Map<string, Uint8Array>()
  const hooks: Hooks = {
    onP2P(p2p: P2P) {
      const handle = p2p.handle.bind(p2p)
      p2p.handle = (protocol, handler, limits) =>
        handle(
          protocol,
          (msg) => {
            if (protocol === PROTOCOL.consensus) {
              stats.receivedBytes += msg.data.length
              learn(msg.data)
            }
            return handler(msg)
          },
          limits,
        )
      const peers = () => p2p.peers().map((p) => p.publicKey)
      let replayed: Uint8Array | undefined
      setInterval(() => {
        if (on.has('statusReplay') && lying()) {
          replayed ??= status(0)
          for (const peer of peers()) {
            stats.statusSent++
            void p2p.send(peer, PROTOCOL.consensus, replayed).catch(() => {})
          }
        }
      }, 50).unref()
      setInterval(() => {
        if (on.has('hugeHeight') && lying()) {
          const bytes = status(Number.MAX_SAFE_INTEGER)
          for (const peer of peers()) {
            stats.hugeHeightSent++
            void p2p.send(peer, PROTOCOL.consensus, bytes).catch(() => {})
          }
        }
      }, 500).unref()
      setInterval(
        () => process.stdout.write(`${JSON.stringify({ liar: { kinds, view, height, ...stats } })}\n`),
        5000,
      ).unref()
    },
  }
  if (on.has('futureTime') || on.has('reinclude'))
    hooks.wrapConsensusNet = (net: ConsensusNet): ConsensusNet => ({
      ...net,
      broadcast(bytes) {
        learn(bytes)
        let m: ReturnType<typeof decodeMessage>
        try {
          m = decodeMessage(bytes)
        } catch {
          return net.broadcast(bytes)
        }
        if (m.type === 'prePrepare') {
          const l = lie(bytes)
          if (!l) return net.broadcast(bytes)
          lied.set(`${m.vote.view}/${m.vote.height}`, l.digest)
          if (lied.size > 64) lied.delete(lied.keys().next().value!)
          return net.broadcast(l.bytes)
        }
        // Our own votes follow the lie, so that it is as strong as one faulty vote can make it.
        const d =
          m.type === 'prepare' || m.type === 'commit'
            ? lied.get(`${m.vote.view}/${m.vote.height}`)
            : undefined
        if ((m.type === 'prepare' || m.type === 'commit') && d) {
          const vote: Vote = { ...m.vote, digest: d }
          return net.broadcast(encodeMessage({ type: m.type, vote, signature: signVote(vote) }))
        }
        net.broadcast(bytes)
      },
    })
  return hooks
}
