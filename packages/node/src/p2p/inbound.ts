import { isCityError } from '@cityledger/core'
import type { Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'
import type { Clock, TimerHandle } from './clock.ts'
import { encodeFrame, FrameDecoder } from './frame.ts'
import type { Logger } from './logger.ts'
import type { TokenBucket } from './tokenBucket.ts'
import type { MessageHandler, PenaltyWeights, ProtocolLimits } from './types.ts'

/** What one inbound stream needs from the node. */
export interface InboundContext {
  peer: string
  protocol: string
  limits: ProtocolLimits
  handler: MessageHandler
  /** The sender's message bucket for this protocol (shared by all its streams of the protocol). */
  bucket: TokenBucket
  /** The sender's byte bucket for this protocol, when the protocol has a byte budget. */
  byteBucket?: TokenBucket
  /** Bytes of unfinished frames held for the sender over all its streams: adds `delta`, returns the total. */
  holdPartial(delta: number): number
  /** The most the sender may hold in unfinished frames. */
  partialBudget: number
  /** A frame unfinished this long after its first byte is cut off (ms). */
  partialMaxAgeMs: number
  clock: Clock
  weights: PenaltyWeights
  maxQueuedFrames: number
  /** Applies a penalty to the sender. */
  penalize(reason: string, weight: number): void
  /** False once the sender is banned or no longer allowed: stop serving it. */
  admitted(): boolean
  /** Called once when the stream is done (closed, reset or cut off). */
  onDone?(): void
  log: Logger
}

/** Most bytes fed to the decoder between two checks of the sender's partial-frame budget. */
export const SLICE_BYTES = 64 * 1024

/** Bytes of a message event as one Uint8Array (the event carries either form). */
export function eventBytes(evt: StreamMessageEvent): Uint8Array {
  return evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
}

/**
 * Serves one inbound stream: frames are size-checked from their header, rate-limited per peer and
 * protocol, then handed to the handler one at a time in order. A handler result is written back as a
 * frame (request/response). When the remote has closed its side and every frame is handled, our side closes.
 */
export function serveInboundStream(stream: Stream, ctx: InboundContext): void {
  const decoder = new FrameDecoder(ctx.limits.maxMessageBytes)
  const queue: Uint8Array[] = []
  let queuedBytes = 0
  // Frames handed to a slow handler are bounded by count and by bytes; past either the stream pauses.
  const maxQueuedBytes = Math.max(2 * ctx.limits.maxMessageBytes, 64 * 1024)
  let pumping = false
  let closed = false
  let remoteDone = false
  /** Bytes of this stream's unfinished frame counted in the sender's partial total. */
  let held = 0
  let ageTimer: TimerHandle | undefined
  let ageFrame = -1

  const release = (): void => {
    if (held) ctx.holdPartial(-held)
    held = 0
    if (ageTimer !== undefined) ctx.clock.clearTimeout(ageTimer)
    ageTimer = undefined
  }

  const done = (): void => {
    if (closed) return
    closed = true
    queue.length = 0
    queuedBytes = 0
    release()
    ctx.onDone?.()
  }

  const stop = (err: Error): void => {
    done()
    stream.abort(err)
  }

  /** Size and rate checks from the header alone: a dropped frame is never buffered. */
  const accept = (length: number): boolean => {
    if (closed) return false
    if (!ctx.admitted()) {
      stop(new Error('peer no longer admitted'))
      return false
    }
    if (!ctx.bucket.tryTake()) {
      ctx.penalize(`rate-limited on ${ctx.protocol}`, ctx.weights.rateLimited)
      return false
    }
    if (ctx.byteBucket && !ctx.byteBucket.tryTake(length)) {
      ctx.penalize(`byte budget exceeded on ${ctx.protocol}`, ctx.weights.rateLimited)
      return false
    }
    return true
  }

  const onFrame = (frame: Uint8Array): void => {
    if (closed) return
    queue.push(frame)
    queuedBytes += frame.length
  }

  /** After each chunk: account unfinished bytes against the peer's budget and time its frame. */
  const checkPartial = (): void => {
    const now = decoder.buffered
    if (now !== held) {
      const total = ctx.holdPartial(now - held)
      held = now
      if (total > ctx.partialBudget && held > 0) {
        ctx.log.debug(
          { peer: ctx.peer, protocol: ctx.protocol, total, budget: ctx.partialBudget },
          'partial frames over budget, resetting stream',
        )
        ctx.penalize(`partial frames over budget on ${ctx.protocol}`, ctx.weights.partialFrame)
        stop(new Error('partial frames over budget'))
        return
      }
    }
    if (ageTimer !== undefined && ageFrame !== decoder.completed) {
      ctx.clock.clearTimeout(ageTimer)
      ageTimer = undefined
    }
    if (ageTimer === undefined && decoder.inFrame) armAge(ctx.partialMaxAgeMs)
  }

  const armAge = (ms: number): void => {
    ageFrame = decoder.completed
    ageTimer = ctx.clock.setTimeout(() => {
      ageTimer = undefined
      if (closed || ageFrame !== decoder.completed || !decoder.inFrame) return
      // Paused by us (a busy handler): the peer cannot finish the frame; give it the time again.
      if (stream.readStatus === 'paused') {
        armAge(ctx.partialMaxAgeMs)
        return
      }
      ctx.penalize(`partial frame held too long on ${ctx.protocol}`, ctx.weights.partialFrame)
      stop(new Error('partial frame held too long'))
    }, ms)
  }

  const onMessage = (evt: StreamMessageEvent): void => {
    if (closed) return
    // libp2p may hand over everything buffered before the handler ran in one event (megabytes): feed it
    // in slices so the partial budget is checked at least every SLICE_BYTES copied.
    const bytes = eventBytes(evt)
    for (let at = 0; at < bytes.length && !closed; at += SLICE_BYTES) {
      if (!feed(bytes.subarray(at, Math.min(bytes.length, at + SLICE_BYTES)))) return
      checkPartial()
    }
    if (closed) return
    // Back-pressure: a busy handler pauses the stream instead of letting the queue grow.
    if (
      (queue.length >= ctx.maxQueuedFrames || queuedBytes >= maxQueuedBytes) &&
      stream.readStatus === 'readable'
    )
      stream.pause()
    void pump()
  }

  /** One slice through the decoder; false once the stream was reset for a bad frame. */
  const feed = (chunk: Uint8Array): boolean => {
    try {
      decoder.push(chunk, onFrame, accept)
      return true
    } catch (err) {
      const code = isCityError(err) ? err.code : 'P2P_BAD_FRAME'
      ctx.log.debug({ peer: ctx.peer, protocol: ctx.protocol, code }, 'refused frame, resetting stream')
      ctx.penalize(
        code === 'P2P_FRAME_TOO_LARGE'
          ? `frame too large on ${ctx.protocol}`
          : `bad frame on ${ctx.protocol}`,
        ctx.weights.badFrame,
      )
      stop(err as Error)
      return false
    }
  }

  const finishIfDone = (): void => {
    if (closed || pumping || !remoteDone || queue.length > 0) return
    done()
    stream.close().catch((err: Error) => stream.abort(err))
  }

  const pump = async (): Promise<void> => {
    if (pumping) return
    pumping = true
    try {
      while (queue.length > 0 && !closed) {
        const data = queue.shift()!
        queuedBytes -= data.length
        if (
          stream.readStatus === 'paused' &&
          queue.length <= ctx.maxQueuedFrames / 2 &&
          queuedBytes <= maxQueuedBytes / 2
        )
          stream.resume()
        let reply: Uint8Array | undefined | void
        try {
          reply = await ctx.handler({ peer: ctx.peer, protocol: ctx.protocol, data })
        } catch (err) {
          if (isCityError(err) && err.penalize)
            ctx.penalize(`${err.code} on ${ctx.protocol}`, ctx.weights.default)
          else ctx.log.warn({ peer: ctx.peer, protocol: ctx.protocol, err: String(err) }, 'handler failed')
          continue
        }
        if (!(reply instanceof Uint8Array) || closed) continue
        const replyLimit = ctx.limits.maxResponseBytes ?? ctx.limits.maxMessageBytes
        if (reply.length > replyLimit) {
          // Our own bug, not the peer's: the peer would refuse the frame and penalise us.
          ctx.log.warn(
            { protocol: ctx.protocol, size: reply.length, limit: replyLimit },
            'handler reply over the limit, not sent',
          )
          continue
        }
        try {
          if (stream.writableNeedsDrain) await stream.onDrain()
          stream.send(encodeFrame(reply))
        } catch (err) {
          ctx.log.debug({ peer: ctx.peer, protocol: ctx.protocol, err: String(err) }, 'reply not sent')
        }
      }
    } finally {
      pumping = false
    }
    finishIfDone()
  }

  const onRemoteCloseWrite = (): void => {
    remoteDone = true
    finishIfDone()
  }

  const onClose = (evt: StreamCloseEvent): void => {
    done()
    stream.removeEventListener('message', onMessage)
    stream.removeEventListener('remoteCloseWrite', onRemoteCloseWrite)
    stream.removeEventListener('close', onClose)
    if (evt.error)
      ctx.log.debug(
        { peer: ctx.peer, protocol: ctx.protocol, err: String(evt.error) },
        'inbound stream closed with error',
      )
  }

  stream.addEventListener('message', onMessage)
  stream.addEventListener('remoteCloseWrite', onRemoteCloseWrite)
  stream.addEventListener('close', onClose)
  // The remote may have sent its frame and closed before we got here; its buffered data is dispatched in a
  // microtask queued by addEventListener('message'), so look at the close only after that has run.
  if (stream.remoteWriteStatus === 'closed') queueMicrotask(onRemoteCloseWrite)
}
