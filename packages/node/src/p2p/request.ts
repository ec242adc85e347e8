import type { Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'
import { p2pError } from './errors.ts'
import { FrameDecoder } from './frame.ts'
import { eventBytes } from './inbound.ts'

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
