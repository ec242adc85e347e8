import { isCityError } from '@cityledger/core'
import type { Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'
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
  /** The sender's bucket for this protocol (shared by all its streams of the protocol). */
  bucket: TokenBucket
  weights: PenaltyWeights
  maxQueuedFrames: number
  /** Applies a penalty to the sender. */
  penalize(reason: string, weight: number): void
  /** False once the sender is banned or no longer allowed: stop serving it. */
  admitted(): boolean
  log: Logger
}

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
  let pumping = false
  let closed = false
  let remoteDone = false

  const stop = (err: Error): void => {
    closed = true
    queue.length = 0
    stream.abort(err)
  }

  const onFrame = (frame: Uint8Array): void => {
    if (closed) return
    if (!ctx.admitted()) {
      stop(new Error('peer no longer admitted'))
      return
    }
    if (!ctx.bucket.tryTake()) {
      ctx.penalize(`rate-limited on ${ctx.protocol}`, ctx.weights.rateLimited)
      return
    }
    queue.push(frame)
  }

  const onMessage = (evt: StreamMessageEvent): void => {
    if (closed) return
    try {
      decoder.push(eventBytes(evt), onFrame)
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
      return
    }
    // Back-pressure: a busy handler pauses the stream instead of letting the queue grow.
    if (queue.length >= ctx.maxQueuedFrames && stream.readStatus === 'readable') stream.pause()
    void pump()
  }

  const finishIfDone = (): void => {
    if (closed || pumping || !remoteDone || queue.length > 0) return
    closed = true
    stream.close().catch((err: Error) => stream.abort(err))
  }

  const pump = async (): Promise<void> => {
    if (pumping) return
    pumping = true
    try {
      while (queue.length > 0 && !closed) {
        const data = queue.shift()!
        if (stream.readStatus === 'paused' && queue.length <= ctx.maxQueuedFrames / 2) stream.resume()
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
        if (reply.length > ctx.limits.maxMessageBytes) {
          // Our own bug, not the peer's: the peer would refuse the frame and penalise us.
          ctx.log.warn(
            { protocol: ctx.protocol, size: reply.length, limit: ctx.limits.maxMessageBytes },
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
    closed = true
    queue.length = 0
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
