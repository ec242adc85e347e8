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
import { checkMilestones, copy, hex, name, payFromHolds, refuseRevokedSigners } from '../base/common.ts'

/**
 * Seoul service 7: subcontract payment for public works.
 *
 * A client agency (identity role ('subcontract','client')) awards a public works contract of a fixed
 * `value` to a prime contractor and escrows funding for it (token holds owned by this service, taken
 * from the client's balance of the contract's settlement asset). The prime proposes subcontracts, each
 * with milestones whose payout table (subcontractor, workers, and possibly the prime) adds up exactly to
 * the milestone's amount; the subcontractor co-signs and the client approves. An inspector (role
 * ('subcontract','inspector')) certifies each milestone once; the certified amount is then paid straight
 * from escrow to the payees of the table (direct payment: the prime never holds the subcontractor's or
 * the workers' money). If the escrow does not cover a certified milestone yet, it stays certified-unpaid
 * and anyone settles it once the client has funded enough.
 *
 * The settlement asset must list 'subcontract' among its token controllers (holds go through token
 * exports); `createContract` refuses any other asset with BAD_ASSET. See docs/seoul-b.md for the genesis.
 *
 * Invariants (test/seoul-subcontract.test.ts checks them over random tx sequences):
 *   - released <= escrowed, always; escrowed = released + refunded + what the contract's holds still hold;
 *   - escrowed <= value; committed (sum of approved subcontracts) <= value;
 *   - released = sum of paid milestones; every payout table adds up to its milestone's amount;
 *   - a milestone is certified at most once and paid at most once.
 *
 * State (namespace `subcontract/`):
 *   contract/<id>         -> {@link ContractRecord} (at most {@link MAX_FUNDINGS} holds, {@link MAX_SUBCONTRACTS} subcontracts)
 *   sub/<id>/<sub>        -> {@link SubcontractRecord} (at most {@link MAX_MILESTONES} milestones of {@link MAX_PAYOUTS} payees)
 * Keys are pseudonymous public keys; reports are hashes. No personal data.
 */

import type {
  SubcontractErrorCode,
  Funding,
  ContractRecord,
  PayoutLine,
  MilestoneStatus,
  SubMilestone,
  SubcontractStatus,
  SubcontractRecord,
} from './subcontract-records.ts'

export type {
  SubcontractErrorCode,
  Funding,
  ContractRecord,
  PayoutLine,
  MilestoneStatus,
  SubMilestone,
  SubcontractStatus,
  SubcontractRecord,
}

export const MAX_FUNDINGS = 16
export const MAX_SUBCONTRACTS = 32
export const MAX_MILESTONES = 16
/** Payees per milestone; with MAX_FUNDINGS this keeps a payment under the runtime's 64 events per tx. */
export const MAX_PAYOUTS = 16

const SCOPE = 'subcontract'
const contractKey = (id: string) => `contract/${id}`
const subKey = (id: string, sub: string) => `sub/${id}/${sub}`

const id = name(48)
const amount = s.uint({ min: 1 })
const milestoneArgs = s.object({
  id: name(48),
  amount,
  payouts: s.array(s.object({ to: s.key(), amount }), { min: 1, max: MAX_PAYOUTS }),
})

function hasRole(ctx: TxContext, role: string): boolean {
  return ctx.call<boolean>('identity', 'hasRole', { scope: SCOPE, role, key: ctx.signer }) === true
}

function getContract(ctx: { state: { get(k: string): Value | undefined } }, cid: string): ContractRecord {
  const c = ctx.state.get(contractKey(cid)) as ContractRecord | undefined
  ensure(c, 'NOT_FOUND', `no contract ${cid}`)
  return copy(c)
}

function getSub(
  ctx: { state: { get(k: string): Value | undefined } },
  cid: string,
  sub: string,
): SubcontractRecord {
  const r = ctx.state.get(subKey(cid, sub)) as SubcontractRecord | undefined
  ensure(r, 'NOT_FOUND', `no subcontract ${cid}/${sub}`)
  return copy(r)
}

const isSigner = (ctx: TxContext, key: Uint8Array) => equalBytes(ctx.signer, key)

