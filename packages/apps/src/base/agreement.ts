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
import { checkMilestones, copy, hex, name, parse, payFromHolds, refuseRevokedSigners } from './common.ts'

/**
 * agreement: multi-party contracts. A contract is proposed, becomes active only once every party has
 * signed, is funded through token holds owned by this service, and pays each certified milestone to its
 * payees (shares fixed at creation and adding up to the milestone's amount).
 *
 * Invariants (checked by test/base-agreement.test.ts over random tx sequences):
 *   - status 'active' or 'completed' only with every party's signature;
 *   - paid <= funded; paid = sum of certified milestones; funded <= sum of milestones;
 *   - for every milestone, the payouts add up to its amount;
 *   - the token holds of a contract hold exactly funded - paid - returned.
 *
 * A contract's `scope` is 'agreement' when created by the method, or the service that created it through
 * the `create` export. Ids are per scope (`agr/<scope>/<id>`): the methods act on scope 'agreement' only
 * and a service's exports on its own contracts only, so nobody funds, cancels or squats a service's
 * contract from outside it. Signing is the exception: a party signs wherever the contract comes from.
 *
 * An active contract ends early (`terminate`) when every party asks, or when one party asks at or after
 * its optional `endAt` height: uncertified milestones are dropped and what is left in escrow goes back
 * to its funders, so a missing certifier never locks the escrow for good.
 *
 * State layout: agr/<scope>/<id> -> AgreementRecord (bounded: <= 16 parties, 32 milestones, 16 payouts
 * each, 16 holds). Token hold ids: `<scope>/<id>/<n>`.
 */

/** Error codes of agreement. */
export type AgreementErrorCode =
  | 'UNAUTHORIZED'
  | 'BAD_ARGS'
  | 'AGREEMENT_EXISTS'
  | 'NO_SUCH_AGREEMENT'
  | 'DUPLICATE_PARTY'
  | 'DUPLICATE_MILESTONE'
  | 'PAYOUT_MISMATCH'
  | 'NO_SUCH_ASSET'
  | 'ASSET_NOT_ESCROWABLE'
  | 'NOT_PARTY'
  | 'ALREADY_SIGNED'
  | 'BAD_STATE'
  | 'OVERFUNDED'
  | 'NO_SUCH_MILESTONE'
  | 'ALREADY_CERTIFIED'
  | 'INSUFFICIENT_ESCROW'
  | 'BAD_HEIGHT'
  | 'LIMIT'
  | 'OVERFLOW'

export type AgreementStatus = 'proposed' | 'active' | 'completed' | 'cancelled' | 'terminated'

export const MAX_PARTIES = 16
export const MAX_MILESTONES = 32
export const MAX_PAYOUTS = 16
export const MAX_HOLDS = 16

export interface Payout {
  to: Uint8Array
  amount: number
}

export interface Milestone {
  id: string
  amount: number
  payouts: Payout[]
  certifiedAt: number | null
}

/** One funding: a token hold taken from `from`. */
export interface Funding {
  holdId: string
  from: Uint8Array
  amount: number
  remaining: number
}

/** A stored contract. Amounts are in the asset's smallest unit. */
export interface AgreementRecord {
  id: string
  asset: string
  parties: Uint8Array[]
  signed: boolean[]
  certifier: Uint8Array
  milestones: Milestone[]
  status: AgreementStatus
  total: number
  funded: number
  paid: number
  returned: number
  holds: Funding[]
  scope: string
  creator: Uint8Array
  createdAt: number
  /** From this height on, one party may terminate the active contract alone; null = only all together. */
  endAt: number | null
  /** Parties who asked to terminate (same order as `parties`). */
  ending: boolean[]
}

type View = ReadonlyStateView | StateView
type Rec = Record<string, Value>

/** The scope of contracts created by the `create` method. */
const SCOPE = 'agreement'

