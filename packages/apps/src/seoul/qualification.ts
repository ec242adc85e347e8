import {
  method,
  query,
  type TxContext,
  type Value,
  ServiceError,
  defineService,
  ensure,
  equalBytes,
  s,
} from '@cityledger/core'
import { hex, refuseRevokedSigners } from '../base/common.ts'

/**
 * Seoul service 2: paperless qualification checks.
 *
 * An agency (identity role ('qualification','requester')) asks whether a subject satisfies a predicate
 * ('income-below-threshold', 'resident-of-seoul', 'no-tax-arrears', ...) under a consent grant the
 * subject gave it for purpose `qualification:<predicate>`. The request is logged in the subject's
 * consent access log (consent.recordAccess). An agency holding ('qualification','answerer:<predicate>')
 * answers once: only the yes/no result and a hash of its evidence reference go on chain. It may decline
 * instead (no data), which also closes the request. The grant must still be active when the answer
 * lands: a subject who revokes consent stops the check.
 *
 * The subject is the grant's subject: the request names the grant, and the consent service binds it to
 * the subject's pseudonymous key (queries resolve it through consent's `grant` query). The service never
 * sees or stores personal data, not even the predicate's inputs; `params` is an optional commitment to
 * the check's parameters (e.g. the threshold table version).
 *
 * Invariants (test/seoul-qualification.test.ts checks them over random tx sequences):
 *   - at most one answer (or decline) per request; an answered request never changes again;
 *   - an answer comes from a key holding the predicate's answerer role (and the named answerer, if any);
 *   - every request was made under a grant active at its height for that requester and purpose.
 *
 * State (namespace `qualification/`):
 *   config                -> { requestTtl }
 *   pred/<predicate>      -> {@link PredicateRecord}
 *   req/<requestIdHex>    -> {@link RequestRecord}
 *   stats                 -> { requests, answered, declined, cancelled }
 */

/** Error codes of qualification (besides the runtime's UNAUTHORIZED and BAD_ARGS, and consent's grant codes). */
export type QualificationErrorCode =
  | 'UNAUTHORIZED'
  | 'ALREADY_EXISTS'
  | 'NOT_FOUND'
  | 'UNKNOWN_PREDICATE'
  | 'PREDICATE_RETIRED'
  | 'ALREADY_ANSWERED'
  | 'REQUEST_EXPIRED'
  | 'NOT_ANSWERER'
  | 'BAD_GENESIS'
  // From consent, when the grant does not cover the request:
  | 'NO_SUCH_GRANT'
  | 'NOT_GRANTEE'
  | 'PURPOSE_MISMATCH'
  | 'GRANT_INACTIVE'

/** Predicates a devnet starts with. */
export const DEFAULT_PREDICATES = ['income-below-threshold', 'resident-of-seoul', 'no-tax-arrears'] as const
/** Blocks a request stays answerable when the genesis does not say. */
export const DEFAULT_REQUEST_TTL = 1000

/** A predicate the city accepts. `validityBlocks` (0 = no limit) is how long a yes/no stays fresh. */
export interface PredicateRecord {
  [k: string]: Value
  predicate: string
  validityBlocks: number
  active: boolean
  height: number
}

export type RequestStatus = 'pending' | 'answered' | 'declined' | 'cancelled'

/** A request and, once answered, its answer. */
export interface RequestRecord {
  [k: string]: Value
  requestId: Uint8Array
  requester: Uint8Array
  predicate: string
  grantId: Uint8Array
  answerer: Uint8Array | null
  params: Uint8Array | null
  status: RequestStatus
  createdAt: number
  expiresAt: number
  /** The subject's consent-log entry for this request. */
  accessIndex: number
  result: boolean | null
  evidence: Uint8Array | null
  declineReason: string | null
  answeredBy: Uint8Array | null
  answeredAt: number | null
}

