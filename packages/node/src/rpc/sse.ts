import type { ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import type { RpcBackend, RpcEvent } from './backend.ts'
import { jsonForm } from './params.ts'

/**
 * The fan-out of `GET /v1/events`: one backend subscription for all streams, each event serialised
 * once into a buffer that every stream writes (no copy per subscriber), at most `maxSubscribers`
 * streams, and a bounded backlog per stream. A stream whose socket does not take what it is sent
 * falls behind; once it is more than `maxBacklogBytes` behind the newest event it is dropped (its
 * connection closed; it may reconnect). Memory is therefore bounded by the backlog window plus a
 * socket buffer per stream, whatever the number of streams and however slowly they read.
 */
export interface EventHub {
  /** True when another stream would pass `maxSubscribers` (the route answers 503 then). */
  full(): boolean
  /** Turns a hijacked response into an event stream; the hub owns it from then on. */
  open(res: ServerResponse): void
  /** Open streams. */
  size(): number
  /**
   * Bytes of events held for streams: the shared backlog window plus what each stream's socket
   * buffer holds. At most `maxBacklogBytes` + streams x (socket high-water mark + largest event).
   */
  bufferedBytes(): number
  /** Ends every stream (server stop). */
  closeAll(): void
}

/** Options of `createEventHub`. */
export interface EventHubOptions {
  backend: RpcBackend
  logger: Logger
  /** Most open streams. */
  maxSubscribers: number
  /** How far (bytes of events) a stream may fall behind the newest event before it is dropped. */
  maxBacklogBytes: number
  /** Comment line every this many ms to keep proxies from timing out; 0 disables it. */
  heartbeatMs: number
  /** Serialises an event's data to one line of JSON; called once per event. Tests count calls. */
  encodeEvent?: (event: RpcEvent) => string
}

const EVENT_TYPES = new Set(['block', 'event'])

/** One serialised event: hub sequence number, the shared `event:`/`data:` bytes, its byte offset. */
interface Encoded {
  seq: number
  chunk: Buffer
  /** Bytes of all events before this one (the hub's running total). */
  start: number
}

interface Stream {
  res: ServerResponse
  /** Hub seq of the next event to write. */
  next: number
  /** Hub seq before this stream's first event: ids count from 1 on each connection. */
  base: number
  /** Waiting for 'drain': the socket holds what it can. */
  blocked: boolean
  closed: boolean
}

const defaultEncode = (event: RpcEvent): string => JSON.stringify(jsonForm(event.data)) ?? 'null'

/**
 * Builds the hub. Each stream gets, in the order the backend emits them: `id: n` (per connection),
 * `event: block|event`, `data: <one line of JSON>`.
 */
export function createEventHub(opts: EventHubOptions): EventHub {
  const { logger } = opts
  const encode = opts.encodeEvent ?? defaultEncode
  const streams = new Set<Stream>()
  // Events some stream may still need, oldest first; `queue[i].seq === firstSeq + i`.
  let queue: Encoded[] = []
  let firstSeq = 1
  let seq = 0
  let total = 0
  let unsubscribe: (() => void) | undefined
  let heartbeat: NodeJS.Timeout | undefined

  const drop = (s: Stream, why: string): void => {
    if (s.closed) return
    s.closed = true
    streams.delete(s)
    logger.warn({ why, behindBytes: behind(s) }, 'event stream client too slow, disconnecting')
    s.res.destroy()
    idle()
  }

  const behind = (s: Stream): number => {
    if (s.next > seq) return 0
    const e = queue[s.next - firstSeq]
    return e ? total - e.start : total
  }

  /** Writes what the socket takes; stops at the first write that fills it and resumes on drain. */
  const pump = (s: Stream): void => {
    while (!s.closed && !s.blocked && s.next <= seq) {
      const e = queue[s.next - firstSeq]
      if (!e) return drop(s, 'backlog')
      s.next++
      // No res.cork(): a corked response reports "full" without ever emitting 'drain'.
      s.res.write(`id: ${e.seq - s.base}\n`)
      const ok = s.res.write(e.chunk)
      if (!ok) {
        s.blocked = true
        s.res.once('drain', () => {
          s.blocked = false
          pump(s)
        })
      }
    }
  }

  const onEvent = (event: RpcEvent): void => {
    if (!EVENT_TYPES.has(event.type)) {
      logger.error({ type: event.type }, 'backend emitted an event of unknown type; dropped')
      return
    }
    let data: string
    try {
      data = encode(event)
    } catch (err) {
      logger.error({ err }, 'backend event has no JSON form; dropped')
      return
    }
    const chunk = Buffer.from(`event: ${event.type}\ndata: ${data}\n\n`)
    seq++
    queue.push({ seq, chunk, start: total })
    total += chunk.length
    for (const s of [...streams]) {
      if (!s.blocked) pump(s)
      else if (behind(s) > opts.maxBacklogBytes) drop(s, 'backlog')
    }
    // Events no stream within the backlog bound can need any more.
    let cut = 0
    while (cut < queue.length - 1 && total - queue[cut]!.start > opts.maxBacklogBytes) cut++
    if (cut > 0) {
      queue = queue.slice(cut)
      firstSeq += cut
    }
  }

  /** The backend subscription and the heartbeat live only while some stream is open. */
  const idle = (): void => {
    if (streams.size > 0) return
    unsubscribe?.()
    unsubscribe = undefined
    if (heartbeat) clearInterval(heartbeat)
    heartbeat = undefined
    queue = []
    firstSeq = seq + 1
  }

  const close = (s: Stream): void => {
    if (s.closed) return
    s.closed = true
    streams.delete(s)
    // A stream whose socket is full would never finish ending: close its connection instead.
    if (s.blocked) s.res.destroy()
    else if (!s.res.writableEnded) s.res.end()
    idle()
  }

  return {
    full: () => streams.size >= opts.maxSubscribers,
    size: () => streams.size,
    bufferedBytes() {
      let n = queue.length > 0 ? total - queue[0]!.start : 0
      for (const s of streams) n += s.res.writableLength
      return n
    },
    open(res) {
      const s: Stream = { res, next: seq + 1, base: seq, blocked: false, closed: false }
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      })
      res.flushHeaders()
      // The response's close, not the request's: a GET's request stream closes as soon as it is read.
      res.on('close', () => close(s))
      res.on('error', () => close(s))
      if (res.destroyed) return
      streams.add(s)
      unsubscribe ??= opts.backend.subscribe(onEvent)
      if (opts.heartbeatMs > 0 && !heartbeat) {
        heartbeat = setInterval(() => {
          for (const x of streams) if (!x.blocked) x.res.write(': heartbeat\n\n')
        }, opts.heartbeatMs)
        heartbeat.unref()
      }
      // Tells the client the subscription exists before any event can be missed.
      res.write(': subscribed\n\n')
    },
    closeAll() {
      for (const s of [...streams]) close(s)
    },
  }
}
