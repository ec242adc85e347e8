import { SERVICE_RE } from '@cityledger/core'
import { rpcError } from './errors.ts'
import { PARAM_ERRORS, parseHeight } from './params.ts'
import type { EventFilter, EventPosition } from './sse.ts'

/** What a `GET /v1/events` request asks for: where to resume and which messages to send. */
export interface EventsRequest {
  /** Resume after this position (replaying stored blocks); absent: live messages only. */
  after?: EventPosition
  filter: EventFilter
}

const ID_RE = /^(0|[1-9][0-9]{0,15})(?:\/(0|[1-9][0-9]{0,8}))?$/
const EVENT_TYPE_RE = /^[A-Za-z0-9_.:-]{1,128}$/
const MAX_LIST = 32

/**
 * Reads the resume point and the filters of an event stream request. `Last-Event-ID` (the header an
 * EventSource sends when it reconnects) wins over `fromHeight`, since a reconnect repeats the URL it
 * first opened. Bad values are BAD_REQUEST naming the parameter.
 */
export function parseEventsRequest(query: unknown, lastEventId: unknown): EventsRequest {
  const q = (query ?? {}) as Record<string, unknown>
  for (const k of Object.keys(q))
    if (!['fromHeight', 'types', 'service', 'eventType'].includes(k))
      throw rpcError('BAD_REQUEST', `unknown parameter ${JSON.stringify(k.slice(0, 64))}`)
  const filter: EventFilter = {}
  const types = list(q.types, 'types', (v) => v === 'block' || v === 'event')
  if (types) filter.types = types
  const services = list(q.service, 'service', (v) => SERVICE_RE.test(v))
  if (services) filter.services = services
  const eventTypes = list(q.eventType, 'eventType', (v) => EVENT_TYPE_RE.test(v))
  if (eventTypes) filter.eventTypes = eventTypes

  if (lastEventId !== undefined && lastEventId !== '') {
    const m = typeof lastEventId === 'string' ? ID_RE.exec(lastEventId) : null
    if (!m) throw rpcError('BAD_REQUEST', `Last-Event-ID: ${PARAM_ERRORS.lastEventId}`)
    const height = Number(m[1])
    if (!Number.isSafeInteger(height)) throw rpcError('BAD_REQUEST', 'Last-Event-ID: height out of range')
    return { after: { height, index: m[2] === undefined ? -1 : Number(m[2]) }, filter }
  }
  if (q.fromHeight !== undefined) {
    const h = parseHeight(q.fromHeight, 'fromHeight')
    // Everything of block h onward: after the last possible position of block h - 1.
    return { after: { height: Math.max(0, h - 1), index: Number.POSITIVE_INFINITY }, filter }
  }
  return { filter }
}

/** The first height a resume from `after` reads from the store. */
export function firstReplayHeight(after: EventPosition): number {
  return Math.max(1, after.index === Number.POSITIVE_INFINITY ? after.height + 1 : after.height)
}

function list(value: unknown, field: string, ok: (v: string) => boolean): Set<string> | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string') throw rpcError('BAD_REQUEST', `${field}: given more than once`)
  const items = value.split(',')
  if (items.length > MAX_LIST) throw rpcError('BAD_REQUEST', `${field}: more than ${MAX_LIST} values`)
  for (const v of items)
    if (!ok(v)) throw rpcError('BAD_REQUEST', `${field}: invalid value ${JSON.stringify(v.slice(0, 64))}`)
  return new Set(items)
}