interface Stats {
  [k: string]: Value
  requests: number
  answered: number
  declined: number
  cancelled: number
}

const SCOPE = 'qualification'
const PREDICATE_RE = /^[a-z0-9][a-z0-9-]*$/
const predicate = s.string({ min: 1, max: 48, pattern: PREDICATE_RE })
const predKey = (p: string) => `pred/${p}`
const reqKey = (id: Uint8Array) => `req/${hex(id)}`

/** The consent purpose a subject grants to let an agency check `p`. */
export const purposeOf = (p: string): string => `qualification:${p}`
/** The identity role (scope 'qualification') that may answer `p`. */
export const answererRole = (p: string): string => `answerer:${p}`

function hasRole(ctx: TxContext, role: string): boolean {
  return ctx.call<boolean>('identity', 'hasRole', { scope: SCOPE, role, key: ctx.signer }) === true
}

function bump(ctx: TxContext, field: 'requests' | 'answered' | 'declined' | 'cancelled'): void {
  const st: Stats = ctx.state.get<Stats>('stats') ?? { requests: 0, answered: 0, declined: 0, cancelled: 0 }
  ctx.state.set('stats', { ...st, [field]: st[field] + 1 })
}

/** A pending request the signer may answer now. */
function answerable(ctx: TxContext, requestId: Uint8Array): RequestRecord {
  const r = ctx.state.get<RequestRecord>(reqKey(requestId))
  ensure(r, 'NOT_FOUND', 'no such request')
  ensure(r.status === 'pending', 'ALREADY_ANSWERED', `request is ${r.status}`)
  ensure(ctx.height < r.expiresAt, 'REQUEST_EXPIRED', `request expired at height ${r.expiresAt}`)
  if (!hasRole(ctx, answererRole(r.predicate))) {
    throw new ServiceError(
      'UNAUTHORIZED',
      `signer does not hold (qualification, ${answererRole(r.predicate)})`,
    )
  }
  ensure(
    r.answerer === null || equalBytes(r.answerer, ctx.signer),
    'NOT_ANSWERER',
    'the request names another answerer',
  )
  // The subject may have withdrawn consent since the request: then nothing about them is answered.
  ctx.call('consent', 'requireActive', {
    grantId: r.grantId,
    grantee: r.requester,
    purpose: purposeOf(r.predicate),
  })
  return { ...r }
}

/** Adds 'qualification:<p>' to consent's purpose table (subjects grant consent for that code). */
function definePurpose(ctx: { call: TxContext['call'] }, p: string): void {
  if (ctx.call<boolean>('consent', 'hasPurpose', { code: purposeOf(p) }) !== true)
    ctx.call('consent', 'definePurpose', { code: purposeOf(p) })
}

function parseGenesis(config: Value | undefined): {
  requestTtl: number
  predicates: { predicate: string; validityBlocks: number }[]
} {
  const cfg = (config ?? {}) as Record<string, Value>
  const bad = (msg: string): never => {
    throw new ServiceError('BAD_GENESIS', `qualification genesis: ${msg}`)
  }
  if (typeof cfg !== 'object' || Array.isArray(cfg) || cfg instanceof Uint8Array) bad('expected a map')
  const ttl = cfg.requestTtl ?? DEFAULT_REQUEST_TTL
  if (typeof ttl !== 'number' || !Number.isSafeInteger(ttl) || ttl < 1)
    bad('requestTtl must be an integer >= 1')
  const list = cfg.predicates ?? DEFAULT_PREDICATES.map((p) => ({ predicate: p, validityBlocks: 0 }))
  if (!Array.isArray(list)) bad('predicates must be a list')
  const predicates = (list as Value[]).map((x, i) => {
    const p = typeof x === 'string' ? { predicate: x, validityBlocks: 0 } : (x as Record<string, Value>)
    const name = p?.predicate
    const v = p?.validityBlocks ?? 0
    if (typeof name !== 'string' || name.length > 48 || !PREDICATE_RE.test(name))
      bad(`predicates[${i}]: bad name`)
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
      bad(`predicates[${i}].validityBlocks must be an integer >= 0`)
    return { predicate: name as string, validityBlocks: v as number }
  })
  return { requestTtl: ttl as number, predicates }
}

