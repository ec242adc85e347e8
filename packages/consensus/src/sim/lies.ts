import { encode } from '@cityledger/core'
import type { Rng } from '@cityledger/core/testing'
import { NULL_DIGEST } from '../config.ts'
import {
  consensusSigningMessage,
  decodeMessage,
  encodeMessage,
  encodeNewViewBody,
  encodeStatusBody,
  encodeViewChangeBody,
} from '../messages/codec.ts'
import {
  type ConsensusMessage,
  MESSAGE_TYPE,
  type NewViewBody,
  type StatusBody,
  type ViewChangeBody,
} from '../messages/types.ts'
import type { SimKey } from './crypto.ts'
import { decodeShared } from './decodeCache.ts'

type Decoded<K extends ConsensusMessage['type']> = Extract<ConsensusMessage, { type: K }>

/** A message to send: to one validator, or to every other one. */
export interface Lie {
  to: number | 'all'
  bytes: Uint8Array
  /** Name of the lie, for the fault counters (`lie:<name>`). */
  name: string
}

/** What the liar knows when it lies (from its own, otherwise honest, replica). */
export interface LieContext {
  view: number
  committedHeight: number
  n: number
  index: number
  /** The network's frame limit: oversized lies are built around it. */
  frameBytes: number
}

const HUGE = [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER - 1, 2 ** 32, 2 ** 40 + 7]

/** Recent VIEW-CHANGE, NEW-VIEW and STATUS messages, own and observed, kept short. */
export class LieMemory {
  readonly ownViewChanges: { m: Decoded<'viewChange'>; bytes: Uint8Array }[] = []
  readonly ownNewViews: { m: Decoded<'newView'>; bytes: Uint8Array }[] = []
  readonly ownStatus: Uint8Array[] = []
  readonly viewChanges: { m: Decoded<'viewChange'>; bytes: Uint8Array }[] = []
  readonly newViews: Uint8Array[] = []
  readonly peerStatus: Uint8Array[] = []
  readonly chainId: string
  private readonly key: SimKey

  constructor(key: SimKey, chainId: string) {
    this.key = key
    this.chainId = chainId
  }

  get publicKey(): Uint8Array {
    return this.key.publicKey
  }

  observe(m: ConsensusMessage, bytes: Uint8Array, own: boolean): void {
    const push = <T>(list: T[], x: T, max = 4) => {
      list.push(x)
      if (list.length > max) list.shift()
    }
    if (m.type === 'viewChange') push(own ? this.ownViewChanges : this.viewChanges, { m, bytes })
    else if (m.type === 'newView') {
      if (own) push(this.ownNewViews, { m, bytes }, 2)
      else push(this.newViews, bytes, 2)
    } else if (m.type === 'status') push(own ? this.ownStatus : this.peerStatus, bytes, 2)
  }

  sign(bodyBytes: Uint8Array): Uint8Array {
    return this.key.sign(consensusSigningMessage(bodyBytes))
  }

  /**
   * A VIEW-CHANGE of its own for `view`: genesis checkpoint, no prepared certificates (valid, stale).
   * Built from its last real one when it has one, so that the lie follows the wire format.
   */
  viewChange(view: number): Uint8Array {
    const base = this.ownViewChanges.at(-1)?.m
    const body = {
      ...(base?.body ?? { chainId: this.chainId, validator: this.key.publicKey }),
      view,
      checkpoint: { height: 0, digest: NULL_DIGEST, signatures: [] },
      prepared: [],
    } as ViewChangeBody
    return this.signedViewChange(body)
  }

  signedViewChange(body: ViewChangeBody): Uint8Array {
    const bodyBytes = encodeViewChangeBody(body)
    const m = { type: 'viewChange', body, bodyBytes, signature: this.sign(bodyBytes), blocks: [] }
    return encodeMessage(m as unknown as ConsensusMessage)
  }

  statusOf(view: number, committedHeight: number): Uint8Array {
    const base = decodeStatus(this.ownStatus.at(-1))?.body
    const body = {
      ...(base ?? { chainId: this.chainId, validator: this.key.publicKey, round: 0 }),
      view,
      committedHeight,
    } as StatusBody
    const bodyBytes = encodeStatusBody(body)
    return encodeMessage({
      type: 'status',
      body,
      bodyBytes,
      signature: this.sign(bodyBytes),
    } as ConsensusMessage)
  }

  newView(body: NewViewBody, blocks: Uint8Array[]): Uint8Array {
    const bodyBytes = encodeNewViewBody(body)
    const m = { type: 'newView', body, bodyBytes, signature: this.sign(bodyBytes), blocks }
    return encodeMessage(m as unknown as ConsensusMessage)
  }
}

