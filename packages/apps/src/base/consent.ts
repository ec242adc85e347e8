import {
  type Infer,
  type QueryContext,
  type ReadonlyStateView,
  type StateView,
  type TxContext,
  type Value,
  ServiceError,
  defineService,
  ensure,
  equalBytes,
  s,
} from '@cityledger/core'
import { add, hex, parse, refuseRevokedSigners, signerHas } from './common.ts'

/**
 * consent: grants (subject, grantee, purpose, expiry) signed by the subject's pseudonymous key, and a
 * per-subject access log in which every entry either points to a grant active at the entry's height
 * or is flagged as emergency access by a key holding an emergency role.
 *
 * Heights: a grant is active at heights h with grantedAt <= h < expiry, while its subject's key is not
 * revoked in identity, and, once revoked, h < revokedFrom
 * (revocation takes effect at the next height, so a block never sees a grant change under it).
 *
 * Purposes are codes from a fixed table, never free text (a purpose written by hand can itself be
 * personal data: "HIV test follow-up"). The table starts from genesis (`purposes`, default
 * {@link DEFAULT_PURPOSES}); the consent admin adds plain codes, and a service adds codes under its own
 * name (`qualification:<predicate>`) through the `definePurpose` export.
 *
 * State layout:
 *   purpose/<code>            -> { by, height }        the purpose table
 *   grant/<grantIdHex>        -> GrantRecord
 *   log/<subjectHex>/n        -> number of entries
 *   log/<subjectHex>/<i>      -> AccessEntry (i = 0..n-1; one key per entry, no list grows)
 */

/** Error codes of consent. */
export type ConsentErrorCode =
  | 'UNAUTHORIZED'
  | 'BAD_ARGS'
  | 'GRANT_EXISTS'
  | 'NO_SUCH_GRANT'
  | 'BAD_EXPIRY'
  | 'ALREADY_REVOKED'
  | 'NOT_GRANTEE'
  | 'PURPOSE_MISMATCH'
  | 'GRANT_INACTIVE'
  | 'UNKNOWN_PURPOSE'
  | 'PURPOSE_EXISTS'
  | 'BAD_GENESIS'

/** A stored grant. */
export interface GrantRecord {
  grantId: Uint8Array
  subject: Uint8Array
  grantee: Uint8Array
  purpose: string
  expiry: number
  grantedAt: number
  revokedFrom: number | null
}

/** One access-log entry. `grantId` is null exactly for emergency entries. */
export interface AccessEntry {
  height: number
  grantId: Uint8Array | null
  grantee: Uint8Array
  purpose: string
  emergency: boolean
  reason: Uint8Array | null
  /** 'consent' for the methods, or the service that recorded it through an export. */
  via: string
}

type View = ReadonlyStateView | StateView
type Rec = Record<string, Value>

export const MAX_LOG_PAGE = 256

/** A purpose code: lowercase words and dashes, or `<service>:<code>` for codes a service defines. */
export const PURPOSE_RE = /^[a-z0-9][a-z0-9-]*(:[a-z0-9][a-z0-9-]*)?$/
/** The purpose table of a new chain when its genesis names none. */
export const DEFAULT_PURPOSES = [
  'health-care',
  'emergency-care',
  'welfare-review',
  'research',
  'employment',
  'housing',
  'education',
  'tax',
] as const

const purpose = s.string({ min: 1, max: 64, pattern: PURPOSE_RE })
const args = {
  definePurpose: s.object({ code: purpose }),
  grant: s.object({ grantId: s.hash(), grantee: s.key(), purpose, expiry: s.uint({ min: 1 }) }),
  grantId: s.object({ grantId: s.hash() }),
  logAccess: s.object({ grantId: s.hash(), purpose }),
  emergencyAccess: s.object({ subject: s.key(), purpose, reason: s.hash() }),
  check: s.object({ grantId: s.hash(), grantee: s.key(), purpose }),
  xemergency: s.object({ subject: s.key(), grantee: s.key(), purpose, reason: s.hash() }),
  accessLog: s.object({
    subject: s.key(),
    from: s.optional(s.uint()),
    limit: s.optional(s.uint({ min: 1, max: MAX_LOG_PAGE })),
  }),
  subject: s.object({ subject: s.key() }),
}

