import {
  type MethodDef,
  type Schema,
  type ServiceDefinition,
  type TxContext,
  type Value,
  ServiceError,
  ensure,
  fromHex,
  s,
  toHex,
} from '@cityledger/core'

/**
 * Helpers shared by the base services. Everything here is deterministic and integer-only.
 */

/** Names that become part of a state key (assets, orgs, scopes, roles, ids): no '/', so keys stay unambiguous. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/

/** A name of 1..`max` characters matching NAME_RE. */
export function name(max = 64): Schema<string> {
  return s.string({ min: 1, max, pattern: NAME_RE })
}

/** Lowercase hex of a key or hash, the form used inside state keys. */
export const hex = toHex

/**
 * A deep copy of a state value. Reads already return the reader's own copy (the runtime copies on read
 * and snapshots on write), so this is only needed to keep an original next to an edited one.
 */
export function copy<T extends Value>(v: T): T {
  return structuredClone(v)
}

/** a + b, refusing to leave the safe integer range (amounts never lose precision). */
export function add(a: number, b: number, what: string): number {
  const out = a + b
  if (!Number.isSafeInteger(out))
    throw new ServiceError('OVERFLOW', `${what} would exceed ${Number.MAX_SAFE_INTEGER}`)
  return out
}

/** Parses an export's args (exports get raw values; bad ones fail the tx with BAD_ARGS, never crash). */
export function parse<T>(schema: Schema<T>, args: Value | undefined): T {
  return schema.parse(args, 'args')
}

/** A 32-byte key in genesis config: bytes, or lowercase hex when the config came from JSON. */
export function genesisKey(v: Value | undefined, field: string): Uint8Array {
  if (typeof v === 'string') {
    const b = fromHex(v, field)
    if (b.length === 32) return b
  } else if (v instanceof Uint8Array && v.length === 32) {
    return v
  }
  throw new ServiceError('BAD_GENESIS', `${field}: expected a 32-byte key (bytes or hex)`)
}

/** True when the tx signer holds (scope, role) in identity at this height. */
export function signerHas(ctx: TxContext, scope: string, role: string): boolean {
  return ctx.call<boolean>('identity', 'hasRole', { scope, role, key: ctx.signer }) === true
}

/** A token hold that funds an escrow, with what is left in it. */
export interface FundingHold {
  holdId: string
  remaining: number
}

/**
 * Pays each line of a payout table out of escrow holds, in funding order (a line may span holds), through
 * token `release`. Lowers each hold's `remaining` in place. The caller has checked that the holds cover
 * the table; a shortfall here means its books and the holds disagree (a bug, not bad input).
 */
export function payFromHolds(
  ctx: TxContext,
  holds: FundingHold[],
  payouts: readonly { to: Uint8Array; amount: number }[],
  what: string,
): void {
  for (const p of payouts) {
    let need = p.amount
    for (const h of holds) {
      if (need === 0) break
      if (h.remaining === 0) continue
      const take = Math.min(need, h.remaining)
      ctx.call('token', 'release', { holdId: h.holdId, to: p.to, amount: take })
      h.remaining -= take
      need -= take
    }
    if (need !== 0) throw new Error(`invariant broken: ${what} escrow does not match its holds`)
  }
}

/**
 * Checks a milestone table: unique ids, and each milestone's payout lines add up exactly to its amount
 * (`PAYOUT_MISMATCH` otherwise). Returns the table's total.
 */
export function checkMilestones(
  milestones: readonly { id: string; amount: number; payouts: readonly { amount: number }[] }[],
): number {
  const ids = new Set<string>()
  let total = 0
  for (const m of milestones) {
    ensure(!ids.has(m.id), 'DUPLICATE_MILESTONE', `milestone ${m.id} is listed twice`)
    ids.add(m.id)
    let sum = 0
    for (const p of m.payouts) sum = add(sum, p.amount, 'payouts')
    ensure(
      sum === m.amount,
      'PAYOUT_MISMATCH',
      `milestone ${m.id}: payouts add up to ${sum}, not ${m.amount}`,
      {
        sum,
        amount: m.amount,
      },
    )
    total = add(total, m.amount, 'contract total')
  }
  return total
}

/**
 * Gives every method of `def` a first authorization step: a signer whose key identity has revoked (at
 * this height) is refused with KEY_REVOKED, whatever the method, then the method's own `auth` runs. A
 * revoked key so loses every power, not only its roles: spending, voting, consent, holding a car.
 * The service must list 'identity' in its dependencies.
 */
export function refuseRevokedSigners<D extends ServiceDefinition>(def: D): D {
  const methods: Record<string, MethodDef> = {}
  for (const [name, m] of Object.entries(def.methods)) {
    const own = m.auth
    methods[name] = {
      ...m,
      auth(ctx, args) {
        if (ctx.call<boolean>('identity', 'isRevoked', { key: ctx.signer }) === true)
          throw new ServiceError('KEY_REVOKED', 'the signing key is revoked')
        return own ? own(ctx, args) : true
      },
    }
  }
  return { ...def, methods }
}
