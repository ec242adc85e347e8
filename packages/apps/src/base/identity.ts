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
import { NAME_RE, copy, genesisKey, hex, name, parse } from './common.ts'

/**
 * identity: agencies (orgs) with keys, roles scoped to a service, pseudonymous subjects, key revocation.
 *
 * State layout (per entity, no iteration):
 *   role/<scope>/<role>/<keyHex> -> { org, by, height }     a grant
 *   roles/<keyHex>               -> [[scope, role], ...]    index for the `roles` query (<= MAX_ROLES_PER_KEY)
 *   org/<org>                    -> { org, name, keys, height }  (<= MAX_ORG_KEYS keys)
 *   keyorg/<keyHex>              -> org                     a key belongs to one org, forever
 *   revoked/<keyHex>             -> fromHeight              the key is dead at heights >= fromHeight
 *   subject/<subjectHex>         -> { by, height }          a pseudonymous subject commitment
 *   pseud/<scope>/<keyHex>       -> { commitment, org, height }  a citizen's per-relationship key in a scope
 *   pcommit/<scope>/<commitHex>  -> keyHex                  one key per citizen and scope
 *   pkey/<keyHex>                -> scope                   a relationship key serves one scope, forever
 *
 * Per-relationship pseudonyms: a citizen uses one key per service (scope), derived by their wallet
 * (`relationshipKey`). The agency that knows the citizen enrols that key with a keyed commitment,
 * HMAC(agency secret, scope, citizen reference) (`pseudonymCommitment`, computed off chain): the chain
 * sees one commitment per citizen and scope (so nobody enrols twice), but neither the commitment nor the
 * key of one scope says anything about another; only the agency, with its secret, links them.
 */

/** Error codes of identity. */
export type IdentityErrorCode =
  | 'UNAUTHORIZED'
  | 'BAD_ARGS'
  | 'BAD_GENESIS'
  | 'ORG_EXISTS'
  | 'NO_SUCH_ORG'
  | 'KEY_IN_USE'
  | 'KEY_REVOKED'
  | 'NOT_IN_ORG'
  | 'BAD_HEIGHT'
  | 'ROLE_EXISTS'
  | 'NO_SUCH_ROLE'
  | 'SUBJECT_EXISTS'
  | 'ALREADY_ENROLLED'
  | 'NOT_ENROLLED'
  | 'LIMIT'

export const MAX_ROLES_PER_KEY = 64
export const MAX_ORG_KEYS = 32

/** The scope whose admins (the city) may act as admin of every scope. */
export const CITY_SCOPE = '*'

/** A role's scope: a service name, or '*' for the city. */
const scopeSchema = s.string({ min: 1, max: 64, pattern: /^(\*|[A-Za-z0-9][A-Za-z0-9._:-]*)$/ })
const roleSchema = name(96)

/** A stored org. */
export interface OrgRecord {
  org: string
  name: string
  keys: Uint8Array[]
  height: number
}

type View = ReadonlyStateView | StateView

const roleKey = (scope: string, role: string, keyHex: string) => `role/${scope}/${role}/${keyHex}`

/** The height from which `keyHex` is revoked, or null. */
function revokedFrom(state: View, keyHex: string): number | null {
  const v = state.get<number>(`revoked/${keyHex}`)
  return typeof v === 'number' ? v : null
}

function isRevoked(state: View, keyHex: string, height: number): boolean {
  const from = revokedFrom(state, keyHex)
  return from !== null && from <= height
}

/** (scope, role) held by the key at `height`: granted and the key not revoked by then. */
export function roleHeld(state: View, height: number, scope: string, role: string, key: Uint8Array): boolean {
  const k = hex(key)
  return !isRevoked(state, k, height) && state.has(roleKey(scope, role, k))
}

/** May `key` grant or revoke roles in `scope`? That scope's admin, or the city. */
function isScopeAdmin(state: View, height: number, scope: string, key: Uint8Array): boolean {
  return roleHeld(state, height, scope, 'admin', key) || roleHeld(state, height, CITY_SCOPE, 'admin', key)
}

