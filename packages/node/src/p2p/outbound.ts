import type { Stream } from '@libp2p/interface'
import { p2pError } from './errors.ts'
import type { Logger } from './logger.ts'

interface Entry {
  opening: Promise<Out>
  /** Set once the stream is open. */
  out?: Out
}

interface Out {
  stream: Stream
  /** Resolves when every write queued so far is handed to the stream; keeps frames in order. */
  tail: Promise<void>
  pending: number
}

/**
 * Longest a write waits for a stream to drain: a peer that keeps its stream open but stops reading must
 * not hold a sender's promise forever (the stream is aborted, and the next send opens a new one).
 */
export const DRAIN_TIMEOUT_MS = 30_000
/** Longest the opening of a stream may take (protocol negotiation on an open connection). */
export const OPEN_TIMEOUT_MS = 10_000

/**
 * Long-lived outbound streams, one per peer and protocol, for fire-and-forget frames. A stream is opened
 * on first use and forgotten when it closes (the next send opens a new one). Writes wait for `drain`
 * instead of growing libp2p's buffer; at most `maxPending` frames wait per stream.
 */
export class OutboundStreams {
  private readonly streams = new Map<string, Entry>()
  private readonly open: (peer: string, protocol: string, signal: AbortSignal) => Promise<Stream>
  private readonly maxPending: number
  private readonly log: Logger

  constructor(
    open: (peer: string, protocol: string, signal: AbortSignal) => Promise<Stream>,
    maxPending: number,
    log: Logger,
  ) {
    this.open = open
    this.maxPending = maxPending
    this.log = log
  }

  /** Queues one encoded frame; resolves once it is written into the stream (not once delivered). */
  async send(peer: string, protocol: string, frame: Uint8Array): Promise<void> {
    let out = await this.get(peer, protocol)
    if (out.stream.writeStatus !== 'writable') {
      this.forget(peer, protocol, out)
      out = await this.get(peer, protocol)
    }
    if (out.pending >= this.maxPending) {
      throw p2pError(
        'P2P_BACKPRESSURE',
        `${out.pending} messages already queued to ${peer.slice(0, 16)} on ${protocol}`,
        { peer, protocol },
      )
    }
    out.pending++
    const write = out.tail.then(async () => {
      if (out.stream.writableNeedsDrain)
        await out.stream.onDrain({ signal: AbortSignal.timeout(DRAIN_TIMEOUT_MS) })
      out.stream.send(frame)
    })
    out.tail = write.then(
      () => {
        out.pending--
      },
      () => {
        out.pending--
      },
    )
    try {
      await write
    } catch (err) {
      this.forget(peer, protocol, out)
      out.stream.abort(err as Error)
      throw p2pError(
        'P2P_STREAM_ERROR',
        `write to ${peer.slice(0, 16)} on ${protocol} failed: ${(err as Error).message}`,
        { peer, protocol },
      )
    }
  }

  /** Aborts every stream to `peer` (it was banned or disconnected). */
  closePeer(peer: string): void {
    for (const [key, e] of this.streams) {
      if (!key.startsWith(`${peer} `)) continue
      this.streams.delete(key)
      e.opening.then(
        (out) => out.stream.abort(new Error('peer disconnected')),
        () => {},
      )
    }
  }

  closeAll(): void {
    for (const [key, e] of this.streams) {
      this.streams.delete(key)
      e.opening.then(
        (out) => out.stream.abort(new Error('p2p stopping')),
        () => {},
      )
    }
  }

  private get(peer: string, protocol: string): Promise<Out> {
    const key = `${peer} ${protocol}`
    const existing = this.streams.get(key)
    if (existing) return existing.opening
    const entry: Entry = {
      opening: this.open(peer, protocol, AbortSignal.timeout(OPEN_TIMEOUT_MS)).then((stream) => {
        const out: Out = { stream, tail: Promise.resolve(), pending: 0 }
        entry.out = out
        // These streams carry no answers; read and drop anything the remote writes so it cannot pile up.
        stream.addEventListener('message', () => {})
        stream.addEventListener('close', (evt) => {
          this.forget(peer, protocol, out)
          if (evt.error)
            this.log.debug({ peer, protocol, err: String(evt.error) }, 'outbound stream closed with error')
        })
        return out
      }),
    }
    this.streams.set(key, entry)
    entry.opening.catch(() => {
      if (this.streams.get(key) === entry) this.streams.delete(key)
    })
    return entry.opening
  }

  private forget(peer: string, protocol: string, out: Out): void {
    const key = `${peer} ${protocol}`
    if (this.streams.get(key)?.out === out) this.streams.delete(key)
  }
}