const amount = s.uint({ min: 1 })
const createArgs = s.object({
  id: name(64),
  asset: name(),
  parties: s.array(s.key(), { min: 1, max: MAX_PARTIES }),
  certifier: s.key(),
  milestones: s.array(
    s.object({
      id: name(64),
      amount,
      payouts: s.array(s.object({ to: s.key(), amount }), { min: 1, max: MAX_PAYOUTS }),
    }),
    { min: 1, max: MAX_MILESTONES },
  ),
  endAt: s.optional(s.uint()),
})
const args = {
  create: createArgs,
  id: s.object({ id: name(64) }),
  scoped: s.object({ id: name(64), scope: s.optional(name(64)) }),
  fund: s.object({ id: name(64), amount }),
  certify: s.object({ id: name(64), milestone: name(64) }),
}

const agrKey = (scope: string, id: string) => `agr/${scope}/${id}`

function getAgreement(state: View, scope: string, id: string): AgreementRecord {
  const a = state.get<Rec>(agrKey(scope, id)) as AgreementRecord | undefined
  ensure(a, 'NO_SUCH_AGREEMENT', `no agreement ${id} in ${scope}`)
  // A copy: the runtime hands out the stored object, and a failed tx must not leave edits behind.
  return copy(a as unknown as Rec) as unknown as AgreementRecord
}

function save(ctx: TxContext, a: AgreementRecord): void {
  ctx.state.set(agrKey(a.scope, a.id), a as unknown as Rec)
}

function partyIndex(a: AgreementRecord, key: Uint8Array): number {
  return a.parties.findIndex((p) => equalBytes(p, key))
}

function create(ctx: TxContext, c: Infer<typeof createArgs>, scope: string): void {
  ensure(!ctx.state.has(agrKey(scope, c.id)), 'AGREEMENT_EXISTS', `agreement ${c.id} exists in ${scope}`)
  ensure(
    c.endAt === undefined || c.endAt > ctx.height,
    'BAD_HEIGHT',
    `endAt ${c.endAt} is not after the current height ${ctx.height}`,
  )
  const seen = new Set<string>()
  for (const p of c.parties) {
    ensure(!seen.has(hex(p)), 'DUPLICATE_PARTY', 'a party is listed twice')
    seen.add(hex(p))
  }
  const total = checkMilestones(c.milestones)
  const asset = ctx.call<Rec | null>('token', 'getAsset', { asset: c.asset })
  ensure(asset, 'NO_SUCH_ASSET', `no asset ${c.asset}`)
  ensure(
    (asset.controllers as string[]).includes('agreement'),
    'ASSET_NOT_ESCROWABLE',
    `${c.asset} does not list agreement as a controller`,
  )
  const rec: AgreementRecord = {
    id: c.id,
    asset: c.asset,
    parties: c.parties,
    signed: c.parties.map(() => false),
    certifier: c.certifier,
    milestones: c.milestones.map((m) => ({ ...m, certifiedAt: null })),
    status: 'proposed',
    total,
    funded: 0,
    paid: 0,
    returned: 0,
    holds: [],
    scope,
    creator: ctx.signer,
    createdAt: ctx.height,
    endAt: c.endAt ?? null,
    ending: c.parties.map(() => false),
  }
  save(ctx, rec)
  ctx.emit('created', { id: c.id, scope, total })
}

function sign(ctx: TxContext, scope: string, id: string): void {
  const a = getAgreement(ctx.state, scope, id)
  const i = partyIndex(a, ctx.signer)
  ensure(i >= 0, 'NOT_PARTY', 'the signer is not a party')
  ensure(a.status === 'proposed', 'BAD_STATE', `agreement is ${a.status}`)
  ensure(!a.signed[i], 'ALREADY_SIGNED', 'already signed')
  a.signed[i] = true
  ctx.emit('signed', { id, party: ctx.signer })
  if (a.signed.every(Boolean)) {
    a.status = 'active'
    ctx.emit('activated', { id })
  }
  save(ctx, a)
}

