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
import { checkMilestones, copy, hex, name, parse, payFromHolds } from './common.ts'

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
 * the `create` export; exports other than `get` and `sign` act only on the calling service's contracts.
 *
 * State layout: agr/<id> -> AgreementRecord (bounded: <= 16 parties, 32 milestones, 16 payouts each, 16 holds).
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
  | 'WRONG_SCOPE'
  | 'LIMIT'
  | 'OVERFLOW'

export type AgreementStatus = 'proposed' | 'active' | 'completed' | 'cancelled'

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
}

type View = ReadonlyStateView | StateView
type Rec = Record<string, Value>

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
})
const args = {
  create: createArgs,
  id: s.object({ id: name(64) }),
  fund: s.object({ id: name(64), amount }),
  certify: s.object({ id: name(64), milestone: name(64) }),
}

function getAgreement(state: View, id: string): AgreementRecord {
  const a = state.get<Rec>(`agr/${id}`) as AgreementRecord | undefined
  ensure(a, 'NO_SUCH_AGREEMENT', `no agreement ${id}`)
  // A copy: the runtime hands out the stored object, and a failed tx must not leave edits behind.
  return copy(a as unknown as Rec) as unknown as AgreementRecord
}

function save(ctx: TxContext, a: AgreementRecord): void {
  ctx.state.set(`agr/${a.id}`, a as unknown as Rec)
}

function partyIndex(a: AgreementRecord, key: Uint8Array): number {
  return a.parties.findIndex((p) => equalBytes(p, key))
}

function inScope(ctx: TxContext, a: AgreementRecord): void {
  if (ctx.caller !== undefined && a.scope !== ctx.caller) {
    throw new ServiceError('WRONG_SCOPE', `agreement ${a.id} belongs to ${a.scope}`)
  }
}

function create(ctx: TxContext, c: Infer<typeof createArgs>, scope: string): void {
  ensure(!ctx.state.has(`agr/${c.id}`), 'AGREEMENT_EXISTS', `agreement ${c.id} exists`)
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
  }
  save(ctx, rec)
  ctx.emit('created', { id: c.id, scope, total })
}

function sign(ctx: TxContext, id: string): void {
  const a = getAgreement(ctx.state, id)
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

function fund(ctx: TxContext, id: string, n: number): void {
  const a = getAgreement(ctx.state, id)
  inScope(ctx, a)
  ensure(partyIndex(a, ctx.signer) >= 0, 'NOT_PARTY', 'only a party funds')
  ensure(a.status === 'proposed' || a.status === 'active', 'BAD_STATE', `agreement is ${a.status}`)
  ensure(a.funded + n <= a.total, 'OVERFUNDED', `funded ${a.funded} + ${n} > total ${a.total}`)
  ensure(a.holds.length < MAX_HOLDS, 'LIMIT', `at most ${MAX_HOLDS} fundings per agreement`)
  const holdId = `agreement/${id}/${a.holds.length}`
  ctx.call('token', 'hold', { asset: a.asset, from: ctx.signer, amount: n, holdId })
  a.holds.push({ holdId, from: ctx.signer, amount: n, remaining: n })
  a.funded += n
  save(ctx, a)
  ctx.emit('funded', { id, from: ctx.signer, amount: n })
}

function certify(ctx: TxContext, id: string, milestone: string): void {
  const a = getAgreement(ctx.state, id)
  inScope(ctx, a)
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

function cancel(ctx: TxContext, id: string): void {
  const a = getAgreement(ctx.state, id)
  inScope(ctx, a)
  if (partyIndex(a, ctx.signer) < 0 && !equalBytes(a.creator, ctx.signer)) {
    throw new ServiceError('UNAUTHORIZED', 'only a party or the creator cancels')
  }
  ensure(
    a.status === 'proposed',
    'BAD_STATE',
    `agreement is ${a.status}: only a proposed agreement is cancelled`,
  )
  for (const h of a.holds) {
    if (h.remaining === 0) continue
    ctx.call('token', 'cancelHold', { holdId: h.holdId })
    a.returned += h.remaining
    h.remaining = 0
  }
  a.status = 'cancelled'
  save(ctx, a)
  ctx.emit('cancelled', { id, returned: a.returned })
}

function view(state: View, id: string): Value {
  return state.get<Rec>(`agr/${id}`) ?? null
}

export const agreement = defineService({
  name: 'agreement',
  version: '1.0.0',
  dependencies: ['token'],
  methods: {
    create: {
      doc: 'Proposes a contract; payouts of each milestone must add up to its amount. Anyone; the asset must list agreement as a controller.',
      args: args.create,
      handler: (ctx, a: Infer<typeof args.create>) => create(ctx, a, 'agreement'),
    },
    sign: {
      doc: 'Signs as a party; the last signature activates the contract.',
      args: args.id,
      handler: (ctx, a: Infer<typeof args.id>) => sign(ctx, a.id),
    },
    fund: {
      doc: "Escrows `amount` of the signer's balance (a token hold). Any party, while proposed or active, up to the total.",
      args: args.fund,
      handler: (ctx, a: Infer<typeof args.fund>) => fund(ctx, a.id, a.amount),
    },
    certify: {
      doc: 'Certifies a milestone and pays its split from escrow. The certifier, once per milestone, while active.',
      args: args.certify,
      handler: (ctx, a: Infer<typeof args.certify>) => certify(ctx, a.id, a.milestone),
    },
    cancel: {
      doc: 'Cancels a proposed contract and returns the escrow to its funders. A party or the creator.',
      args: args.id,
      handler: (ctx, a: Infer<typeof args.id>) => cancel(ctx, a.id),
    },
  },
  exports: {
    /** Proposes a contract owned by the calling service (same rules as the method). */
    create(ctx: TxContext, raw: Value): void {
      create(ctx, parse(args.create, raw), ctx.caller!)
    },
    /** Signs as the tx signer (any agreement). */
    sign(ctx: TxContext, raw: Value): void {
      sign(ctx, parse(args.id, raw).id)
    },
    /** Funds from the tx signer, a party (caller's agreements only). */
    fund(ctx: TxContext, raw: Value): void {
      const a = parse(args.fund, raw)
      fund(ctx, a.id, a.amount)
    },
    /** Certifies as the tx signer, the certifier (caller's agreements only). */
    certify(ctx: TxContext, raw: Value): void {
      const a = parse(args.certify, raw)
      certify(ctx, a.id, a.milestone)
    },
    /** Cancels a proposed agreement (caller's agreements only). */
    cancel(ctx: TxContext, raw: Value): void {
      cancel(ctx, parse(args.id, raw).id)
    },
    /** The agreement record or null. */
    get(ctx: TxContext, raw: Value): Value {
      return view(ctx.state, parse(args.id, raw).id)
    },
  },
  queries: {
    agreement: {
      doc: 'The agreement record or null.',
      args: args.id,
      handler: (q: QueryContext, a: Infer<typeof args.id>) => view(q.state, a.id),
    },
    get: {
      doc: 'Alias of `agreement`.',
      args: args.id,
      handler: (q: QueryContext, a: Infer<typeof args.id>) => view(q.state, a.id),
    },
  },
})
