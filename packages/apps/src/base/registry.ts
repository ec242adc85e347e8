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
import { hex, name, parse, refuseRevokedSigners, signerHas } from './common.ts'

/**
 * registry: documents as salted commitments (never personal data) with issuer, type, validity and
 * status. Only the issuing office's current keys change status (a removed or revoked key loses that
 * power, the office's new keys gain it); revoked is final; a docId is never reused.
 *
 * A document belongs to a `scope`: 'registry' for documents issued by the `issue` method, or the name of
 * the service that issued it through the `issue` export. Methods act on 'registry' documents and a
 * service's exports on its own, so a service's own bookkeeping can never be bypassed.
 *
 * State layout: doc/<docIdHex> -> DocRecord
 */

/** Error codes of registry. */
export type RegistryErrorCode =
  | 'UNAUTHORIZED'
  | 'BAD_ARGS'
  | 'DOC_EXISTS'
  | 'NO_SUCH_DOC'
  | 'BAD_VALIDITY'
  | 'WRONG_SCOPE'
  | 'REVOKED_FINAL'
  | 'BAD_TRANSITION'

export type DocStatus = 'active' | 'suspended' | 'revoked'

/** A stored document. `validUntil` 0 = no expiry; otherwise valid at heights <= validUntil. */
export interface DocRecord {
  docId: Uint8Array
  type: string
  issuer: Uint8Array
  commitment: Uint8Array
  validUntil: number
  status: DocStatus
  scope: string
  /** The issuer's office (identity org) at issuance, or null for a key without an org. */
  office: string | null
  holder: Uint8Array | null
  issuedAt: number
  updatedAt: number
}

type View = ReadonlyStateView | StateView
type Rec = Record<string, Value>

const typeSchema = name(64)
const args = {
  issue: s.object({ docId: s.hash(), type: typeSchema, commitment: s.hash(), validUntil: s.uint() }),
  xissue: s.object({
    docId: s.hash(),
    type: typeSchema,
    commitment: s.hash(),
    issuer: s.key(),
    validUntil: s.uint(),
    holder: s.optional(s.hash()),
  }),
  xsetStatus: s.object({ docId: s.hash(), status: s.literal('active', 'suspended', 'revoked'), by: s.key() }),
  docId: s.object({ docId: s.hash() }),
  verify: s.object({ docId: s.hash(), commitment: s.hash() }),
}

function getDoc(state: View, docId: Uint8Array): DocRecord | undefined {
  return state.get<Rec>(`doc/${hex(docId)}`) as DocRecord | undefined
}

function issue(
  ctx: TxContext,
  d: {
    docId: Uint8Array
    type: string
    commitment: Uint8Array
    issuer: Uint8Array
    validUntil: number
    holder?: Uint8Array
  },
  scope: string,
): void {
  ensure(!ctx.state.has(`doc/${hex(d.docId)}`), 'DOC_EXISTS', 'docId already used')
  ensure(
    d.validUntil === 0 || d.validUntil >= ctx.height,
    'BAD_VALIDITY',
    `validUntil ${d.validUntil} is in the past`,
  )
  const rec: DocRecord = {
    docId: d.docId,
    type: d.type,
    issuer: d.issuer,
    commitment: d.commitment,
    validUntil: d.validUntil,
    status: 'active',
    scope,
    office: ctx.call<string | null>('identity', 'orgOf', { key: d.issuer }) ?? null,
    holder: d.holder ?? null,
    issuedAt: ctx.height,
    updatedAt: ctx.height,
  }
  ctx.state.set(`doc/${hex(d.docId)}`, rec as unknown as Rec)
  ctx.emit('issued', { docId: d.docId, type: d.type, issuer: d.issuer, scope })
}

/**
 * The office's current authority: a key that is not revoked and belongs to the document's office now,
 * or, for a document whose issuer had no office, that same key while it is not revoked. Keys leave an
 * office by revocation, so a removed key loses its documents and the office's new keys take them over.
 */
function hasAuthority(ctx: TxContext, doc: DocRecord, by: Uint8Array): boolean {
  const office = doc.office ?? null
  if (office !== null) return ctx.call<string | null>('identity', 'orgOf', { key: by }) === office
  return equalBytes(doc.issuer, by) && ctx.call<boolean>('identity', 'isRevoked', { key: by }) !== true
}