function fund(ctx: TxContext, scope: string, id: string, n: number): void {
  const a = getAgreement(ctx.state, scope, id)
  ensure(partyIndex(a, ctx.signer) >= 0, 'NOT_PARTY', 'only a party funds')
  ensure(a.status === 'proposed' || a.status === 'active', 'BAD_STATE', `agreement is ${a.status}`)
  ensure(a.funded + n <= a.total, 'OVERFUNDED', `funded ${a.funded} + ${n} > total ${a.total}`)
  ensure(a.holds.length < MAX_HOLDS, 'LIMIT', `at most ${MAX_HOLDS} fundings per agreement`)
  const holdId = `${scope}/${id}/${a.holds.length}`
  ctx.call('token', 'hold', { asset: a.asset, from: ctx.signer, amount: n, holdId })
  a.holds.push({ holdId, from: ctx.signer, amount: n, remaining: n })
  a.funded += n
  save(ctx, a)
  ctx.emit('funded', { id, from: ctx.signer, amount: n })
}

function certify(ctx: TxContext, scope: string, id: string, milestone: string): void {
  const a = getAgreement(ctx.state, scope, id)
  if (!equalBytes(a.certifier, ctx.signer))
    throw new ServiceError('UNAUTHORIZED', 'only the certifier certifies')
  ensure(a.status === 'active', 'BAD_STATE', `agreement is ${a.status}`)
  const m = a.milestones.find((x) => x.id === milestone)
  ensure(m, 'NO_SUCH_MILESTONE', `no milestone ${milestone}`)
  ensure(
    m.certifiedAt === null,
    'ALREADY_CERTIFIED',
    `milestone ${milestone} was certified at ${m.certifiedAt}`,
  )
  const escrow = a.funded - a.paid - a.returned
  ensure(escrow >= m.amount, 'INSUFFICIENT_ESCROW', `escrow ${escrow} < ${m.amount}`, {
    escrow,
    amount: m.amount,
  })
  // Pay each share from the holds in funding order; a share may span holds.
  payFromHolds(ctx, a.holds, m.payouts, 'agreement')
  m.certifiedAt = ctx.height
  a.paid += m.amount
  if (a.milestones.every((x) => x.certifiedAt !== null)) a.status = 'completed'
  save(ctx, a)
  ctx.emit('certified', { id, milestone, amount: m.amount, payouts: m.payouts as unknown as Value })
  if (a.status === 'completed') ctx.emit('completed', { id })
}

/** Gives back what is left in the holds to their funders; returns the amount. */
function returnEscrow(ctx: TxContext, a: AgreementRecord): number {
  let n = 0
  for (const h of a.holds) {
    if (h.remaining === 0) continue
    ctx.call('token', 'cancelHold', { holdId: h.holdId })
    n += h.remaining
    h.remaining = 0
  }
  a.returned += n
  return n
}

function terminate(ctx: TxContext, scope: string, id: string): void {
  const a = getAgreement(ctx.state, scope, id)
  const i = partyIndex(a, ctx.signer)
  ensure(i >= 0, 'NOT_PARTY', 'only a party terminates')
  ensure(a.status === 'active', 'BAD_STATE', `agreement is ${a.status}: only an active one is terminated`)
  const due = a.endAt !== null && ctx.height >= a.endAt
  ensure(due || !a.ending[i], 'ALREADY_SIGNED', 'this party already asked to terminate')
  a.ending[i] = true
  if (!due && !a.ending.every(Boolean)) {
    save(ctx, a)
    ctx.emit('terminationAsked', { id, party: ctx.signer })
    return
  }
  const returned = returnEscrow(ctx, a)
  a.status = 'terminated'
  save(ctx, a)
  ctx.emit('terminated', { id, returned })
}

function cancel(ctx: TxContext, scope: string, id: string): void {
  const a = getAgreement(ctx.state, scope, id)
  if (partyIndex(a, ctx.signer) < 0 && !equalBytes(a.creator, ctx.signer)) {
    throw new ServiceError('UNAUTHORIZED', 'only a party or the creator cancels')
  }
  ensure(
    a.status === 'proposed',
    'BAD_STATE',
    `agreement is ${a.status}: only a proposed agreement is cancelled`,
  )
  returnEscrow(ctx, a)
  a.status = 'cancelled'
  save(ctx, a)
  ctx.emit('cancelled', { id, returned: a.returned })
}