/** The org of an active key, or null. */
function activeOrgOf(state: View, height: number, key: Uint8Array): string | null {
  const k = hex(key)
  if (isRevoked(state, k, height)) return null
  return state.get<string>(`keyorg/${k}`) ?? null
}

function putRole(
  state: StateView,
  scope: string,
  role: string,
  key: Uint8Array,
  org: string | null,
  by: Uint8Array,
  height: number,
): void {
  const k = hex(key)
  ensure(!state.has(roleKey(scope, role, k)), 'ROLE_EXISTS', `key already holds (${scope}, ${role})`)
  const list = copy(state.get<string[][]>(`roles/${k}`) ?? [])
  ensure(list.length < MAX_ROLES_PER_KEY, 'LIMIT', `a key holds at most ${MAX_ROLES_PER_KEY} roles`)
  list.push([scope, role])
  state.set(`roles/${k}`, list)
  state.set(roleKey(scope, role, k), { org, by, height })
}

/** A role's grant height, if the key holds it at `height`. */
function roleSince(state: View, height: number, scope: string, role: string, key: Uint8Array): number | null {
  if (!roleHeld(state, height, scope, role, key)) return null
  const g = state.get<{ height: number } & Record<string, Value>>(roleKey(scope, role, hex(key)))
  return g?.height ?? null
}

/** The height a live key was enrolled in `scope`, or null. */
function enrolledSince(state: View, height: number, scope: string, key: Uint8Array): number | null {
  const k = hex(key)
  if (isRevoked(state, k, height)) return null
  const p = state.get<{ height: number } & Record<string, Value>>(`pseud/${scope}/${k}`)
  return p?.height ?? null
}

/** Enrolment needs (scope, 'enroller') or the scope's admin (or the city). */
function mayEnrol(state: View, height: number, scope: string, key: Uint8Array): boolean {
  return roleHeld(state, height, scope, 'enroller', key) || isScopeAdmin(state, height, scope, key)
}

function putOrg(state: StateView, org: string, orgName: string, keys: Uint8Array[], height: number): void {
  ensure(!state.has(`org/${org}`), 'ORG_EXISTS', `org ${org} exists`)
  ensure(keys.length <= MAX_ORG_KEYS, 'LIMIT', `an org has at most ${MAX_ORG_KEYS} keys`)
  for (const key of keys) {
    ensure(!state.has(`keyorg/${hex(key)}`), 'KEY_IN_USE', 'key already belongs to an org')
    state.set(`keyorg/${hex(key)}`, org)
  }
  state.set(`org/${org}`, { org, name: orgName, keys, height })
}

const args = {
  registerOrg: s.object({ org: name(), name: s.string({ min: 1, max: 128 }) }),
  addOrgKey: s.object({ org: name(), key: s.key() }),
  revokeKey: s.object({ key: s.key(), fromHeight: s.uint() }),
  grantRole: s.object({ scope: scopeSchema, role: roleSchema, key: s.key(), org: s.optional(name()) }),
  revokeRole: s.object({ scope: scopeSchema, role: roleSchema, key: s.key() }),
  registerSubject: s.object({ subject: s.hash() }),
  enrol: s.object({ scope: name(), key: s.key(), commitment: s.hash() }),
  enrolment: s.object({ scope: name(), key: s.key() }),
  hasRole: s.object({ scope: scopeSchema, role: roleSchema, key: s.key() }),
  key: s.object({ key: s.key() }),
  org: s.object({ org: name() }),
  subject: s.object({ subject: s.hash() }),
}

