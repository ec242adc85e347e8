import type { ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import type { RpcBackend, RpcEvent } from './backend.ts'
import { firstReplayHeight } from './eventParams.ts'
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
  /**
   * Turns a hijacked response into an event stream; the hub owns it from then on. With `after` the
   * stream first replays, from the backend's store, every message after that position, then goes on
   * with live messages without a gap or a repeat; messages `filter` rejects are never written.
   */
  open(res: ServerResponse, opts?: { after?: EventPosition; filter?: EventFilter }): void
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

/**
 * Where a message sits in the chain: a block's message is `{ height, index: -1 }`, its service events
 * follow at `index` 0, 1, ... Ordered by height, then index.
 */
export interface EventPosition {
  height: number
  index: number
}

/** Which messages a stream wants; an absent field lets everything through. */
export interface EventFilter {
  /** SSE message types: `block`, `event`. */
  types?: ReadonlySet<string>
  /** `event` messages of these services only. */
  services?: ReadonlySet<string>
  /** `event` messages of these service event types only (the `type` field, e.g. `transfer.done`). */
  eventTypes?: ReadonlySet<string>
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

/** One serialised message: hub sequence number, its whole `id:`/`event:`/`data:` bytes, its offset. */
interface Encoded {
  seq: number
  chunk: Buffer
  /** Bytes of all events before this one (the hub's running total). */
  start: number
  type: string
  pos: EventPosition
  /** `event` messages: the service and the service event type, for filters. */
  service?: string
  eventType?: string
}

interface Stream {
  res: ServerResponse
  /** Hub seq of the next event to write. */
  next: number
  /** Waiting for 'drain': the socket holds what it can. */
  blocked: boolean
  /** Replaying stored blocks: live events wait in the hub's queue meanwhile. */
  replaying: boolean
  closed: boolean
  /** The last message this stream has had (written or filtered out); only later ones are written. */
  after?: EventPosition
  filter: EventFilter
}

const defaultEncode = (event: RpcEvent): string => JSON.stringify(jsonForm(event.data)) ?? 'null'

/** True when `a` comes after `b` in the chain. */
export function isAfter(a: EventPosition, b: EventPosition): boolean {
  return a.height > b.height || (a.height === b.height && a.index > b.index)
}

/** The SSE id of a message at `pos`: `<height>` for a block, `<height>/<index>` for an event. */
export function eventId(pos: EventPosition): string {
  return pos.index < 0 ? String(pos.height) : `${pos.height}/${pos.index}`
}

const passes = (f: EventFilter, e: Encoded): boolean =>
  (!f.types || f.types.has(e.type)) &&
  (e.type !== 'event' ||
    ((!f.services || (e.service !== undefined && f.services.has(e.service))) &&
      (!f.eventTypes || (e.eventType !== undefined && f.eventTypes.has(e.eventType)))))

/**
 * Builds the hub. Each stream gets, in commit order: `id: <height>` or `id: <height>/<index>`,
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

  /** Whether `s` takes `e`; moves its position past `e` either way. */
  const wants = (s: Stream, e: Encoded): boolean => {
    if (s.after && !isAfter(e.pos, s.after)) return false
    s.after = e.pos
    return passes(s.filter, e)
  }

  /** Writes what the socket takes; stops at the first write that fills it and resumes on drain. */
  const pump = (s: Stream): void => {
    while (!s.closed && !s.blocked && !s.replaying && s.next <= seq) {
      const e = queue[s.next - firstSeq]
      if (!e) return drop(s, 'backlog')
      s.next++
      if (!wants(s, e)) continue
      // No res.cork(): a corked response reports "full" without ever emitting 'drain'.
      if (!s.res.write(e.chunk)) {
        s.blocked = true
        s.res.once('drain', () => {
          s.blocked = false
          pump(s)
        })
      }
    }
  }

  /** The wire form of one backend event, or undefined (logged) when it cannot be carried. */
  const toWire = (event: RpcEvent, at: number): Omit<Encoded, 'start'> | undefined => {
    if (!EVENT_TYPES.has(event.type)) {
      logger.error({ type: event.type }, 'backend emitted an event of unknown type; dropped')
      return undefined
    }
    const index = event.type === 'block' ? -1 : event.index
    if (
      !Number.isSafeInteger(event.height) ||
      event.height < 0 ||
      !Number.isSafeInteger(index) ||
      (event.type === 'event' && index! < 0)
    ) {
      logger.error({ type: event.type, height: event.height }, 'backend event has no valid position; dropped')
      return undefined
    }
    let data: string
    try {
      data = encode(event)
    } catch (err) {
      logger.error({ err }, 'backend event has no JSON form; dropped')
      return undefined
    }
    const pos = { height: event.height, index: index! }
    const chunk = Buffer.from(`id: ${eventId(pos)}\nevent: ${event.type}\ndata: ${data}\n\n`)
    const d = event.data as { service?: unknown; type?: unknown } | null
    const named = event.type === 'event' && typeof d === 'object' && d !== null
    return {
      seq: at,
      chunk,
      type: event.type,
      pos,
      ...(named && typeof d.service === 'string' ? { service: d.service } : {}),
      ...(named && typeof d.type === 'string' ? { eventType: d.type } : {}),
    }
  }

  const onEvent = (event: RpcEvent): void => {
    const w = toWire(event, seq + 1)
    if (!w) return
    seq++
    queue.push({ ...w, start: total })
    total += w.chunk.length
    for (const s of [...streams]) {
      if (!s.blocked && !s.replaying) pump(s)
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

  /** Resolves once the socket takes more, or the stream is gone. */
  const drained = (s: Stream): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        s.res.off('drain', done)
        s.res.off('close', done)
        resolve()
      }
      s.res.once('drain', done)
      s.res.once('close', done)
    })

  /**
   * Writes the stored messages after `s.after`, block by block, until the live queue holds what
   * comes next. The stream subscribed before the first read, so a block that is not stored yet
   * reaches it live; a stored block that also arrived live is written once (`wants` skips repeats).
   */
  const replay = async (s: Stream): Promise<void> => {
    for (let h = firstReplayHeight(s.after!); ; h++) {
      const live = queue[s.next - firstSeq]
      if (s.closed || (live && live.pos.height < h)) break
      const events = await opts.backend.eventsAt(h)
      if (!events) break
      for (const event of events) {
        if (s.closed) return
        const w = toWire(event, 0)
        if (!w || !wants(s, { ...w, start: 0 })) continue
        if (!s.res.write(w.chunk)) {
          // Marked blocked meanwhile, so that closing it destroys rather than waits on a full socket.
          s.blocked = true
          await drained(s)
          s.blocked = false
        }
      }
    }
    s.replaying = false
    pump(s)
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
    open(res, o = {}) {
      const s: Stream = {
        res,
        next: seq + 1,
        blocked: false,
        replaying: o.after !== undefined,
        closed: false,
        filter: o.filter ?? {},
        ...(o.after ? { after: o.after } : {}),
      }
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
          for (const x of streams) if (!x.blocked && !x.replaying) x.res.write(': heartbeat\n\n')
        }, opts.heartbeatMs)
        heartbeat.unref()
      }
      // Tells the client the subscription exists before any event can be missed.
      res.write(': subscribed\n\n')
      if (s.replaying)
        replay(s).catch((err) => {
          logger.warn({ err: String(err) }, 'event stream replay failed; closing the stream')
          if (!s.closed) {
            s.closed = true
            streams.delete(s)
            s.res.destroy()
            idle()
          }
        })
    },
    closeAll() {
      for (const s of [...streams]) close(s)
    },
  }
}
