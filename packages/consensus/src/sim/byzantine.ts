import { type Vote, VoteKind, encode, toHex, voteSigningMessage } from '@cityledger/core'
import type { Rng } from '@cityledger/core/testing'
import { encodeMessage } from '../messages/codec.ts'
import type { MessageKind } from '../messages/types.ts'
import { decodeSimBlock, encodeSimBlock, simBlockDigest } from './blocks.ts'
import type { SimKey } from './crypto.ts'
import { decodeShared } from './decodeCache.ts'
import { LieMemory, newViewVariant, viewChangeVariant } from './lies.ts'

/** The size limit Byzantine replicas read messages with: anything the network could carry. */
const BIG = 64 * 1024 * 1024

export type ByzantineBehavior =
  | 'equivocate'
  | 'conflictingVotes'
  | 'invalidBlocks'
  | 'silent'
  | 'lyingViewChange'
  | 'lyingNewView'
  | 'lyingStatus'

/**
 * A Byzantine validator: it runs the honest replica (so it knows when and what to say) and rewrites what
 * it sends, per destination, signing with its own key:
 * - equivocate: as primary, sends different blocks to different replicas at the same (view, height), and
 *   votes for each block towards the replicas that got it;
 * - conflictingVotes: votes for other digests seen at the same height or for made-up ones, different per
 *   destination, and signs wrong checkpoints;
 * - invalidBlocks (handled by the simulator): proposes blocks that fail validation;
 * - silent: sends nothing at all to some destinations (all of them, or a subset chosen per run), or
 *   (selective) withholds its pre-prepares at some heights from everyone;
 * - lyingViewChange: its VIEW-CHANGEs are sometimes replaced, per destination, by stale, replayed,
 *   forged, oversized or huge-view ones (see `lies.ts`), and it sends such lies on its own;
 * - lyingNewView: as primary, withholds its NEW-VIEW from some replicas, or sends them an old or a
 *   tampered one; replays and forges NEW-VIEWs on its own;
 * - lyingStatus (driven by the simulator): sends STATUS claiming height 0 or huge heights and views,
 *   replays STATUS in bursts.
 */
export class Byzantine {
  readonly behaviors: Set<ByzantineBehavior>
  lastAction = 'none'
  private readonly key: SimKey
  private readonly rng: Rng
  private readonly chainId: string
  /** Digests seen or made up per "view/height", and the split of destinations per equivocation. */
  private readonly seen = new Map<string, Uint8Array[]>()
  private readonly alt = new Map<
    string,
    { bytes: Uint8Array; digest: Uint8Array; groupB: Set<number>; decided: Set<number> }
  >()

  /** Messages seen and sent, for replays and forgeries. */
  readonly memory: LieMemory
  /** Validators a silent replica sends nothing to; empty: it withholds its pre-prepares at some heights. */
  readonly silentTo: Set<number>
  private readonly withheld = new Map<number, boolean>()

  constructor(
    behaviors: ByzantineBehavior[],
    key: SimKey,
    rng: Rng,
    chainId: string,
    silentTo: readonly number[] = [],
  ) {
    this.behaviors = new Set(behaviors)
    this.key = key
    this.rng = rng
    this.chainId = chainId
    this.silentTo = new Set(silentTo)
    this.memory = new LieMemory(key, chainId)
  }

  /** Remembers the digests proposed by others, to vote for them too, and what lies can be made of. */
  observe(bytes: Uint8Array): void {
    if (bytes.length > 64 * 1024 * 1024) return
    const m = decodeShared(bytes, BIG)
    if (!m) return
    try {
      if (m.type === 'prePrepare' || m.type === 'prepare') this.see(m.vote.view, m.vote.height, m.vote.digest)
      this.memory.observe(m, bytes, false)
    } catch {}
  }

  private heightOf(bytes: Uint8Array): number {
    const m = decodeShared(bytes, BIG)
    return m?.type === 'prePrepare' ? m.vote.height : -1
  }

  /** Remembers its own messages (before `transform`), to replay them later. */
  sent(kind: MessageKind, bytes: Uint8Array): void {
    if (kind !== 'viewChange' && kind !== 'newView' && kind !== 'status') return
    const m = decodeShared(bytes, BIG)
    if (!m) return
    try {
      this.memory.observe(m, bytes, true)
    } catch {}
  }

  private see(view: number, height: number, digest: Uint8Array): void {
    const k = `${view}/${height}`
    const list = this.seen.get(k) ?? []
    if (!list.some((d) => toHex(d) === toHex(digest))) list.push(digest)
    this.seen.set(k, list)
    if (this.seen.size > 256) this.seen.delete(this.seen.keys().next().value!)
  }

  private signVote(
    kind: VoteKind,
    view: number,
    height: number,
    digest: Uint8Array,
  ): { vote: Vote; signature: Uint8Array } {
    const vote: Vote = { chainId: this.chainId, kind, view, height, digest, validator: this.key.publicKey }
    return { vote, signature: this.key.sign(voteSigningMessage(vote)) }
  }