/** Is the signer one of `keys`, or a key of the same identity org as one of them? */
function interested(ctx: TxContext, keys: Uint8Array[]): boolean {
  if (keys.some((k) => isSigner(ctx, k))) return true
  const org = ctx.call<string | null>('identity', 'orgOf', { key: ctx.signer })
  if (org === null) return false
  return keys.some((k) => ctx.call<string | null>('identity', 'orgOf', { key: k }) === org)
}

/**
 * Pays a certified milestone's table from the contract's holds, in funding order (a share may span
 * holds). At most MAX_PAYOUTS + MAX_FUNDINGS - 1 releases, since each step exhausts a share or a hold.
 */
function pay(ctx: TxContext, c: ContractRecord, r: SubcontractRecord, m: SubMilestone): void {
  const escrow = c.escrowed - c.released - c.refunded
  ensure(escrow >= m.amount, 'INSUFFICIENT_ESCROW', `escrow ${escrow} < milestone ${m.amount}`, {
    escrow,
    amount: m.amount,
  })
  payFromHolds(ctx, c.holds, m.payouts, 'subcontract')
  m.status = 'paid'
  m.paidAt = ctx.height
  c.released += m.amount
  r.paid += m.amount
  if (r.milestones.every((x) => x.status === 'paid')) {
    r.status = 'completed'
    c.open -= 1
  }
  ctx.emit('paid', { contract: c.id, sub: r.sub, milestone: m.id, amount: m.amount, payouts: m.payouts })
  if (r.status === 'completed') ctx.emit('subcontractCompleted', { contract: c.id, sub: r.sub })
}

function save(ctx: TxContext, c: ContractRecord, r?: SubcontractRecord): void {
  ctx.state.set(contractKey(c.id), c)
  if (r) ctx.state.set(subKey(c.id, r.sub), r)
}