function requirePurpose(state: View, code: string): void {
  ensure(state.has(`purpose/${code}`), 'UNKNOWN_PURPOSE', `purpose ${code} is not in the purpose table`)
}

function putPurpose(state: StateView, code: string, by: Value, height: number): void {
  ensure(!state.has(`purpose/${code}`), 'PURPOSE_EXISTS', `purpose ${code} exists`)
  state.set(`purpose/${code}`, { by, height })
}

function getGrant(state: View, grantId: Uint8Array): GrantRecord | undefined {
  return state.get<Rec>(`grant/${hex(grantId)}`) as GrantRecord | undefined
}

/** True when the grant is in force at `height`. */
export function grantActiveAt(g: GrantRecord, height: number): boolean {
  return g.grantedAt <= height && height < g.expiry && (g.revokedFrom === null || height < g.revokedFrom)
}

/** Why (grantId, grantee, purpose) may not access at `height`, or null when it may. */
function refusal(ctx: TxContext, grantId: Uint8Array, grantee: Uint8Array, p: string): ServiceError | null {
  const { state, height } = ctx
  const g = getGrant(state, grantId)
  if (!g) return new ServiceError('NO_SUCH_GRANT', 'no such grant')
  if (!equalBytes(g.grantee, grantee))
    return new ServiceError('NOT_GRANTEE', 'the grant names another grantee')
  if (g.purpose !== p) return new ServiceError('PURPOSE_MISMATCH', `the grant is for ${g.purpose}`)
  if (!grantActiveAt(g, height)) return new ServiceError('GRANT_INACTIVE', 'the grant is expired or revoked')
  // A revoked subject key speaks for no one: its grants end with it.
  if (ctx.call<boolean>('identity', 'isRevoked', { key: g.subject }) === true)
    return new ServiceError('GRANT_INACTIVE', "the subject's key is revoked")
  return null
}

function appendLog(ctx: TxContext, subject: Uint8Array, e: AccessEntry): number {
  const nKey = `log/${hex(subject)}/n`
  const i = ctx.state.get<number>(nKey) ?? 0
  ctx.state.set(`log/${hex(subject)}/${i}`, e as unknown as Rec)
  ctx.state.set(nKey, add(i, 1, 'log size'))
  ctx.emit('access', {
    subject,
    index: i,
    grantId: e.grantId,
    grantee: e.grantee,
    purpose: e.purpose,
    emergency: e.emergency,
  })
  return i
}

function recordAccess(
  ctx: TxContext,
  grantId: Uint8Array,
  grantee: Uint8Array,
  p: string,
  via: string,
): number {
  const err = refusal(ctx, grantId, grantee, p)
  if (err) throw err
  const g = getGrant(ctx.state, grantId)!
  return appendLog(ctx, g.subject, {
    height: ctx.height,
    grantId,
    grantee,
    purpose: p,
    emergency: false,
    reason: null,
    via,
  })
}

