import {
  method,
  query,
  type TxContext,
  type Value,
  ServiceError,
  defineService,
  ensure,
  s,
  fromHex,
  toHex,
} from '@cityledger/core'
import { refuseRevokedSigners } from '../base/common.ts'

/**
 * Seoul service 9 (civil certificates) and 6 (Seoul Citizen Card), one registry of credentials.
 *
 * Documents are commitments only: `hash` is a salted hash of the certificate's content, held off chain
 * by the citizen; `holder` (cards) is a pseudonymous hash. Nothing here is personal data.
 *
 * Storage: this service keeps its own state rather than the `registry` base service, because its
 * authority model differs: a status change may be made by any key of the issuing office that holds the
 * type's role (offices rotate keys), and the card needs a holder index for "one live card per holder".
 * The rules are the registry's: commitments, issuer, status, revoked is final.
 *
 * State (namespace `certificates/`):
 * - `doc/<idHex>`    -> {@link CertificateRecord}
 * - `card/<holderHex>` -> idHex of the holder's live (active or suspended, not expired) card
 * - `facility/<keyHex>` -> sorted list of credential types the facility accepts
 *
 * Facility visits are never recorded: there is no method that could record one.
 */

/** The 29 kinds of civil certificates (fixed; a new kind needs a service upgrade). */
export const CERTIFICATE_TYPES = [
  'resident-registration',
  'resident-registration-abstract',
  'family-relation',
  'basic-certificate',
  'marriage-relation',
  'adoption-relation',
  'close-adoption-relation',
  'land-register',
  'forest-land-register',
  'building-register',
  'land-use-plan',
  'individual-land-price',
  'individual-housing-price',
  'real-estate-register',
  'business-registration',
  'local-tax-payment',
  'local-tax-assessment',
  'local-tax-exemption',
  'health-insurance-eligibility',
  'national-pension-enrollment',
  'vehicle-register',
  'disability-registration',
  'national-merit',
  'basic-livelihood-recipient',
  'single-parent-family',
  'multi-child-family',
  'military-service',
  'seal-impression',
  'graduation',
] as const

/** The Seoul Citizen Card's credential type. */
export const CITIZEN_CARD = 'citizen-card'

export type CertificateType = (typeof CERTIFICATE_TYPES)[number]
/** Every credential type of the registry: the 29 certificates and the card. */
export const CREDENTIAL_TYPES: readonly string[] = [...CERTIFICATE_TYPES, CITIZEN_CARD]

export type CertificateStatus = 'active' | 'suspended' | 'revoked'

/** Error codes of the certificates service (besides the runtime's UNAUTHORIZED and BAD_ARGS). */
export type CertificatesErrorCode =
  | 'ALREADY_EXISTS'
  | 'NOT_FOUND'
  | 'BAD_VALIDITY'
  | 'INVALID_TRANSITION'
  | 'REVOKED'
  | 'CARD_EXISTS'
  | 'NOT_OFFICE'

/** One credential as stored. */
export interface CertificateRecord {
  [k: string]: Value
  type: string
  /** Salted commitment to the content. */
  hash: Uint8Array
  /** Key that issued it. */
  issuer: Uint8Array
  /** The issuer's office (identity org) at issuance, or null for a key without an org. */
  office: string | null
  status: CertificateStatus
  /** Height after which it is no longer valid (exclusive); 0 = no end. */
  validUntil: number
  issuedAt: number
  updatedAt: number
  /** Pseudonymous holder hash (cards only; null for certificates). */
  holder: Uint8Array | null
}

/** What `verify` answers; the node adds the state proof of `doc/<id>`. */
export interface VerifyResult {
  [k: string]: Value
  valid: boolean
  status: CertificateStatus | 'unknown'
  type: string | null
  issuer: Uint8Array | null
  office: string | null
  validUntil: number
  /** True when validUntil has passed (status may still read 'active'). */
  expired: boolean
}

const SCOPE = 'certificates'
const CARD_ISSUER = 'card-issuer'
const FACILITY = 'facility'

const docKey = (id: Uint8Array) => `doc/${toHex(id)}`
const cardKey = (holder: Uint8Array) => `card/${toHex(holder)}`
const facilityKey = (key: Uint8Array) => `facility/${toHex(key)}`

const certType = s.literal(...CERTIFICATE_TYPES)
const credentialType = s.literal<string>(...CERTIFICATE_TYPES, CITIZEN_CARD)

function hasRole(ctx: TxContext, role: string): boolean {
  return ctx.call<boolean>('identity', 'hasRole', { scope: SCOPE, role, key: ctx.signer }) === true
}