export const subcontract = refuseRevokedSigners(
  defineService({
    name: 'subcontract',
    version: '1.0.0',
    dependencies: ['identity', 'token'],
    methods: {
      createContract: method({
        doc: "Award a public works contract to a prime contractor. Role ('subcontract','client'); the signer is the client.",
        args: s.object({ id, prime: s.key(), asset: name(), value: amount, terms: s.hash() }),
        auth: (ctx) => hasRole(ctx, 'client'),
        handler(ctx, a) {
          ensure(!ctx.state.has(contractKey(a.id)), 'ALREADY_EXISTS', `contract ${a.id} exists`)
          ensure(!isSigner(ctx, a.prime), 'BAD_PARTY', 'the client cannot be its own prime contractor')
          const asset = ctx.call<{ controllers?: Value } | null>('token', 'getAsset', { asset: a.asset })
          ensure(asset !== null, 'BAD_ASSET', `no asset ${a.asset}`)
          ensure(
            Array.isArray(asset.controllers) && asset.controllers.includes(SCOPE),
            'BAD_ASSET',
            `${a.asset} does not list subcontract as a controller`,
          )
          const c: ContractRecord = {
            id: a.id,
            client: ctx.signer,
            prime: a.prime,
            asset: a.asset,
            value: a.value,
            committed: 0,
            escrowed: 0,
            released: 0,
            refunded: 0,
            holds: [],
            subs: [],
            open: 0,
            status: 'open',
            terms: a.terms,
            createdAt: ctx.height,
          }
          save(ctx, c)
          ctx.emit('contractCreated', {
            id: a.id,
            client: ctx.signer,
            prime: a.prime,
            asset: a.asset,
            value: a.value,
          })
        },
      }),
      fund: method({
        doc: "Escrow `amount` of the client's balance for the contract (a token hold). The contract's client, while open, up to its value.",
        args: s.object({ contract: id, amount }),
        handler(ctx, a) {
          const c = getContract(ctx, a.contract)
          if (!isSigner(ctx, c.client))
            throw new ServiceError('UNAUTHORIZED', 'only the client funds the contract')
          ensure(c.status === 'open', 'CONTRACT_CLOSED', `contract ${c.id} is closed`)
          ensure(
            c.escrowed + a.amount <= c.value,
            'OVERFUNDED',
            `escrowed ${c.escrowed} + ${a.amount} > value ${c.value}`,
          )
          ensure(c.holds.length < MAX_FUNDINGS, 'LIMIT', `at most ${MAX_FUNDINGS} fundings per contract`)
          const holdId = `subcontract/${c.id}/${c.holds.length}`
          ctx.call('token', 'hold', { asset: c.asset, from: ctx.signer, amount: a.amount, holdId })
          c.holds.push({ holdId, amount: a.amount, remaining: a.amount })
          c.escrowed += a.amount
          save(ctx, c)
          ctx.emit('funded', { contract: c.id, amount: a.amount, escrowed: c.escrowed })
        },
      }),
      propose: method({
        doc: "Propose a subcontract (the prime's signature). The contract's prime, while open; payouts of each milestone add up to its amount.",
        args: s.object({
          contract: id,
          sub: id,
          subcontractor: s.key(),
          terms: s.hash(),
          milestones: s.array(milestoneArgs, { min: 1, max: MAX_MILESTONES }),
        }),
        handler(ctx, a) {
          const c = getContract(ctx, a.contract)
          if (!isSigner(ctx, c.prime))
            throw new ServiceError('UNAUTHORIZED', 'only the prime contractor proposes subcontracts')
          ensure(c.status === 'open', 'CONTRACT_CLOSED', `contract ${c.id} is closed`)
          ensure(!ctx.state.has(subKey(c.id, a.sub)), 'ALREADY_EXISTS', `subcontract ${a.sub} exists`)
          ensure(
            c.subs.length < MAX_SUBCONTRACTS,
            'LIMIT',
            `at most ${MAX_SUBCONTRACTS} subcontracts per contract`,
          )
          ensure(
            !equalBytes(a.subcontractor, c.prime) && !equalBytes(a.subcontractor, c.client),
            'BAD_PARTY',
            'the subcontractor must be neither the prime nor the client',
          )
          const total = checkMilestones(a.milestones)
          ensure(
            c.committed + total <= c.value,
            'OVER_COMMITTED',
            `committed ${c.committed} + ${total} > value ${c.value}`,
          )
          const r: SubcontractRecord = {
            contract: c.id,
            sub: a.sub,
            subcontractor: a.subcontractor,
            terms: a.terms,
            milestones: a.milestones.map((m) => ({
              ...m,
              status: 'pending',
              certifiedAt: null,
              certifiedBy: null,
              report: null,
              paidAt: null,
            })),
            total,
            paid: 0,
            status: 'proposed',
            primeSigned: true,
            subcontractorSigned: false,
            approvedAt: null,
            createdAt: ctx.height,
            ending: [false, false, false],
          }
          c.subs.push(a.sub)
          save(ctx, c, r)
          ctx.emit('proposed', { contract: c.id, sub: a.sub, subcontractor: a.subcontractor, total })
        },
      }),
      sign: method({
        doc: 'Co-sign a proposed subcontract. Its subcontractor.',
        args: s.object({ contract: id, sub: id }),
        handler(ctx, a) {
          const c = getContract(ctx, a.contract)
          const r = getSub(ctx, a.contract, a.sub)
          if (!isSigner(ctx, r.subcontractor))
            throw new ServiceError('UNAUTHORIZED', 'only the subcontractor co-signs')
          ensure(r.status === 'proposed', 'BAD_STATE', `subcontract is ${r.status}`)
          ensure(c.status === 'open', 'CONTRACT_CLOSED', `contract ${c.id} is closed`)
          r.subcontractorSigned = true
          r.status = 'signed'
          save(ctx, c, r)
          ctx.emit('signed', { contract: c.id, sub: a.sub })
        },
      }),
      approve: method({
        doc: "Approve a co-signed subcontract; it becomes active and counts against the contract value. The contract's client, still holding ('subcontract','client').",
        args: s.object({ contract: id, sub: id }),
        auth: (ctx) => hasRole(ctx, 'client'),
        handler(ctx, a) {
          const c = getContract(ctx, a.contract)
          const r = getSub(ctx, a.contract, a.sub)
          if (!isSigner(ctx, c.client))
            throw new ServiceError('UNAUTHORIZED', "only the contract's client approves")
          ensure(c.status === 'open', 'CONTRACT_CLOSED', `contract ${c.id} is closed`)
          ensure(
            r.status === 'signed' && r.primeSigned && r.subcontractorSigned,
            'BAD_STATE',
            `subcontract is ${r.status}: both parties sign first`,
          )
          ensure(
            c.committed + r.total <= c.value,
            'OVER_COMMITTED',
            `committed ${c.committed} + ${r.total} > value ${c.value}`,
          )
          c.committed += r.total
          c.open += 1
          r.status = 'active'
          r.approvedAt = ctx.height
          save(ctx, c, r)
          ctx.emit('approved', { contract: c.id, sub: a.sub, total: r.total, committed: c.committed })
        },
      }),
      cancel: method({
        doc: "Withdraw a subcontract that is not yet approved. The prime, the subcontractor or the contract's client.",
        args: s.object({ contract: id, sub: id }),
        handler(ctx, a) {
          const c = getContract(ctx, a.contract)
          const r = getSub(ctx, a.contract, a.sub)
          if (!isSigner(ctx, c.prime) && !isSigner(ctx, c.client) && !isSigner(ctx, r.subcontractor)) {
            throw new ServiceError(
              'UNAUTHORIZED',
              'only the prime, the subcontractor or the client withdraws a subcontract',
            )
          }
          ensure(
            r.status === 'proposed' || r.status === 'signed',
            'BAD_STATE',
            `subcontract is ${r.status}: only an unapproved one is withdrawn`,
          )
          r.status = 'cancelled'
          save(ctx, c, r)
          ctx.emit('cancelled', { contract: c.id, sub: a.sub })
        },
      }),
      terminate: method({
        doc: "Ask to end an active subcontract (its inspector is gone, the work stopped). It ends once the contract's client, the prime and the subcontractor have all asked and no certified milestone is unpaid; its uncertified milestones are dropped and no longer count against the contract value.",
        args: s.object({ contract: id, sub: id }),
        handler(ctx, a) {
          const c = getContract(ctx, a.contract)
          const r = getSub(ctx, a.contract, a.sub)
          const who = [c.client, c.prime, r.subcontractor].findIndex((k) => isSigner(ctx, k))
          if (who < 0)
            throw new ServiceError('UNAUTHORIZED', 'only the client, the prime or the subcontractor ends it')
          ensure(
            r.status === 'active',
            'BAD_STATE',
            `subcontract is ${r.status}: only an active one is ended`,
          )
          const ending = r.ending ?? [false, false, false]
          ensure(!ending[who], 'ALREADY_SIGNED', 'already asked to terminate')
          ending[who] = true
          r.ending = ending
          if (!ending.every(Boolean)) {
            save(ctx, c, r)
            ctx.emit('terminationAsked', { contract: c.id, sub: r.sub, by: ctx.signer })
            return
          }
          ensure(
            !r.milestones.some((m) => m.status === 'certified'),
            'OUTSTANDING',
            'a certified milestone is unpaid: settle it first',
          )
          const dropped = r.total - r.paid
          c.committed -= dropped
          c.open -= 1
          r.status = 'terminated'
          save(ctx, c, r)
          ctx.emit('subcontractTerminated', { contract: c.id, sub: r.sub, dropped })
        },
      }),
      certify: method({
        doc: "Certify a milestone of an active subcontract, once; pays its table from escrow when covered. Role ('subcontract','inspector'), not a payee, the prime or the client.",
        args: s.object({ contract: id, sub: id, milestone: name(48), report: s.hash() }),
        auth: (ctx) => hasRole(ctx, 'inspector'),
        handler(ctx, a) {
          const c = getContract(ctx, a.contract)
          const r = getSub(ctx, a.contract, a.sub)
          const m = r.milestones.find((x) => x.id === a.milestone)
          ensure(m, 'NOT_FOUND', `no milestone ${a.milestone}`)
          ensure(
            m.status === 'pending',
            'ALREADY_CERTIFIED',
            `milestone ${a.milestone} was certified at ${m.certifiedAt}`,
          )
          ensure(
            r.status === 'active',
            'BAD_STATE',
            `subcontract is ${r.status}: only an approved one is certified`,
          )
          ensure(
            !interested(ctx, [c.prime, c.client, r.subcontractor, ...m.payouts.map((p) => p.to)]),
            'CONFLICT_OF_INTEREST',
            'the inspector is, or belongs to the organisation of, a party or a payee of this milestone',
          )
          m.status = 'certified'
          m.certifiedAt = ctx.height
          m.certifiedBy = ctx.signer
          m.report = a.report
          ctx.emit('certified', {
            contract: c.id,
            sub: a.sub,
            milestone: m.id,
            amount: m.amount,
            report: a.report,
          })
          // Direct payment in the same tx when the escrow covers it; otherwise `settle` pays it later.
          if (c.escrowed - c.released - c.refunded >= m.amount) pay(ctx, c, r, m)
          save(ctx, c, r)
        },
      }),
      settle: method({
        doc: 'Pay a certified milestone that the escrow did not cover at certification. Anyone.',
        args: s.object({ contract: id, sub: id, milestone: name(48) }),
        handler(ctx, a) {
          const c = getContract(ctx, a.contract)
          const r = getSub(ctx, a.contract, a.sub)
          const m = r.milestones.find((x) => x.id === a.milestone)
          ensure(m, 'NOT_FOUND', `no milestone ${a.milestone}`)
          ensure(m.status !== 'paid', 'ALREADY_PAID', `milestone ${a.milestone} was paid at ${m.paidAt}`)
          ensure(m.status === 'certified', 'NOT_CERTIFIED', `milestone ${a.milestone} is not certified`)
          pay(ctx, c, r, m)
          save(ctx, c, r)
        },
      }),
      close: method({
        doc: "Close the contract and return the unspent escrow to the client. The contract's client, once every approved subcontract is completed.",
        args: s.object({ contract: id }),
        handler(ctx, a) {
          const c = getContract(ctx, a.contract)
          if (!isSigner(ctx, c.client))
            throw new ServiceError('UNAUTHORIZED', 'only the client closes the contract')
          ensure(c.status === 'open', 'CONTRACT_CLOSED', `contract ${c.id} is closed`)
          ensure(c.open === 0, 'OUTSTANDING', `${c.open} approved subcontracts are not completed`)
          let returned = 0
          for (const h of c.holds) {
            if (h.remaining === 0) continue
            ctx.call('token', 'cancelHold', { holdId: h.holdId })
            returned += h.remaining
            h.remaining = 0
          }
          c.refunded += returned
          c.status = 'closed'
          save(ctx, c)
          ctx.emit('closed', { contract: c.id, refunded: returned, released: c.released })
        },
      }),
    },
    queries: {
      contract: query({
        doc: 'A contract record plus `escrow` (escrowed - released - refunded), or null.',
        args: s.object({ contract: id }),
        handler(q, a) {
          const c = q.state.get(contractKey(a.contract)) as ContractRecord | undefined
          return c ? { ...c, escrow: c.escrowed - c.released - c.refunded } : null
        },
      }),
      subcontract: query({
        doc: 'A subcontract record, or null.',
        args: s.object({ contract: id, sub: id }),
        handler: (q, a) => q.state.get(subKey(a.contract, a.sub)) ?? null,
      }),
      payee: query({
        doc: "What a key is owed and was paid under a contract: { paid, pending } over the contract's subcontracts.",
        args: s.object({ contract: id, key: s.key() }),
        handler(q, a) {
          const c = q.state.get(contractKey(a.contract)) as ContractRecord | undefined
          if (!c) return null
          let paid = 0
          let pending = 0
          const k = hex(a.key)
          for (const sub of c.subs) {
            const r = q.state.get(subKey(c.id, sub)) as SubcontractRecord | undefined
            if (!r || r.status === 'cancelled' || r.status === 'proposed' || r.status === 'signed') continue
            for (const m of r.milestones) {
              for (const p of m.payouts) {
                if (hex(p.to) !== k) continue
                if (m.status === 'paid') paid += p.amount
                else if (r.status !== 'terminated') pending += p.amount
              }
            }
          }
          return { paid, pending }
        },
      }),
    },
  }),
)