function decodeStatus(bytes: Uint8Array | undefined): Decoded<'status'> | undefined {
  if (!bytes) return undefined
  return decodeShared(bytes) as Decoded<'status'> | undefined
}

let junk = new Uint8Array(0)
/** Junk of about the frame limit: just under it (the replica must refuse it) or over it (p2p drops it). */
function oversized(rng: Rng, frameBytes: number): Uint8Array {
  const size = Math.max(1024, frameBytes - 4096 + rng.int(8192))
  if (junk.length !== size) junk = new Uint8Array(size).fill(0xa5)
  return junk
}

/** A signed VIEW-CHANGE with a junk attachment of about the frame limit (raw wire: `[1, type, body, sig, attachments]`). */
function oversizedViewChange(mem: LieMemory, rng: Rng, ctx: LieContext): Uint8Array {
  const m = decodeMessage(mem.viewChange(ctx.view + 1)) as Decoded<'viewChange'>
  return encode([1, MESSAGE_TYPE.viewChange, m.bodyBytes, m.signature, [oversized(rng, ctx.frameBytes)]])
}

/** Forged: another validator's VIEW-CHANGE with its view moved, the old signature kept. */
function forgedViewChange(mem: LieMemory, rng: Rng): Uint8Array | undefined {
  if (!mem.viewChanges.length) return undefined
  const { m } = rng.pick(mem.viewChanges)
  const body = { ...m.body, view: m.body.view + 1 + rng.int(3) }
  const bodyBytes = encodeViewChangeBody(body)
  return encodeMessage({ ...m, body, bodyBytes } as ConsensusMessage)
}

/** What a lying replica sends instead of its own VIEW-CHANGE `bytes` to one destination. */
export function viewChangeVariant(mem: LieMemory, rng: Rng, bytes: Uint8Array): Uint8Array[] | undefined {
  const m = decodeShared(bytes, 64 * 1024 * 1024) as Decoded<'viewChange'> | undefined
  if (!m) return undefined
  switch (rng.int(4)) {
    case 0:
      return [mem.viewChange(m.body.view)]
    case 1: {
      const old = mem.ownViewChanges.find((x) => x.m.body.view < m.body.view)
      return old ? [old.bytes] : []
    }
    case 2: {
      const f = forgedViewChange(mem, rng)
      return f ? [f, bytes] : [bytes]
    }
    default:
      return [mem.viewChange(rng.pick(HUGE))]
  }
}

/** What a lying primary sends instead of its NEW-VIEW `bytes` to one destination. */
export function newViewVariant(mem: LieMemory, rng: Rng, bytes: Uint8Array): Uint8Array[] | undefined {
  const m = decodeShared(bytes, 64 * 1024 * 1024) as Decoded<'newView'> | undefined
  if (!m) return undefined
  switch (rng.int(3)) {
    case 0:
      return []
    case 1: {
      const old = mem.ownNewViews.find((x) => x.m.body.view < m.body.view)
      return old ? [old.bytes] : [mem.newViews[0] ?? bytes]
    }
    default:
      return [tamperedNewView(mem, rng, m)]
  }
}

/** The NEW-VIEW with one re-proposal changed (or one added), re-signed: the recomputation must refuse it. */
function tamperedNewView(mem: LieMemory, rng: Rng, m: Decoded<'newView'>): Uint8Array {
  const reproposals = m.body.reproposals.map((r) => ({ ...r }))
  const blocks = [...((('blocks' in m ? m.blocks : undefined) as Uint8Array[] | undefined) ?? [])]
  const nonNull = reproposals.findIndex((r) => r.digest.some((x) => x !== 0))
  if (reproposals.length && rng.chance(0.5)) {
    // Turn a carried-over block into a null filler (or the other way round, with no block for it).
    const i = Math.max(nonNull, 0)
    const r = reproposals[i]!
    if (nonNull >= 0) {
      reproposals[i] = { ...r, digest: NULL_DIGEST }
      blocks.splice(reproposals.slice(0, i).filter((x) => x.digest.some((b) => b !== 0)).length, 1)
    } else reproposals[i] = { ...r, digest: rng.bytes(32) }
  } else {
    const last = reproposals.at(-1)?.height ?? m.body.viewChanges.length
    reproposals.push({ height: last + 1, digest: NULL_DIGEST, signature: rng.bytes(64) })
  }
  return mem.newView({ ...m.body, reproposals }, blocks)
}