/** The role that governs a credential type. */
export function roleFor(type: string): string {
  return type === CITIZEN_CARD ? CARD_ISSUER : `issuer:${type}`
}

function getDoc(ctx: TxContext, id: Uint8Array): CertificateRecord {
  const doc = ctx.state.get<CertificateRecord>(docKey(id))
  if (!doc) throw new ServiceError('NOT_FOUND', `no credential ${toHex(id)}`)
  return doc
}

function checkValidity(ctx: TxContext, validUntil: number): void {
  ensure(
    validUntil === 0 || validUntil > ctx.height,
    'BAD_VALIDITY',
    `validUntil ${validUntil} is not after height ${ctx.height}`,
  )
}

/**
 * Status changes: the type's role, and for certificates the issuing office (any key of the issuer's org,
 * or the issuer key itself when it had no org). Cards belong to the city: any card issuer.
 */
function authorizeStatusChange(ctx: TxContext, doc: CertificateRecord): void {
  if (!hasRole(ctx, roleFor(doc.type)))
    throw new ServiceError('UNAUTHORIZED', `signer lacks role ${roleFor(doc.type)}`)
  if (doc.type === CITIZEN_CARD) return
  if (toHex(doc.issuer) === ctx.signerHex) return
  const org = ctx.call<string | null>('identity', 'orgOf', { key: ctx.signer })
  ensure(
    doc.office !== null && org === doc.office,
    'NOT_OFFICE',
    'only the issuing office may change this certificate',
  )
}

function transition(
  ctx: TxContext,
  id: Uint8Array,
  from: CertificateStatus[],
  to: CertificateStatus,
  reason: Uint8Array | undefined,
): void {
  const doc = getDoc(ctx, id)
  authorizeStatusChange(ctx, doc)
  ensure(doc.status !== 'revoked', 'REVOKED', 'a revoked credential never changes again')
  ensure(from.includes(doc.status), 'INVALID_TRANSITION', `cannot go from ${doc.status} to ${to}`)
  ctx.state.set(docKey(id), { ...doc, status: to, updatedAt: ctx.height })
  if (doc.type === CITIZEN_CARD && to === 'revoked' && doc.holder) {
    // The holder may be issued a new card once the old one is revoked.
    if (ctx.state.get<string>(cardKey(doc.holder)) === toHex(id)) ctx.state.delete(cardKey(doc.holder))
  }
  ctx.emit(to === 'active' ? 'reinstated' : to, { id, type: doc.type, reason: reason ?? null })
}

const statusArgs = s.object({ id: s.hash(), reason: s.optional(s.hash()) })