/** The allowed moves: active <-> suspended, either -> revoked, nothing out of revoked. */
function setStatus(
  ctx: TxContext,
  docId: Uint8Array,
  status: DocStatus,
  by: Uint8Array,
  scope: string,
): void {
  const doc = getDoc(ctx.state, docId)
  ensure(doc, 'NO_SUCH_DOC', 'no such document')
  ensure(doc.scope === scope, 'WRONG_SCOPE', `document belongs to ${doc.scope}`)
  if (!hasAuthority(ctx, doc, by))
    throw new ServiceError(
      'UNAUTHORIZED',
      "only a live key of the issuing office (or the issuer's own live key, when it had no office) changes the status of a document",
    )
  ensure(doc.status !== 'revoked', 'REVOKED_FINAL', 'document is revoked')
  ensure(doc.status !== status, 'BAD_TRANSITION', `document is already ${status}`)
  ctx.state.set(`doc/${hex(docId)}`, { ...doc, status, updatedAt: ctx.height } as unknown as Rec)
  ctx.emit('status', { docId, status })
}

function isValid(doc: DocRecord, height: number): boolean {
  return doc.status === 'active' && (doc.validUntil === 0 || height <= doc.validUntil)
}

function verify(state: View, height: number, docId: Uint8Array, commitment: Uint8Array): Value {
  const doc = getDoc(state, docId)
  if (!doc) return { valid: false, issuer: null, status: null, type: null, validUntil: null }
  return {
    valid: isValid(doc, height) && equalBytes(doc.commitment, commitment),
    issuer: doc.issuer,
    status: doc.status,
    type: doc.type,
    validUntil: doc.validUntil,
  }
}

const statusMethod = (status: DocStatus, doc: string) => ({
  doc,
  args: args.docId,
  // The signer must still hold the issuer role: a key whose role was removed changes nothing.
  auth: (ctx: TxContext) => signerHas(ctx, 'registry', 'issuer'),
  handler: (ctx: TxContext, a: Infer<typeof args.docId>) =>
    setStatus(ctx, a.docId, status, ctx.signer, 'registry'),
})

export const registry = refuseRevokedSigners(
  defineService({
    name: 'registry',
    version: '1.0.0',
    dependencies: ['identity'],
    methods: {
      issue: {
        doc: "Issues a document; the signer is its issuer. Needs ('registry','issuer').",
        args: args.issue,
        auth: (ctx) => signerHas(ctx, 'registry', 'issuer'),
        handler: (ctx, a: Infer<typeof args.issue>) => issue(ctx, { ...a, issuer: ctx.signer }, 'registry'),
      },
      suspend: statusMethod(
        'suspended',
        "Suspends an active document. ('registry','issuer') and a live key of the issuing office.",
      ),
      reinstate: statusMethod(
        'active',
        "Reinstates a suspended document. ('registry','issuer') and a live key of the issuing office.",
      ),
      revoke: statusMethod(
        'revoked',
        "Revokes a document for good. ('registry','issuer') and a live key of the issuing office.",
      ),
    },
    exports: {
      /** Any dependent service: issues a document with `issuer`; the caller becomes its scope. */
      issue(ctx: TxContext, raw: Value): void {
        issue(ctx, parse(args.xissue, raw), ctx.caller!)
      },
      /** The document's scope service only, on behalf of `by`: a live key of the issuing office (see `hasAuthority`). */
      setStatus(ctx: TxContext, raw: Value): void {
        const a = parse(args.xsetStatus, raw)
        setStatus(ctx, a.docId, a.status, a.by, ctx.caller!)
      },
      /** The document record or null. */
      get(ctx: TxContext, raw: Value): Value {
        return (getDoc(ctx.state, parse(args.docId, raw).docId) as unknown as Rec | undefined) ?? null
      },
      /** Same answer as the `verify` query, at this height. */
      verify(ctx: TxContext, raw: Value): Value {
        const a = parse(args.verify, raw)
        return verify(ctx.state, ctx.height, a.docId, a.commitment)
      },
    },
    queries: {
      verify: {
        doc: '{ valid, issuer, status, type, validUntil }: valid = active, not expired and the commitment matches.',
        args: args.verify,
        handler: (q: QueryContext, a: Infer<typeof args.verify>) =>
          verify(q.state, q.height, a.docId, a.commitment),
      },
      doc: {
        doc: 'The document record or null.',
        args: args.docId,
        handler: (q: QueryContext, a: Infer<typeof args.docId>) =>
          (getDoc(q.state, a.docId) as unknown as Rec | undefined) ?? null,
      },
    },
  }),
)