export const qualification = refuseRevokedSigners(
  defineService({
    name: 'qualification',
    version: '1.0.0',
    dependencies: ['identity', 'consent'],
    genesis(ctx, config) {
      const cfg = parseGenesis(config)
      ctx.state.set('config', { requestTtl: cfg.requestTtl })
      ctx.state.set('stats', { requests: 0, answered: 0, declined: 0, cancelled: 0 })
      for (const p of cfg.predicates) {
        definePurpose(ctx, p.predicate)
        ctx.state.set(predKey(p.predicate), {
          predicate: p.predicate,
          validityBlocks: p.validityBlocks,
          active: true,
          height: 0,
        })
      }
    },
    methods: {
      definePredicate: method({
        doc: "Add a predicate, or change its validity or retire it. Role ('qualification','admin').",
        args: s.object({ predicate, validityBlocks: s.uint(), active: s.optional(s.bool()) }),
        auth: (ctx) => hasRole(ctx, 'admin'),
        handler(ctx, a) {
          if (!ctx.state.has(predKey(a.predicate))) definePurpose(ctx, a.predicate)
          const rec: PredicateRecord = {
            predicate: a.predicate,
            validityBlocks: a.validityBlocks,
            active: a.active ?? true,
            height: ctx.height,
          }
          ctx.state.set(predKey(a.predicate), rec)
          ctx.emit('predicateDefined', rec)
        },
      }),
      request: method({
        doc: "Ask for a yes/no on a predicate about the subject of `grantId` (granted to the signer for 'qualification:<predicate>'). Role ('qualification','requester').",
        args: s.object({
          requestId: s.hash(),
          predicate,
          grantId: s.hash(),
          answerer: s.optional(s.key()),
          params: s.optional(s.hash()),
        }),
        auth: (ctx) => hasRole(ctx, 'requester'),
        handler(ctx, a) {
          ensure(!ctx.state.has(reqKey(a.requestId)), 'ALREADY_EXISTS', 'requestId already used')
          const p = ctx.state.get<PredicateRecord>(predKey(a.predicate))
          ensure(p, 'UNKNOWN_PREDICATE', `no predicate ${a.predicate}`)
          ensure(p.active, 'PREDICATE_RETIRED', `predicate ${a.predicate} is retired`)
          // Checks the grant (grantee = signer, purpose, active now) and logs the access for the subject.
          const accessIndex = ctx.call<number>('consent', 'recordAccess', {
            grantId: a.grantId,
            grantee: ctx.signer,
            purpose: purposeOf(a.predicate),
          })
          const ttl = ctx.state.get<{ requestTtl: number }>('config')?.requestTtl ?? DEFAULT_REQUEST_TTL
          const r: RequestRecord = {
            requestId: a.requestId,
            requester: ctx.signer,
            predicate: a.predicate,
            grantId: a.grantId,
            answerer: a.answerer ?? null,
            params: a.params ?? null,
            status: 'pending',
            createdAt: ctx.height,
            expiresAt: ctx.height + ttl,
            accessIndex,
            result: null,
            evidence: null,
            declineReason: null,
            answeredBy: null,
            answeredAt: null,
          }
          ctx.state.set(reqKey(a.requestId), r)
          bump(ctx, 'requests')
          ctx.emit('requested', {
            requestId: a.requestId,
            predicate: a.predicate,
            requester: ctx.signer,
            answerer: r.answerer,
            expiresAt: r.expiresAt,
          })
        },
      }),
      answer: method({
        doc: "Answer a pending request once: the result and a hash of the evidence reference. Role ('qualification','answerer:<predicate>'), and the named answerer if any; the grant must still be active.",
        args: s.object({ requestId: s.hash(), result: s.bool(), evidence: s.hash() }),
        handler(ctx, a) {
          const r = answerable(ctx, a.requestId)
          ctx.state.set(reqKey(a.requestId), {
            ...r,
            status: 'answered',
            result: a.result,
            evidence: a.evidence,
            answeredBy: ctx.signer,
            answeredAt: ctx.height,
          })
          bump(ctx, 'answered')
          ctx.emit('answered', {
            requestId: a.requestId,
            predicate: r.predicate,
            result: a.result,
            evidence: a.evidence,
            answerer: ctx.signer,
          })
        },
      }),
      decline: method({
        doc: 'Close a pending request without a result (no data, out of scope). Same callers as `answer`.',
        args: s.object({ requestId: s.hash(), reason: s.literal('no-data', 'not-applicable', 'other') }),
        handler(ctx, a) {
          const r = answerable(ctx, a.requestId)
          ctx.state.set(reqKey(a.requestId), {
            ...r,
            status: 'declined',
            declineReason: a.reason,
            answeredBy: ctx.signer,
            answeredAt: ctx.height,
          })
          bump(ctx, 'declined')
          ctx.emit('declined', { requestId: a.requestId, reason: a.reason, answerer: ctx.signer })
        },
      }),
      cancel: method({
        doc: 'Withdraw a pending request. Its requester.',
        args: s.object({ requestId: s.hash() }),
        handler(ctx, a) {
          const r = ctx.state.get<RequestRecord>(reqKey(a.requestId))
          ensure(r, 'NOT_FOUND', 'no such request')
          if (!equalBytes(r.requester, ctx.signer))
            throw new ServiceError('UNAUTHORIZED', 'only the requester cancels')
          ensure(r.status === 'pending', 'ALREADY_ANSWERED', `request is ${r.status}`)
          ctx.state.set(reqKey(a.requestId), { ...r, status: 'cancelled' })
          bump(ctx, 'cancelled')
          ctx.emit('cancelled', { requestId: a.requestId })
        },
      }),
    },
    queries: {
      request: query({
        doc: "A request record plus `subject` (the grant's subject key, from consent), or null.",
        args: s.object({ requestId: s.hash() }),
        handler(q, a) {
          const r = q.state.get<RequestRecord>(reqKey(a.requestId))
          if (!r) return null
          const g = q.query<{ subject?: Value } | null>('consent', 'grant', { grantId: r.grantId })
          return { ...r, subject: g?.subject ?? null }
        },
      }),
      attestation: query({
        doc: 'The yes/no of an answered request: { predicate, result, answeredAt, validUntil (0 = no limit), fresh } or null.',
        args: s.object({ requestId: s.hash() }),
        handler(q, a) {
          const r = q.state.get<RequestRecord>(reqKey(a.requestId))
          if (!r || r.status !== 'answered') return null
          const p = q.state.get<PredicateRecord>(predKey(r.predicate))
          const validity = p?.validityBlocks ?? 0
          const validUntil = validity === 0 ? 0 : r.answeredAt! + validity
          return {
            predicate: r.predicate,
            result: r.result,
            evidence: r.evidence,
            answeredBy: r.answeredBy,
            answeredAt: r.answeredAt,
            validUntil,
            fresh: validUntil === 0 || q.height < validUntil,
          }
        },
      }),
      predicate: query({
        doc: 'A predicate record, or null.',
        args: s.object({ predicate }),
        handler: (q, a) => q.state.get(predKey(a.predicate)) ?? null,
      }),
      stats: query({
        doc: 'Counts of requests, answered, declined, cancelled.',
        args: s.object({}),
        handler: (q) => q.state.get('stats') ?? { requests: 0, answered: 0, declined: 0, cancelled: 0 },
      }),
    },
  }),
)