export const certificates = refuseRevokedSigners(
  defineService({
    name: 'certificates',
    version: '1.0.0',
    dependencies: ['identity'],
    methods: {
      issue: method({
        doc: "Issue a certificate commitment. Role ('certificates', 'issuer:<type>').",
        args: s.object({ id: s.hash(), type: certType, hash: s.hash(), validUntil: s.uint() }),
        auth: (ctx, a) => hasRole(ctx, roleFor(a.type)),
        handler(ctx, a) {
          ensure(!ctx.state.has(docKey(a.id)), 'ALREADY_EXISTS', `credential ${toHex(a.id)} exists`)
          checkValidity(ctx, a.validUntil)
          const office = ctx.call<string | null>('identity', 'orgOf', { key: ctx.signer }) ?? null
          const doc: CertificateRecord = {
            type: a.type,
            hash: a.hash,
            issuer: ctx.signer,
            office,
            status: 'active',
            validUntil: a.validUntil,
            issuedAt: ctx.height,
            updatedAt: ctx.height,
            holder: null,
          }
          ctx.state.set(docKey(a.id), doc)
          ctx.emit('issued', { id: a.id, type: a.type, issuer: ctx.signer, office })
        },
      }),
      issueCard: method({
        doc: "Issue a Seoul Citizen Card to a pseudonymous holder; one live card per holder. Role ('certificates', 'card-issuer').",
        args: s.object({ id: s.hash(), holder: s.hash(), hash: s.hash(), validUntil: s.uint() }),
        auth: (ctx) => hasRole(ctx, CARD_ISSUER),
        handler(ctx, a) {
          ensure(!ctx.state.has(docKey(a.id)), 'ALREADY_EXISTS', `credential ${toHex(a.id)} exists`)
          checkValidity(ctx, a.validUntil)
          const live = ctx.state.get<string>(cardKey(a.holder))
          // An expired card is no longer live: it is renewed without a revocation (it stays on record, expired).
          const old = live === undefined ? undefined : ctx.state.get<CertificateRecord>(`doc/${live}`)
          const expired = old !== undefined && old.validUntil !== 0 && ctx.height >= old.validUntil
          ensure(
            live === undefined || expired,
            'CARD_EXISTS',
            `holder has a live card ${live}; revoke it first (or renew it once expired)`,
          )
          const office = ctx.call<string | null>('identity', 'orgOf', { key: ctx.signer }) ?? null
          const doc: CertificateRecord = {
            type: CITIZEN_CARD,
            hash: a.hash,
            issuer: ctx.signer,
            office,
            status: 'active',
            validUntil: a.validUntil,
            issuedAt: ctx.height,
            updatedAt: ctx.height,
            holder: a.holder,
          }
          ctx.state.set(docKey(a.id), doc)
          ctx.state.set(cardKey(a.holder), toHex(a.id))
          ctx.emit('issued', { id: a.id, type: CITIZEN_CARD, issuer: ctx.signer, office })
        },
      }),
      suspend: method({
        doc: 'Suspend an active credential (type role; certificates: the issuing office).',
        args: statusArgs,
        handler: (ctx, a) => transition(ctx, a.id, ['active'], 'suspended', a.reason),
      }),
      reinstate: method({
        doc: 'Reinstate a suspended credential (type role; certificates: the issuing office).',
        args: statusArgs,
        handler: (ctx, a) => transition(ctx, a.id, ['suspended'], 'active', a.reason),
      }),
      revoke: method({
        doc: 'Revoke a credential for good (type role; certificates: the issuing office).',
        args: statusArgs,
        handler: (ctx, a) => transition(ctx, a.id, ['active', 'suspended'], 'revoked', a.reason),
      }),
      setAccepted: method({
        doc: "A facility declares the credential types it accepts (replaces its list). Role ('certificates', 'facility').",
        args: s.object({ types: s.array(credentialType, { max: CERTIFICATE_TYPES.length + 1 }) }),
        auth: (ctx) => hasRole(ctx, FACILITY),
        handler(ctx, a) {
          const types = [...new Set(a.types)].sort()
          if (types.length === 0) ctx.state.delete(facilityKey(ctx.signer))
          else ctx.state.set(facilityKey(ctx.signer), types)
          ctx.emit('acceptedSet', { facility: ctx.signer, types })
        },
      }),
    },
    queries: {
      verify: query({
        doc: 'Anyone: is (id, hash) a valid credential? -> { valid, status, type, issuer, office, validUntil, expired }.',
        args: s.object({ id: s.hash(), hash: s.hash() }),
        handler(q, a): VerifyResult {
          const doc = q.state.get<CertificateRecord>(docKey(a.id))
          if (!doc)
            return {
              valid: false,
              status: 'unknown',
              type: null,
              issuer: null,
              office: null,
              validUntil: 0,
              expired: false,
            }
          const expired = doc.validUntil !== 0 && q.height >= doc.validUntil
          const valid = doc.status === 'active' && !expired && toHex(doc.hash) === toHex(a.hash)
          return {
            valid,
            status: doc.status,
            type: doc.type,
            issuer: doc.issuer,
            office: doc.office,
            validUntil: doc.validUntil,
            expired,
          }
        },
      }),
      credential: query({
        doc: 'The stored record of a credential, or null.',
        args: s.object({ id: s.hash() }),
        handler: (q, a) => q.state.get<CertificateRecord>(docKey(a.id)) ?? null,
      }),
      card: query({
        doc: "The holder's live card: { id, status } or null.",
        args: s.object({ holder: s.hash() }),
        handler(q, a) {
          const id = q.state.get<string>(cardKey(a.holder))
          if (id === undefined) return null
          const doc = q.state.get<CertificateRecord>(`doc/${id}`)
          return { id: fromHex(id), status: doc?.status ?? 'unknown' }
        },
      }),
      accepts: query({
        doc: 'Does a facility accept a credential type? -> boolean.',
        args: s.object({ facility: s.key(), type: s.string({ max: 64 }) }),
        handler: (q, a) => (q.state.get<string[]>(facilityKey(a.facility)) ?? []).includes(a.type),
      }),
      facility: query({
        doc: 'The credential types a facility accepts (empty list if none).',
        args: s.object({ facility: s.key() }),
        handler: (q, a) => q.state.get<string[]>(facilityKey(a.facility)) ?? [],
      }),
      types: query({
        doc: 'The credential types of the registry: the 29 certificates, then citizen-card.',
        args: s.object({}),
        handler: () => [...CREDENTIAL_TYPES],
      }),
    },
  }),
)
