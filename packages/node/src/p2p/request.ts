import { type CityError, isCityError } from '@cityledger/core'
import type { Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'
import type { Clock } from './clock.ts'
import type { RequestSlots } from './connections.ts'
import { p2pError } from './errors.ts'
import { encodeFrame, FrameDecoder } from './frame.ts'
import { eventBytes } from './inbound.ts'
import { DEFAULT_MAX_STREAMS } from './limits.ts'
import type { ProtocolLimits } from './types.ts'

/** One request to a peer whose key, protocol and message the caller has already checked. */
export interface RequestCall {
  peer: string
  protocol: string
  data: Uint8Array
  limits: ProtocolLimits
  timeoutMs: number
  signal?: AbortSignal
  clock: Clock
  /** Our requests in flight per `peer protocol` (the responder refuses more than `maxStreams`). */
  slots: RequestSlots
  openStream(signal: AbortSignal): Promise<Stream>
  /** A response the responder should not have sent (a bad frame, marked `penalize`). */
  penalizeResponse(err: CityError): void
}

/**
 * Sends one framed request on a new stream and reads one framed response, within `timeoutMs`.
 * Rejects with P2P_TIMEOUT, P2P_ABORTED (the caller's signal), the frame errors of `readOneFrame`
 * or P2P_STREAM_ERROR.
 */
export async function sendRequest(o: RequestCall): Promise<Uint8Array> {
  const { peer: key, protocol, data, limits, timeoutMs } = o
  const ac = new AbortController()
  const timer = o.clock.setTimeout(
    () =>
      ac.abort(
        p2pError(
          'P2P_TIMEOUT',
          `no response from ${key.slice(0, 16)} on ${protocol} within ${timeoutMs} ms`,
          {
            peer: key,
            protocol,
            timeoutMs,
          },
        ),
      ),
    timeoutMs,
  )
  const onCallerAbort = (): void => ac.abort(p2pError('P2P_ABORTED', 'request aborted by the caller'))
  o.signal?.addEventListener('abort', onCallerAbort, { once: true })
  let stream: Stream | undefined
  let release: (() => void) | undefined
  try {
    // At most maxStreams requests per peer and protocol at once: the responder refuses more streams.
    const slot = o.slots.acquire(`${key} ${protocol}`, limits.maxStreams ?? DEFAULT_MAX_STREAMS)
    release = await raceSignal(slot, ac.signal, (r) => r())
    stream = await raceSignal(o.openStream(ac.signal), ac.signal, (s) =>
      s.abort(new Error('request abandoned')),
    )
    stream.send(encodeFrame(data))
    const reading = readOneFrame(stream, limits.maxResponseBytes ?? limits.maxMessageBytes, ac.signal)
    // Half-close: the responder answers once it has seen the end of our request.
    await stream.close({ signal: ac.signal }).catch(() => {})
    return await reading
  } catch (err) {
    stream?.abort(err instanceof Error ? err : new Error(String(err)))
    if (ac.signal.aborted) throw ac.signal.reason
    if (isCityError(err)) {
      if (err.penalize) o.penalizeResponse(err)
      throw err
    }
    throw p2pError(
      'P2P_STREAM_ERROR',
      `request to ${key.slice(0, 16)} on ${protocol} failed: ${(err as Error)?.message ?? err}`,
      { peer: key, protocol },
    )
  } finally {
    release?.()
    o.clock.clearTimeout(timer)
    o.signal?.removeEventListener('abort', onCallerAbort)
  }
}

/**
 * Reads the first frame from `stream` (the response of a request), at most `maxBytes` long.
 * Rejects with the frame error (P2P_FRAME_TOO_LARGE / P2P_BAD_FRAME, marked `penalize`), P2P_NO_RESPONSE
 * when the remote ends the stream first, P2P_STREAM_ERROR on a reset, or `signal.reason` on abort.
 */
export function readOneFrame(stream: Stream, maxBytes: number, signal: AbortSignal): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    const decoder = new FrameDecoder(maxBytes)
    let done = false
    const finish = (err: unknown, frame?: Uint8Array): void => {
      if (done) return
      done = true
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('end', onEnd)
      stream.removeEventListener('close', onClose)
      signal.removeEventListener('abort', onAbort)
      if (frame) resolve(frame)
      else reject(err)
    }
    const onMessage = (evt: StreamMessageEvent): void => {
      try {
        decoder.push(eventBytes(evt), (frame) => finish(undefined, frame))
      } catch (err) {
        finish(err)
      }
    }
    const onEnd = (): void =>
      finish(p2pError('P2P_NO_RESPONSE', `remote closed the ${stream.protocol} stream without a response`))
    const onClose = (evt: StreamCloseEvent): void =>
      finish(
        evt.error
          ? p2pError('P2P_STREAM_ERROR', `${stream.protocol} stream failed: ${evt.error.message}`)
          : p2pError('P2P_NO_RESPONSE', `remote closed the ${stream.protocol} stream without a response`),
      )
    const onAbort = (): void => finish(signal.reason)
    if (signal.aborted) {
      onAbort()
      return
    }
    stream.addEventListener('message', onMessage)
    stream.addEventListener('end', onEnd)
    stream.addEventListener('close', onClose)
    signal.addEventListener('abort', onAbort)
  })
}

/**
 * `promise`, or `signal.reason` if the signal fires first. A value that arrives after the abort is handed
 * to `discard` (e.g. to abort a stream that opened too late) so it does not leak.
 */
export function raceSignal<T>(
  promise: Promise<T>,
  signal: AbortSignal,
  discard: (value: T) => void,
): Promise<T> {
  if (signal.aborted) {
    promise.then(discard, () => {})
    return Promise.reject(signal.reason)
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      promise.then(discard, () => {})
      reject(signal.reason)
    }
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort)
        if (signal.aborted) discard(v)
        else resolve(v)
      },
      (err) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}