  /** The message(s) destination `to` receives instead of `bytes`. */
  transform(kind: MessageKind, bytes: Uint8Array, to: number): Uint8Array[] {
    this.lastAction = 'none'
    if (this.behaviors.has('silent') && this.silentTo.has(to)) {
      this.lastAction = 'silent'
      return []
    }
    if (this.behaviors.has('silent') && this.silentTo.size === 0 && kind === 'prePrepare') {
      // Selective: as primary, proposes some heights to nobody (NEW-VIEWs then fill the gaps with nulls).
      const height = this.heightOf(bytes)
      let drop = this.withheld.get(height)
      if (drop === undefined) this.withheld.set(height, (drop = this.rng.chance(0.5)))
      if (this.withheld.size > 256) this.withheld.delete(this.withheld.keys().next().value!)
      if (drop) {
        this.lastAction = 'silent'
        return []
      }
    }
    if (kind === 'viewChange' && this.behaviors.has('lyingViewChange') && this.rng.chance(0.4)) {
      const lie = viewChangeVariant(this.memory, this.rng, bytes)
      if (lie) {
        this.lastAction = 'lyingViewChange'
        return lie
      }
    }
    if (kind === 'newView' && this.behaviors.has('lyingNewView') && this.rng.chance(0.5)) {
      const lie = newViewVariant(this.memory, this.rng, bytes)
      if (lie) {
        this.lastAction = 'lyingNewView'
        return lie
      }
    }
    if (kind !== 'prePrepare' && kind !== 'prepare' && kind !== 'commit' && kind !== 'checkpoint')
      return [bytes]
    const m = decodeShared(bytes)
    if (!m) return [bytes]
    if (m.type === 'prePrepare' && this.behaviors.has('equivocate')) {
      const v = m.vote
      const k = `${v.view}/${v.height}`
      let a = this.alt.get(k)
      if (!a) {
        const orig = decodeSimBlock(m.block)
        const block = encodeSimBlock({
          height: v.height,
          view: v.view,
          proposer: orig?.proposer ?? 0,
          nonce: 1_000_000_000 + this.rng.int(1_000_000),
          valid: this.rng.chance(0.8),
          padding: orig?.padding ?? 0,
        })
        const digest = simBlockDigest(block)
        const { vote, signature } = this.signVote(VoteKind.prepare, v.view, v.height, digest)
        const groupB = new Set<number>()
        a = {
          bytes: encodeMessage({ type: 'prePrepare', vote, signature, block }),
          digest,
          groupB,
          decided: new Set(),
        }
        this.alt.set(k, a)
        if (this.alt.size > 64) this.alt.delete(this.alt.keys().next().value!)
        this.see(v.view, v.height, v.digest)
        this.see(v.view, v.height, digest)
      }
      // Each destination gets one block; a retransmission may carry the other one.
      if (!a.decided.has(to) || this.rng.chance(0.3)) {
        a.decided.add(to)
        if (this.rng.chance(0.5)) a.groupB.add(to)
        else a.groupB.delete(to)
      }
      if (a.groupB.has(to)) {
        this.lastAction = 'equivocate'
        return [a.bytes]
      }
      return [bytes]
    }
    if (
      (m.type === 'prepare' || m.type === 'commit') &&
      (this.behaviors.has('conflictingVotes') || this.behaviors.has('equivocate'))
    ) {
      const v = m.vote
      const k = `${v.view}/${v.height}`
      const a = this.alt.get(k)
      if (a && a.groupB.has(to)) {
        this.lastAction = 'equivocate'
        return [encodeMessage({ type: m.type, ...this.signVote(v.kind, v.view, v.height, a.digest) })]
      }
      if (!this.behaviors.has('conflictingVotes')) return [bytes]
      const options = [...(this.seen.get(k) ?? [])].filter((d) => toHex(d) !== toHex(v.digest))
      if (this.rng.chance(0.3)) options.push(this.rng.bytes(32))
      if (!options.length || this.rng.chance(0.3)) return [bytes]
      this.lastAction = 'conflictingVotes'
      const other = this.rng.pick(options)
      const conflicting = encodeMessage({ type: m.type, ...this.signVote(v.kind, v.view, v.height, other) })
      // Sometimes both: the receiver sees an equivocation from this validator.
      return this.rng.chance(0.3) ? [bytes, conflicting] : [conflicting]
    }
    if (m.type === 'checkpoint' && this.behaviors.has('conflictingVotes') && this.rng.chance(0.3)) {
      this.lastAction = 'conflictingVotes'
      return [
        encodeMessage({
          type: 'checkpoint',
          ...this.signVote(VoteKind.checkpoint, 0, m.vote.height, this.rng.bytes(32)),
        }),
      ]
    }
    return [bytes]
  }
}

/** Bytes an adversary on the network might inject: noise, truncations, bit flips, or well-formed nonsense. */
export function garbageFrom(rng: Rng, sample: Uint8Array): Uint8Array {
  switch (rng.int(6)) {
    case 0:
      return rng.bytes(rng.int(200))
    case 1:
      return sample.length ? sample.subarray(0, rng.int(sample.length)) : rng.bytes(3)
    case 2: {
      const b = Uint8Array.from(sample.length ? sample : rng.bytes(40))
      for (let i = rng.range(1, 4); i > 0; i--) b[rng.int(b.length)] ^= 1 << rng.int(8)
      return b
    }
    case 3: {
      const b = new Uint8Array(sample.length + 1)
      b.set(sample)
      return b
    }
    case 4:
      // Right shape, random signature and fields.
      return encode([1, rng.range(1, 8), rng.bytes(rng.int(120)), rng.bytes(64), []])
    default:
      return encode([
        1,
        2,
        encode([1, 'sim-chain', 1, rng.int(3), rng.range(1, 30), rng.bytes(32), rng.bytes(32)]),
        rng.bytes(64),
        [],
      ])
  }
}