export const consent = refuseRevokedSigners(
  defineService({
    name: 'consent',
    version: '1.0.0',
    dependencies: ['identity'],
    methods: {
      grant: {
        doc: 'Grants a grantee access for a purpose until `expiry` (exclusive). The signer is the subject.',
        args: args.grant,
        handler(ctx, a: Infer<typeof args.grant>) {
          ensure(!ctx.state.has(`grant/${hex(a.grantId)}`), 'GRANT_EXISTS', 'grantId already used')
          requirePurpose(ctx.state, a.purpose)
          ensure(
            a.expiry > ctx.height,
            'BAD_EXPIRY',
            `expiry ${a.expiry} is not after the current height ${ctx.height}`,
          )
          const g: GrantRecord = { ...a, subject: ctx.signer, grantedAt: ctx.height, revokedFrom: null }
          ctx.state.set(`grant/${hex(a.grantId)}`, g as unknown as Rec)
          ctx.emit('granted', {
            grantId: a.grantId,
            subject: ctx.signer,
            grantee: a.grantee,
            purpose: a.purpose,
            expiry: a.expiry,
          })
        },
      },
      revoke: {
        doc: 'Revokes a grant from the next height on. Its subject only.',
        args: args.grantId,
        handler(ctx, a: Infer<typeof args.grantId>) {
          const g = getGrant(ctx.state, a.grantId)
          ensure(g, 'NO_SUCH_GRANT', 'no such grant')
          if (!equalBytes(g.subject, ctx.signer))
            throw new ServiceError('UNAUTHORIZED', 'only the subject revokes a grant')
          ensure(g.revokedFrom === null, 'ALREADY_REVOKED', `revoked from height ${g.revokedFrom}`)
          ctx.state.set(`grant/${hex(a.grantId)}`, { ...g, revokedFrom: ctx.height + 1 } as unknown as Rec)
          ctx.emit('revoked', { grantId: a.grantId, fromHeight: ctx.height + 1 })
        },
      },
      logAccess: {
        doc: 'Logs an access under a grant active at this height. Its grantee only.',
        args: args.logAccess,
        handler: (ctx, a: Infer<typeof args.logAccess>) => {
          recordAccess(ctx, a.grantId, ctx.signer, a.purpose, 'consent')
        },
      },
      emergencyAccess: {
        doc: "Logs a flagged access without a grant. Needs ('consent','emergency'); `reason` is a hash.",
        args: args.emergencyAccess,
        auth: (ctx) => signerHas(ctx, 'consent', 'emergency'),
        handler(ctx, a: Infer<typeof args.emergencyAccess>) {
          requirePurpose(ctx.state, a.purpose)
          appendLog(ctx, a.subject, {
            height: ctx.height,
            grantId: null,
            grantee: ctx.signer,
            purpose: a.purpose,
            emergency: true,
            reason: a.reason,
            via: 'consent',
          })
        },
      },
      definePurpose: {
        doc: "Adds a plain purpose code (no ':') to the purpose table. ('consent','admin').",
        args: args.definePurpose,
        auth: (ctx) => signerHas(ctx, 'consent', 'admin'),
        handler(ctx, a: Infer<typeof args.definePurpose>) {
          ensure(!a.code.includes(':'), 'BAD_ARGS', "codes with ':' are defined by their service")
          putPurpose(ctx.state, a.code, ctx.signer, ctx.height)
          ctx.emit('purposeDefined', { code: a.code })
        },
      },
    },
    exports: {
      /** The calling service adds `<caller>:<code>` to the purpose table (PURPOSE_EXISTS when there). */
      definePurpose(ctx: TxContext, raw: Value): void {
        const a = parse(args.definePurpose, raw)
        if (!a.code.startsWith(`${ctx.caller}:`))
          throw new ServiceError(
            'UNAUTHORIZED',
            `a service defines codes under its own name (${ctx.caller}:...)`,
          )
        putPurpose(ctx.state, a.code, ctx.caller!, ctx.height)
      },
      /** True when `code` is in the purpose table. */
      hasPurpose(ctx: TxContext, raw: Value): boolean {
        return ctx.state.has(`purpose/${parse(args.definePurpose, raw).code}`)
      },
      /** True when the grant exists, names this grantee and purpose, and is active at this height. */
      isActive(ctx: TxContext, raw: Value): boolean {
        const a = parse(args.check, raw)
        return refusal(ctx, a.grantId, a.grantee, a.purpose) === null
      },
      /** Throws NO_SUCH_GRANT, NOT_GRANTEE, PURPOSE_MISMATCH or GRANT_INACTIVE unless isActive. */
      requireActive(ctx: TxContext, raw: Value): void {
        const a = parse(args.check, raw)
        const err = refusal(ctx, a.grantId, a.grantee, a.purpose)
        if (err) throw err
      },
      /** requireActive, then appends an entry to the subject's log; returns its index. */
      recordAccess(ctx: TxContext, raw: Value): number {
        const a = parse(args.check, raw)
        return recordAccess(ctx, a.grantId, a.grantee, a.purpose, ctx.caller!)
      },
      /**
       * Break-glass: appends a flagged entry without a grant. The grantee must hold ('consent','emergency')
       * or (<calling service>, 'emergency'); returns the entry's index.
       */
      recordEmergency(ctx: TxContext, raw: Value): number {
        const a = parse(args.xemergency, raw)
        requirePurpose(ctx.state, a.purpose)
        const may = (scope: string) =>
          ctx.call<boolean>('identity', 'hasRole', { scope, role: 'emergency', key: a.grantee }) === true
        if (!may('consent') && !may(ctx.caller!))
          throw new ServiceError('UNAUTHORIZED', 'grantee holds no emergency role')
        return appendLog(ctx, a.subject, {
          height: ctx.height,
          grantId: null,
          grantee: a.grantee,
          purpose: a.purpose,
          emergency: true,
          reason: a.reason,
          via: ctx.caller!,
        })
      },
    },
    genesis(ctx, config) {
      const cfg = (config ?? {}) as { purposes?: Value }
      const list = cfg.purposes ?? [...DEFAULT_PURPOSES]
      if (!Array.isArray(list))
        throw new ServiceError('BAD_GENESIS', 'consent genesis: purposes must be a list')
      for (const [i, code] of list.entries()) {
        if (typeof code !== 'string' || code.length > 64 || !PURPOSE_RE.test(code) || code.includes(':'))
          throw new ServiceError('BAD_GENESIS', `consent genesis: purposes[${i}] is not a plain purpose code`)
        if (!ctx.state.has(`purpose/${code}`)) ctx.state.set(`purpose/${code}`, { by: 'genesis', height: 0 })
      }
    },
    queries: {
      purpose: {
        doc: 'A purpose code of the table: { by, height } or null.',
        args: args.definePurpose,
        handler: (q: QueryContext, a: Infer<typeof args.definePurpose>) =>
          q.state.get(`purpose/${a.code}`) ?? null,
      },
      grant: {
        doc: 'The grant record plus `active` (at this height), or null.',
        args: args.grantId,
        handler(q: QueryContext, a: Infer<typeof args.grantId>) {
          const g = getGrant(q.state, a.grantId)
          if (!g) return null
          const key = q.query<{ revokedFrom: number | null }>('identity', 'key', { key: g.subject })
          const subjectLive = key.revokedFrom === null || key.revokedFrom > q.height
          return { ...g, active: grantActiveAt(g, q.height) && subjectLive } as unknown as Rec
        },
      },
      accessLog: {
        doc: `A subject's access entries [from, from+limit) (limit <= ${MAX_LOG_PAGE}, default all up to that).`,
        args: args.accessLog,
        handler(q: QueryContext, a: Infer<typeof args.accessLog>) {
          const n = q.state.get<number>(`log/${hex(a.subject)}/n`) ?? 0
          const from = a.from ?? 0
          const to = Math.min(n, from + (a.limit ?? MAX_LOG_PAGE))
          const out: Value[] = []
          for (let i = from; i < to; i++) out.push(q.state.get(`log/${hex(a.subject)}/${i}`)!)
          return out
        },
      },
      accessCount: {
        doc: "Number of entries in a subject's access log.",
        args: args.subject,
        handler: (q: QueryContext, a: Infer<typeof args.subject>) =>
          q.state.get<number>(`log/${hex(a.subject)}/n`) ?? 0,
      },
    },
  }),
)