const genesisSchema = {
  parse(v: Value | undefined) {
    const cfg = (v ?? {}) as Record<string, Value>
    if (typeof cfg !== 'object' || Array.isArray(cfg) || cfg instanceof Uint8Array) {
      throw new ServiceError('BAD_GENESIS', 'identity genesis: expected a map')
    }
    const list = (x: Value | undefined, field: string): Record<string, Value>[] => {
      if (x === undefined || x === null) return []
      if (!Array.isArray(x)) throw new ServiceError('BAD_GENESIS', `${field}: expected a list`)
      return x as Record<string, Value>[]
    }
    const str = (x: Value | undefined, field: string, re: RegExp = NAME_RE): string => {
      if (typeof x !== 'string' || x.length === 0 || x.length > 128 || !re.test(x)) {
        throw new ServiceError('BAD_GENESIS', `${field}: expected a name`)
      }
      return x
    }
    const scopeRe = /^(\*|[A-Za-z0-9][A-Za-z0-9._:-]*)$/
    return {
      admins: list(cfg.admins, 'admins').map((a, i) => ({
        key: genesisKey(a.key, `admins[${i}].key`),
        scopes: list(a.scopes as Value, `admins[${i}].scopes`).map((sc, j) =>
          str(sc as Value, `admins[${i}].scopes[${j}]`, scopeRe),
        ),
      })),
      orgs: list(cfg.orgs, 'orgs').map((o, i) => ({
        org: str(o.org, `orgs[${i}].org`),
        name: str(o.name, `orgs[${i}].name`, /^.+$/s),
        keys: list(o.keys as Value, `orgs[${i}].keys`).map((k, j) =>
          genesisKey(k as Value, `orgs[${i}].keys[${j}]`),
        ),
      })),
      roles: list(cfg.roles, 'roles').map((r, i) => ({
        scope: str(r.scope, `roles[${i}].scope`, scopeRe),
        role: str(r.role, `roles[${i}].role`),
        key: genesisKey(r.key, `roles[${i}].key`),
        org: r.org === undefined || r.org === null ? null : str(r.org, `roles[${i}].org`),
      })),
    }
  },
}

/** Genesis section of identity. Keys may be bytes or hex (JSON genesis files). */
export interface IdentityGenesis {
  admins: { key: Uint8Array | string; scopes: string[] }[]
  orgs?: { org: string; name: string; keys: (Uint8Array | string)[] }[]
  roles?: { scope: string; role: string; key: Uint8Array | string; org?: string }[]
}

const GENESIS = new Uint8Array(32)

function orgView(state: View, org: string): Value {
  const rec = state.get<OrgRecord & Record<string, Value>>(`org/${org}`)
  if (!rec) return null
  return {
    org: rec.org,
    name: rec.name,
    height: rec.height,
    keys: rec.keys.map((key) => ({ key, revokedFrom: revokedFrom(state, hex(key)) })),
  }
}

function rolesView(state: View, height: number, key: Uint8Array): Value {
  const k = hex(key)
  if (isRevoked(state, k, height)) return []
  const list = state.get<string[][]>(`roles/${k}`) ?? []
  return list
    .filter(([sc, r]) => state.has(roleKey(sc!, r!, k)))
    .map(([scope, role]) => ({ scope: scope!, role: role! }))
}