function view(state: View, scope: string, id: string): Value {
  return state.get<Rec>(agrKey(scope, id)) ?? null
}

export const agreement = refuseRevokedSigners(
  defineService({
    name: 'agreement',
    version: '1.0.0',
    dependencies: ['identity', 'token'],
    methods: {
      create: {
        doc: 'Proposes a contract; payouts of each milestone must add up to its amount; optional `endAt` height. Anyone; the asset must list agreement as a controller.',
        args: args.create,
        handler: (ctx, a: Infer<typeof args.create>) => create(ctx, a, SCOPE),
      },
      sign: {
        doc: "Signs as a party (`scope`: the owning service, default 'agreement'); the last signature activates the contract.",
        args: args.scoped,
        handler: (ctx, a: Infer<typeof args.scoped>) => sign(ctx, a.scope ?? SCOPE, a.id),
      },
      fund: {
        doc: "Escrows `amount` of the signer's balance (a token hold). Any party, while proposed or active, up to the total.",
        args: args.fund,
        handler: (ctx, a: Infer<typeof args.fund>) => fund(ctx, SCOPE, a.id, a.amount),
      },
      certify: {
        doc: 'Certifies a milestone and pays its split from escrow. The certifier, once per milestone, while active.',
        args: args.certify,
        handler: (ctx, a: Infer<typeof args.certify>) => certify(ctx, SCOPE, a.id, a.milestone),
      },
      cancel: {
        doc: 'Cancels a proposed contract and returns the escrow to its funders. A party or the creator.',
        args: args.id,
        handler: (ctx, a: Infer<typeof args.id>) => cancel(ctx, SCOPE, a.id),
      },
      terminate: {
        doc: 'Asks to end an active contract; it ends when every party has asked, or at once from `endAt` on. The rest of the escrow goes back to its funders. A party.',
        args: args.id,
        handler: (ctx, a: Infer<typeof args.id>) => terminate(ctx, SCOPE, a.id),
      },
    },
    exports: {
      /** Proposes a contract owned by the calling service (same rules as the method). */
      create(ctx: TxContext, raw: Value): void {
        create(ctx, parse(args.create, raw), ctx.caller!)
      },
      /** Signs as the tx signer (`scope` default: the caller's contracts). */
      sign(ctx: TxContext, raw: Value): void {
        const a = parse(args.scoped, raw)
        sign(ctx, a.scope ?? ctx.caller!, a.id)
      },
      /** Funds from the tx signer, a party (caller's agreements only). */
      fund(ctx: TxContext, raw: Value): void {
        const a = parse(args.fund, raw)
        fund(ctx, ctx.caller!, a.id, a.amount)
      },
      /** Certifies as the tx signer, the certifier (caller's agreements only). */
      certify(ctx: TxContext, raw: Value): void {
        const a = parse(args.certify, raw)
        certify(ctx, ctx.caller!, a.id, a.milestone)
      },
      /** Cancels a proposed agreement (caller's agreements only). */
      cancel(ctx: TxContext, raw: Value): void {
        cancel(ctx, ctx.caller!, parse(args.id, raw).id)
      },
      /** Asks, as the tx signer, to terminate an active agreement (caller's agreements only). */
      terminate(ctx: TxContext, raw: Value): void {
        terminate(ctx, ctx.caller!, parse(args.id, raw).id)
      },
      /** The agreement record or null (`scope` default: the caller's). */
      get(ctx: TxContext, raw: Value): Value {
        const a = parse(args.scoped, raw)
        return view(ctx.state, a.scope ?? ctx.caller!, a.id)
      },
    },
    queries: {
      agreement: {
        doc: "The agreement record or null (`scope` default 'agreement').",
        args: args.scoped,
        handler: (q: QueryContext, a: Infer<typeof args.scoped>) => view(q.state, a.scope ?? SCOPE, a.id),
      },
      get: {
        doc: 'Alias of `agreement`.',
        args: args.scoped,
        handler: (q: QueryContext, a: Infer<typeof args.scoped>) => view(q.state, a.scope ?? SCOPE, a.id),
      },
    },
  }),
)