/** One lie of the given family, sent on the liar's own initiative (at any time, also after the heal). */
export function makeLie(
  family: 'lyingViewChange' | 'lyingNewView' | 'lyingStatus',
  mem: LieMemory,
  rng: Rng,
  ctx: LieContext,
): Lie[] {
  const other = () => {
    const o = rng.int(ctx.n - 1)
    return o >= ctx.index ? o + 1 : o
  }
  if (family === 'lyingStatus') {
    switch (rng.int(5)) {
      case 0:
        return [{ to: other(), bytes: mem.statusOf(ctx.view, 0), name: 'statusHeightZero' }]
      case 1: {
        // The same signed bytes, many times: a replica must not answer each copy.
        const bytes = mem.ownStatus.at(-1) ?? mem.statusOf(ctx.view, 0)
        const to = other()
        return Array.from({ length: rng.range(5, 30) }, () => ({ to, bytes, name: 'statusReplay' }))
      }
      case 2:
        return [{ to: 'all', bytes: mem.statusOf(ctx.view, rng.pick(HUGE)), name: 'statusHugeHeight' }]
      case 3:
        return [
          { to: other(), bytes: mem.statusOf(rng.pick(HUGE), ctx.committedHeight), name: 'statusHugeView' },
        ]
      default: {
        const bytes = mem.peerStatus.length
          ? rng.pick(mem.peerStatus)
          : mem.statusOf(ctx.view, ctx.committedHeight)
        return [{ to: other(), bytes, name: 'statusReplayOther' }]
      }
    }
  }
  if (family === 'lyingViewChange') {
    switch (rng.int(6)) {
      case 0:
        return [{ to: 'all', bytes: mem.viewChange(ctx.view + 1), name: 'viewChangeStale' }]
      case 1: {
        const old = mem.ownViewChanges.length ? rng.pick(mem.ownViewChanges).bytes : undefined
        const theirs = mem.viewChanges.length ? rng.pick(mem.viewChanges).bytes : undefined
        const bytes = old ?? theirs
        return bytes ? [{ to: other(), bytes, name: 'viewChangeReplay' }] : []
      }
      case 2: {
        const f = forgedViewChange(mem, rng)
        return f ? [{ to: other(), bytes: f, name: 'viewChangeForged' }] : []
      }
      case 3:
        return [{ to: 'all', bytes: mem.viewChange(rng.pick(HUGE)), name: 'viewChangeHugeView' }]
      case 4:
        // Rare and costly: one destination, about the frame limit.
        if (!rng.chance(0.2)) return []
        return [{ to: other(), bytes: oversizedViewChange(mem, rng, ctx), name: 'viewChangeOversized' }]
      default: {
        // Claims a prepared certificate it cannot prove.
        const bytes = mem.viewChange(ctx.view + 1)
        const m = decodeMessage(bytes) as Decoded<'viewChange'>
        const body: ViewChangeBody = {
          ...m.body,
          prepared: [
            {
              height: ctx.committedHeight + 1,
              view: ctx.view,
              digest: NULL_DIGEST,
              signatures: [{ validator: m.body.validator, signature: rng.bytes(64) }],
            },
          ],
        }
        return [{ to: 'all', bytes: mem.signedViewChange(body), name: 'viewChangeBadCertificate' }]
      }
    }
  }
  switch (rng.int(3)) {
    case 0: {
      const list = [...mem.ownNewViews.map((x) => x.bytes), ...mem.newViews]
      return list.length ? [{ to: other(), bytes: rng.pick(list), name: 'newViewReplay' }] : []
    }
    case 1: {
      // A NEW-VIEW for a huge view this validator would be primary of, with one VIEW-CHANGE at most.
      const base = rng.pick(HUGE)
      const view = base - (base % ctx.n) + ctx.index
      const vc = mem.ownViewChanges.at(-1)?.m ?? mem.viewChanges.at(-1)?.m
      const body: NewViewBody = {
        chainId: mem.chainId,
        view: Number.isSafeInteger(view) ? view : ctx.index + ctx.n,
        validator: mem.publicKey,
        viewChanges: vc ? [{ bodyBytes: vc.bodyBytes, signature: vc.signature }] : [],
        reproposals: [],
      }
      return [{ to: 'all', bytes: mem.newView(body, []), name: 'newViewHugeView' }]
    }
    default: {
      const own = mem.ownNewViews.at(-1)
      if (!own) return []
      return [{ to: other(), bytes: tamperedNewView(mem, rng, own.m), name: 'newViewTampered' }]
    }
  }
}