export const identity = defineService({
  name: 'identity',
  version: '1.0.0',
  methods: {
    registerOrg: {
      doc: "Registers an org; the signer becomes its first key. Needs ('identity','registrar') or the city.",
      args: args.registerOrg,
      auth: (ctx) =>
        roleHeld(ctx.state, ctx.height, 'identity', 'registrar', ctx.signer) ||
        roleHeld(ctx.state, ctx.height, CITY_SCOPE, 'admin', ctx.signer),
      handler(ctx, a: Infer<typeof args.registerOrg>) {
        putOrg(ctx.state, a.org, a.name, [ctx.signer], ctx.height)
        ctx.emit('orgRegistered', { org: a.org, key: ctx.signer })
      },
    },
    addOrgKey: {
      doc: "Adds a key to an org. An active key of the org, ('identity','registrar') or the city.",
      args: args.addOrgKey,
      auth: (ctx, a: Infer<typeof args.addOrgKey>) =>
        activeOrgOf(ctx.state, ctx.height, ctx.signer) === a.org ||
        roleHeld(ctx.state, ctx.height, 'identity', 'registrar', ctx.signer) ||
        roleHeld(ctx.state, ctx.height, CITY_SCOPE, 'admin', ctx.signer),
      handler(ctx, a: Infer<typeof args.addOrgKey>) {
        const rec = ctx.state.get<OrgRecord & Record<string, Value>>(`org/${a.org}`)
        ensure(rec, 'NO_SUCH_ORG', `no org ${a.org}`)
        const k = hex(a.key)
        ensure(!ctx.state.has(`keyorg/${k}`), 'KEY_IN_USE', 'key already belongs to an org')
        ensure(revokedFrom(ctx.state, k) === null, 'KEY_REVOKED', 'key is revoked')
        ensure(rec.keys.length < MAX_ORG_KEYS, 'LIMIT', `an org has at most ${MAX_ORG_KEYS} keys`)
        ctx.state.set(`org/${a.org}`, { ...rec, keys: [...rec.keys, a.key] })
        ctx.state.set(`keyorg/${k}`, a.org)
        ctx.emit('orgKeyAdded', { org: a.org, key: a.key })
      },
    },
    revokeKey: {
      doc: 'Revokes a key from `fromHeight` (>= now) on. The key itself, an active key of its org, an identity admin or the city.',
      args: args.revokeKey,
      auth(ctx, a: Infer<typeof args.revokeKey>) {
        if (equalBytes(ctx.signer, a.key)) return true
        const org = ctx.state.get<string>(`keyorg/${hex(a.key)}`)
        if (org !== undefined && activeOrgOf(ctx.state, ctx.height, ctx.signer) === org) return true
        return isScopeAdmin(ctx.state, ctx.height, 'identity', ctx.signer)
      },
      handler(ctx, a: Infer<typeof args.revokeKey>) {
        const k = hex(a.key)
        ensure(
          a.fromHeight >= ctx.height,
          'BAD_HEIGHT',
          `fromHeight ${a.fromHeight} is before the current height ${ctx.height}`,
        )
        const prev = revokedFrom(ctx.state, k)
        ensure(prev === null || prev > ctx.height, 'KEY_REVOKED', `key revoked since height ${prev}`)
        // A pending revocation can only be brought forward: revocation is never undone.
        const from = prev === null ? a.fromHeight : Math.min(prev, a.fromHeight)
        ctx.state.set(`revoked/${k}`, from)
        ctx.emit('keyRevoked', { key: a.key, fromHeight: from })
      },
    },
    grantRole: {
      doc: "Grants (scope, role) to a key. The scope's admin, or the city ('*' admin).",
      args: args.grantRole,
      auth: (ctx, a: Infer<typeof args.grantRole>) =>
        isScopeAdmin(ctx.state, ctx.height, a.scope, ctx.signer),
      handler(ctx, a: Infer<typeof args.grantRole>) {
        const k = hex(a.key)
        ensure(!isRevoked(ctx.state, k, ctx.height), 'KEY_REVOKED', 'key is revoked')
        if (a.org !== undefined) {
          ensure(ctx.state.has(`org/${a.org}`), 'NO_SUCH_ORG', `no org ${a.org}`)
          ensure(ctx.state.get<string>(`keyorg/${k}`) === a.org, 'NOT_IN_ORG', `key is not a key of ${a.org}`)
        }
        putRole(ctx.state, a.scope, a.role, a.key, a.org ?? null, ctx.signer, ctx.height)
        ctx.emit('roleGranted', { scope: a.scope, role: a.role, key: a.key })
      },
    },
    revokeRole: {
      doc: "Revokes (scope, role) from a key. The scope's admin, or the city.",
      args: args.revokeRole,
      auth: (ctx, a: Infer<typeof args.revokeRole>) =>
        isScopeAdmin(ctx.state, ctx.height, a.scope, ctx.signer),
      handler(ctx, a: Infer<typeof args.revokeRole>) {
        const k = hex(a.key)
        ensure(
          ctx.state.has(roleKey(a.scope, a.role, k)),
          'NO_SUCH_ROLE',
          `key does not hold (${a.scope}, ${a.role})`,
        )
        ctx.state.delete(roleKey(a.scope, a.role, k))
        const list = (ctx.state.get<string[][]>(`roles/${k}`) ?? []).filter(
          ([sc, r]) => !(sc === a.scope && r === a.role),
        )
        if (list.length === 0) ctx.state.delete(`roles/${k}`)
        else ctx.state.set(`roles/${k}`, list)
        ctx.emit('roleRevoked', { scope: a.scope, role: a.role, key: a.key })
      },
    },
    registerSubject: {
      doc: 'Records a pseudonymous subject commitment (a salted hash, never personal data). Any signer.',
      args: args.registerSubject,
      handler(ctx, a: Infer<typeof args.registerSubject>) {
        ensure(!isRevoked(ctx.state, ctx.signerHex, ctx.height), 'KEY_REVOKED', 'the signing key is revoked')
        const k = `subject/${hex(a.subject)}`
        ensure(!ctx.state.has(k), 'SUBJECT_EXISTS', 'subject already registered')
        ctx.state.set(k, { by: ctx.signer, height: ctx.height })
        ctx.emit('subjectRegistered', { subject: a.subject })
      },
    },
    enrol: {
      doc: "Enrols a citizen's relationship key in a scope with the agency's keyed commitment (one key per citizen and scope; a key serves one scope, forever). (scope,'enroller') or the scope's admin.",
      args: args.enrol,
      auth: (ctx, a: Infer<typeof args.enrol>) => mayEnrol(ctx.state, ctx.height, a.scope, ctx.signer),
      handler(ctx, a: Infer<typeof args.enrol>) {
        const k = hex(a.key)
        ensure(!isRevoked(ctx.state, k, ctx.height), 'KEY_REVOKED', 'key is revoked')
        ensure(!ctx.state.has(`keyorg/${k}`), 'KEY_IN_USE', "an org's key is no citizen pseudonym")
        const used = ctx.state.get<string>(`pkey/${k}`)
        ensure(used === undefined, 'KEY_IN_USE', `key already serves scope ${used}: one key per relationship`)
        const c = `pcommit/${a.scope}/${hex(a.commitment)}`
        ensure(!ctx.state.has(c), 'ALREADY_ENROLLED', `this citizen already has a key in ${a.scope}`)
        ctx.state.set(`pseud/${a.scope}/${k}`, {
          commitment: a.commitment,
          org: activeOrgOf(ctx.state, ctx.height, ctx.signer),
          height: ctx.height,
        })
        ctx.state.set(c, k)
        ctx.state.set(`pkey/${k}`, a.scope)
        ctx.emit('enrolled', { scope: a.scope, key: a.key })
      },
    },
    unenrol: {
      doc: "Ends a key's enrolment (lost key, moved away); its commitment is free for a new key, the old key never serves again. (scope,'enroller') or the scope's admin.",
      args: args.enrolment,
      auth: (ctx, a: Infer<typeof args.enrolment>) => mayEnrol(ctx.state, ctx.height, a.scope, ctx.signer),
      handler(ctx, a: Infer<typeof args.enrolment>) {
        const k = hex(a.key)
        const p = ctx.state.get<{ commitment: Uint8Array } & Record<string, Value>>(`pseud/${a.scope}/${k}`)
        ensure(p, 'NOT_ENROLLED', `key is not enrolled in ${a.scope}`)
        ctx.state.delete(`pseud/${a.scope}/${k}`)
        ctx.state.delete(`pcommit/${a.scope}/${hex(p.commitment)}`)
        ctx.emit('unenrolled', { scope: a.scope, key: a.key })
      },
    },
  },
  exports: {
    /** The height from which the key holds (scope, role) (its grant), or null when it does not hold it now. */
    roleSince(ctx: TxContext, raw: Value): number | null {
      const a = parse(args.hasRole, raw)
      return roleSince(ctx.state, ctx.height, a.scope, a.role, a.key)
    },
    /** The height the key was enrolled in `scope`, or null (not enrolled, or revoked). */
    enrolledSince(ctx: TxContext, raw: Value): number | null {
      const a = parse(args.enrolment, raw)
      return enrolledSince(ctx.state, ctx.height, a.scope, a.key)
    },
    /** True when the key holds (scope, role) and is not revoked at this height. */
    hasRole(ctx: TxContext, raw: Value): boolean {
      const a = parse(args.hasRole, raw)
      return roleHeld(ctx.state, ctx.height, a.scope, a.role, a.key)
    },
    /** Throws UNAUTHORIZED unless hasRole. */
    requireRole(ctx: TxContext, raw: Value): void {
      const a = parse(args.hasRole, raw)
      if (!roleHeld(ctx.state, ctx.height, a.scope, a.role, a.key)) {
        throw new ServiceError('UNAUTHORIZED', `key does not hold (${a.scope}, ${a.role})`, {
          scope: a.scope,
          role: a.role,
        })
      }
    },
    /** The org of a key that is not revoked at this height, or null. */
    orgOf(ctx: TxContext, raw: Value): string | null {
      return activeOrgOf(ctx.state, ctx.height, parse(args.key, raw).key)
    },
    /** True when the key is revoked at this height. */
    isRevoked(ctx: TxContext, raw: Value): boolean {
      return isRevoked(ctx.state, hex(parse(args.key, raw).key), ctx.height)
    },
  },
  queries: {
    roles: {
      doc: 'The roles a key holds at this height: [{ scope, role }] ([] when revoked).',
      args: args.key,
      handler: (q: QueryContext, a: Infer<typeof args.key>) => rolesView(q.state, q.height, a.key),
    },
    org: {
      doc: 'An org: { org, name, height, keys: [{ key, revokedFrom }] } or null.',
      args: args.org,
      handler: (q: QueryContext, a: Infer<typeof args.org>) => orgView(q.state, a.org),
    },
    hasRole: {
      doc: 'True when the key holds (scope, role) at this height.',
      args: args.hasRole,
      handler: (q: QueryContext, a: Infer<typeof args.hasRole>) =>
        roleHeld(q.state, q.height, a.scope, a.role, a.key),
    },
    orgOf: {
      doc: 'The org of a key not revoked at this height, or null.',
      args: args.key,
      handler: (q: QueryContext, a: Infer<typeof args.key>) => activeOrgOf(q.state, q.height, a.key),
    },
    key: {
      doc: 'What is known of a key: { org, revokedFrom }.',
      args: args.key,
      handler: (q: QueryContext, a: Infer<typeof args.key>) => ({
        org: q.state.get<string>(`keyorg/${hex(a.key)}`) ?? null,
        revokedFrom: revokedFrom(q.state, hex(a.key)),
      }),
    },
    roleSince: {
      doc: 'The height from which the key holds (scope, role), or null when it does not hold it now.',
      args: args.hasRole,
      handler: (q: QueryContext, a: Infer<typeof args.hasRole>) =>
        roleSince(q.state, q.height, a.scope, a.role, a.key),
    },
    enrolledSince: {
      doc: 'The height the key was enrolled in the scope, or null (not enrolled, or revoked).',
      args: args.enrolment,
      handler: (q: QueryContext, a: Infer<typeof args.enrolment>) =>
        enrolledSince(q.state, q.height, a.scope, a.key),
    },
    pseudonym: {
      doc: "A key's enrolment in a scope: { commitment, org, height } or null.",
      args: args.enrolment,
      handler: (q: QueryContext, a: Infer<typeof args.enrolment>) =>
        q.state.get(`pseud/${a.scope}/${hex(a.key)}`) ?? null,
    },
    enrolled: {
      doc: 'True when the key is enrolled in the scope and not revoked at this height.',
      args: args.enrolment,
      handler: (q: QueryContext, a: Infer<typeof args.enrolment>) =>
        enrolledSince(q.state, q.height, a.scope, a.key) !== null,
    },
    subject: {
      doc: 'A registered subject commitment: { by, height } or null.',
      args: args.subject,
      handler: (q: QueryContext, a: Infer<typeof args.subject>) =>
        q.state.get(`subject/${hex(a.subject)}`) ?? null,
    },
  },
  genesis(ctx, config) {
    const cfg = genesisSchema.parse(config)
    for (const o of cfg.orgs) putOrg(ctx.state, o.org, o.name, o.keys, 0)
    for (const a of cfg.admins) {
      for (const scope of a.scopes) {
        if (!ctx.state.has(roleKey(scope, 'admin', hex(a.key))))
          putRole(ctx.state, scope, 'admin', a.key, null, GENESIS, 0)
      }
    }
    for (const r of cfg.roles) {
      if (!ctx.state.has(roleKey(r.scope, r.role, hex(r.key))))
        putRole(ctx.state, r.scope, r.role, r.key, r.org, GENESIS, 0)
    }
  },
})
