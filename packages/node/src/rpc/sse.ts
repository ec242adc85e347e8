import type { ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import type { RpcBackend, RpcEvent } from './backend.ts'
import { jsonForm } from './params.ts'

/** One open `GET /v1/events` stream. */
export interface EventStream {
  /** Ends the stream and unsubscribes; safe to call twice. */
  close(): void
}

export interface EventStreamOptions {
  backend: RpcBackend
  logger: Logger
  /** Comment line every this many ms to keep proxies from timing out; 0 disables it. */
  heartbeatMs: number
  /** A client that lets more than this many bytes pile up unread is disconnected (it may reconnect). */
  maxBufferedBytes: number
  /** Called once the stream is closed, whoever closed it. */
  onClose: () => void
}

const EVENT_TYPES = new Set(['block', 'event'])

/**
 * Turns a hijacked response into a Server-Sent Events stream of the backend's events, in the order
 * the backend emits them: `id: n`, `event: block|event`, `data: <one line of JSON>`. The subscription
 * lives exactly as long as the connection.
 */
export function openEventStream(res: ServerResponse, opts: EventStreamOptions): EventStream {
  const { logger } = opts
  let closed = false
  let seq = 0
  let heartbeat: NodeJS.Timeout | undefined
  let unsubscribe: (() => void) | undefined

  const close = (): void => {
    if (closed) return
    closed = true
    if (heartbeat) clearInterval(heartbeat)
    unsubscribe?.()
    if (!res.writableEnded) res.end()
    opts.onClose()
  }

  const write = (chunk: string): void => {
    if (closed) return
    res.write(chunk)
    if (res.writableLength > opts.maxBufferedBytes) {
      logger.warn({ buffered: res.writableLength }, 'event stream client too slow, disconnecting')
      closed = true
      if (heartbeat) clearInterval(heartbeat)
      unsubscribe?.()
      res.destroy()
      opts.onClose()
    }
  }

  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  })
  res.flushHeaders()
  // Tells the client the subscription exists before any event can be missed.
  res.write(': subscribed\n\n')

  // The response's close, not the request's: a GET's request stream closes as soon as it is read.
  res.on('close', close)
  res.on('error', close)

  unsubscribe = opts.backend.subscribe((event: RpcEvent) => {
    if (closed) return
    if (!EVENT_TYPES.has(event.type)) {
      logger.error({ type: event.type }, 'backend emitted an event of unknown type; dropped')
      return
    }
    let data: string
    try {
      data = JSON.stringify(jsonForm(event.data)) ?? 'null'
    } catch (err) {
      logger.error({ err }, 'backend event has no JSON form; dropped')
      return
    }
    seq++
    write(`id: ${seq}\nevent: ${event.type}\ndata: ${data}\n\n`)
  })
  if (closed) unsubscribe()

  if (opts.heartbeatMs > 0 && !closed) {
    heartbeat = setInterval(() => write(': heartbeat\n\n'), opts.heartbeatMs)
    heartbeat.unref()
  }
  return { close }
}
