import type { Connection, Stream } from '@libp2p/interface'
import type { Clock } from './clock.ts'
import { validatorKeyOfPeerId } from './identity.ts'
import { serveInboundStream } from './inbound.ts'
import { DEFAULT_MAX_STREAMS } from './limits.ts'
import type { Logger } from './logger.ts'
import { TokenBucket } from './tokenBucket.ts'
import type { DenyReason, MessageHandler, PenaltyWeights, ProtocolLimits } from './types.ts'

/** What the gate asks of its p2p node (peers are hex validator keys). */
export interface InboundGateOptions {
  clock: Clock
  log: Logger
  weights: PenaltyWeights
  maxQueuedFrames: number
  partialMaxAgeMs: number
  /** Bytes of unfinished frames a peer may hold over all its inbound streams. */
  partialBudget(key: string): number
  /** Why the peer may not talk to us now (banned, not in the set), or undefined. */
  admitKey(key: string): DenyReason | undefined
  /** The peer's limits for the protocol, by its role; undefined when the protocol is closed to it. */
  limitsOf(key: string, protocol: string): ProtocolLimits | undefined
  handlerOf(protocol: string): MessageHandler | undefined
  penalize(key: string, reason: string, weight: number): void
}

/**
 * Admits inbound streams: the peer must still be allowed (the gater checked it when the connection
 * opened; a set change or a ban may have come since), the protocol open to its role, and its streams
 * per protocol under `maxStreams`. Each admitted stream is served by `serveInboundStream` with the
 * peer's message and byte buckets (shared by its streams of that protocol) and its share of the
 * unfinished-frame budget (shared by all its streams).
 */
export class InboundGate {
  private readonly o: InboundGateOptions
  /** Bytes of unfinished frames held per peer, over all its inbound streams. */
  private readonly partialHeld = new Map<string, number>()
  /** Inbound streams open per `peer protocol`. */
  private readonly open = new Map<string, number>()
  private readonly buckets = new Map<string, TokenBucket>()

  constructor(o: InboundGateOptions) {
    this.o = o
  }

  /** Bytes of unfinished frames `key` holds now. */
  heldBytes(key: string): number {
    return this.partialHeld.get(key) ?? 0
  }

  /** The libp2p stream handler of `protocol`. */
  handler(protocol: string) {
    return (stream: Stream, connection: Connection): void => {
      const o = this.o
      const key = validatorKeyOfPeerId(connection.remotePeer)
      if (key === undefined || o.admitKey(key) !== undefined) {
        stream.abort(new Error('peer not allowed'))
        return
      }
      const first = o.handlerOf(protocol)
      if (!first) {
        stream.abort(new Error(`no handler for ${protocol}`))
        return
      }
      const limits = o.limitsOf(key, protocol)
      if (!limits) {
        stream.abort(new Error(`${protocol} is not open to observers`))
        o.penalize(key, `${protocol} is not open to observers`, o.weights.notPermitted)
        return
      }
      // libp2p caps streams per connection; this caps them per peer and role (observers may get fewer).
      const streamsId = `${key} ${protocol}`
      const open = this.open.get(streamsId) ?? 0
      if (open >= (limits.maxStreams ?? DEFAULT_MAX_STREAMS)) {
        o.log.debug({ peer: key, protocol, open }, 'too many inbound streams, refusing one')
        stream.abort(new Error(`too many ${protocol} streams`))
        return
      }
      this.open.set(streamsId, open + 1)
      serveInboundStream(stream, {
        peer: key,
        protocol,
        limits,
        handler: (msg) => (o.handlerOf(protocol) ?? first)(msg),
        bucket: this.bucket(`${key} ${protocol}`, limits.ratePerSecond, limits.burst),
        byteBucket:
          limits.bytesPerSecond === undefined || limits.burstBytes === undefined
            ? undefined
            : this.bucket(`${key} ${protocol} bytes`, limits.bytesPerSecond, limits.burstBytes),
        holdPartial: (delta) => this.holdPartial(key, delta),
        partialBudget: o.partialBudget(key),
        partialMaxAgeMs: o.partialMaxAgeMs,
        clock: o.clock,
        weights: o.weights,
        maxQueuedFrames: o.maxQueuedFrames,
        penalize: (reason, weight) => o.penalize(key, reason, weight),
        admitted: () => o.admitKey(key) === undefined,
        onDone: () => {
          const n = (this.open.get(streamsId) ?? 1) - 1
          if (n > 0) this.open.set(streamsId, n)
          else this.open.delete(streamsId)
        },
        log: o.log,
      })
    }
  }

  private bucket(id: string, perSecond: number, burst: number): TokenBucket {
    let b = this.buckets.get(id)
    if (!b) {
      b = new TokenBucket(perSecond, burst, this.o.clock)
      this.buckets.set(id, b)
    }
    return b
  }

  private holdPartial(key: string, delta: number): number {
    const total = (this.partialHeld.get(key) ?? 0) + delta
    if (total > 0) this.partialHeld.set(key, total)
    else this.partialHeld.delete(key)
    return Math.max(0, total)
  }
}
