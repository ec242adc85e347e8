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
  s,
} from '@cityledger/core'
import { add, hex, name, parse, refuseRevokedSigners, signerHas } from './common.ts'

/**
 * token: assets with an issuer role, per-period mint budgets, balances, holds (escrow owned by a
 * service) and a transfer policy.
 *
 * Invariants (checked by test/base-token.test.ts over random tx sequences):
 *   - every balance and every hold's remaining amount is a safe integer >= 0;
 *   - per asset, minted - burned = sum(balances) + sum(holds' remaining), and `held` = sum(holds' remaining);
 *   - minted within one period never exceeds the asset's budget (when it has one).
 *
 * State layout:
 *   asset/<asset>        -> AssetRecord
 *   supply/<asset>       -> { minted, burned, held }      counters, so supply needs no iteration
 *   period/<asset>       -> { period, minted }            the current budget period only
 *   bal/<asset>/<ownerHex> -> amount (deleted at 0)
 *   allow/<asset>/<keyHex> -> true                        the transfer allowlist
 *   hold/<owner>/<holdId> -> HoldRecord (kept at 0 remaining so a holdId is never reused); hold ids are
 *                           per owning service, so no service can take an id another one will need
 */

/** Error codes of token. */
export type TokenErrorCode =
  | 'UNAUTHORIZED'
  | 'BAD_ARGS'
  | 'ASSET_EXISTS'
  | 'NO_SUCH_ASSET'
  | 'BUDGET_EXCEEDED'
  | 'INSUFFICIENT_FUNDS'
  | 'NOT_ALLOWLISTED'
  | 'TRANSFER_FORBIDDEN'
  | 'CONTROLLED_ASSET'
  | 'HOLD_EXISTS'
  | 'NO_SUCH_HOLD'
  | 'HOLD_EXCEEDED'
  | 'OVERFLOW'

export type TransferPolicy = 'open' | 'allowlist' | 'controlled'

/** A stored asset. `budgetPerPeriod` 0 means no mint budget. */
export interface AssetRecord {
  asset: string
  decimals: number
  policy: TransferPolicy
  controllers: string[]
  budgetPerPeriod: number
  periodBlocks: number
  creator: Uint8Array
  height: number
}

/** A stored hold: funds taken from `from`, owned by service `owner`, of which `remaining` is left. */
export interface HoldRecord {
  holdId: string
  asset: string
  from: Uint8Array
  owner: string
  amount: number
  remaining: number
  height: number
}

interface Supply {
  minted: number
  burned: number
  held: number
}

type View = ReadonlyStateView | StateView
type Rec = Record<string, Value>

const serviceName = s.string({ min: 1, max: 64, pattern: /^[A-Za-z0-9_-]+$/ })
const holdIdSchema = s.string({ min: 1, max: 128, pattern: /^[\x21-\x7e]+$/ })
const amount = s.uint({ min: 1 })

const args = {
  createAsset: s.object({
    asset: name(),
    decimals: s.uint({ max: 18 }),
    policy: s.literal('open', 'allowlist', 'controlled'),
    controllers: s.array(serviceName, { max: 8 }),
    budgetPerPeriod: s.uint(),
    periodBlocks: s.uint({ min: 1 }),
  }),
  mint: s.object({ asset: name(), to: s.key(), amount }),
  burn: s.object({ asset: name(), amount }),
  transfer: s.object({ asset: name(), to: s.key(), amount }),
  setAllowlist: s.object({ asset: name(), key: s.key(), allowed: s.bool() }),
  xburn: s.object({ asset: name(), from: s.key(), amount }),
  xtransfer: s.object({ asset: name(), from: s.key(), to: s.key(), amount }),
  hold: s.object({ asset: name(), from: s.key(), amount, holdId: holdIdSchema }),
  release: s.object({ holdId: holdIdSchema, to: s.key(), amount }),
  holdId: s.object({ holdId: holdIdSchema }),
  holdOf: s.object({ holdId: holdIdSchema, owner: s.optional(serviceName) }),
  holdQuery: s.object({ owner: serviceName, holdId: holdIdSchema }),
  balance: s.object({ asset: name(), owner: s.key() }),
  asset: s.object({ asset: name() }),
}

function getAsset(state: View, asset: string): AssetRecord {
  const rec = state.get<Rec>(`asset/${asset}`) as AssetRecord | undefined
  ensure(rec, 'NO_SUCH_ASSET', `no asset ${asset}`)
  return rec
}

function getSupply(state: View, asset: string): Supply {
  return (state.get<Rec>(`supply/${asset}`) as Supply | undefined) ?? { minted: 0, burned: 0, held: 0 }
}

function balanceOf(state: View, asset: string, owner: Uint8Array): number {
  return state.get<number>(`bal/${asset}/${hex(owner)}`) ?? 0
}

function setBalance(state: StateView, asset: string, owner: Uint8Array, value: number): void {
  if (value === 0) state.delete(`bal/${asset}/${hex(owner)}`)
  else state.set(`bal/${asset}/${hex(owner)}`, value)
}

function credit(state: StateView, asset: string, owner: Uint8Array, n: number): void {
  setBalance(state, asset, owner, add(balanceOf(state, asset, owner), n, 'balance'))
}

function debit(state: StateView, asset: string, owner: Uint8Array, n: number): void {
  const bal = balanceOf(state, asset, owner)
  ensure(bal >= n, 'INSUFFICIENT_FUNDS', `balance ${bal} < ${n}`, { balance: bal, amount: n })
  setBalance(state, asset, owner, bal - n)
}

function mint(ctx: TxContext, asset: string, to: Uint8Array, n: number): void {
  const a = getAsset(ctx.state, asset)
  const sup = getSupply(ctx.state, asset)
  if (a.budgetPerPeriod > 0) {
    const period = Math.floor(ctx.height / a.periodBlocks)
    const cur = ctx.state.get<Rec>(`period/${asset}`) as { period: number; minted: number } | undefined
    const used = cur && cur.period === period ? cur.minted : 0
    ensure(
      used + n <= a.budgetPerPeriod,
      'BUDGET_EXCEEDED',
      `period ${period}: ${used} of ${a.budgetPerPeriod} minted, ${n} more refused`,
      {
        period,
        used,
        budget: a.budgetPerPeriod,
      },
    )
    ctx.state.set(`period/${asset}`, { period, minted: used + n })
  }
  ctx.state.set(`supply/${asset}`, { ...sup, minted: add(sup.minted, n, 'minted supply') })
  credit(ctx.state, asset, to, n)
  ctx.emit('mint', { asset, to, amount: n })
}

function burn(ctx: TxContext, asset: string, from: Uint8Array, n: number): void {
  getAsset(ctx.state, asset)
  debit(ctx.state, asset, from, n)
  const sup = getSupply(ctx.state, asset)
  ctx.state.set(`supply/${asset}`, { ...sup, burned: sup.burned + n })
  ctx.emit('burn', { asset, from, amount: n })
}

/**
 * A 'controlled' asset is minted and burned only through its controllers' exports: the controller keeps
 * books about it (S-Coin lots) that a direct mint or burn would break, and no role may bypass its budget.
 */
function requireUncontrolled(state: View, asset: string, what: string): void {
  ensure(
    getAsset(state, asset).policy !== 'controlled',
    'CONTROLLED_ASSET',
    `${asset} is controlled: it is ${what} only through its controllers`,
  )
}

function move(ctx: TxContext, asset: string, from: Uint8Array, to: Uint8Array, n: number): void {
  debit(ctx.state, asset, from, n)
  credit(ctx.state, asset, to, n)
  // A controlled asset's moves are its controller's to describe (S-Coin spends name no payer or merchant).
  const controlled =
    (ctx.state.get<Rec>(`asset/${asset}`) as AssetRecord | undefined)?.policy === 'controlled'
  ctx.emit('transfer', controlled ? { asset, amount: n } : { asset, from, to, amount: n })
}

/** Exports move funds only for services the asset names as controllers. */
function requireController(ctx: TxContext, asset: string): AssetRecord {
  const a = getAsset(ctx.state, asset)
  if (ctx.caller === undefined || !a.controllers.includes(ctx.caller)) {
    throw new ServiceError('UNAUTHORIZED', `service ${ctx.caller} is not a controller of ${asset}`)
  }
  return a
}

const holdKey = (owner: string, holdId: string) => `hold/${owner}/${holdId}`

/** The calling service's hold `holdId` (each service sees only its own holds). */
function requireHoldOwner(ctx: TxContext, holdId: string): HoldRecord {
  if (ctx.caller === undefined) throw new ServiceError('UNAUTHORIZED', 'holds are used by services only')
  const h = ctx.state.get<Rec>(holdKey(ctx.caller, holdId)) as HoldRecord | undefined
  ensure(h, 'NO_SUCH_HOLD', `${ctx.caller} has no hold ${holdId}`)
  return h
}

/** Takes `n` out of a hold and adjusts the held counter; the caller decides where it goes. */
function takeFromHold(ctx: TxContext, h: HoldRecord, n: number): void {
  ensure(n <= h.remaining, 'HOLD_EXCEEDED', `hold ${h.holdId} has ${h.remaining} left, ${n} asked`, {
    remaining: h.remaining,
  })
  ctx.state.set(holdKey(h.owner, h.holdId), { ...h, remaining: h.remaining - n } as unknown as Rec)
  const sup = getSupply(ctx.state, h.asset)
  ctx.state.set(`supply/${h.asset}`, { ...sup, held: sup.held - n })
}

function holdView(state: View, owner: string, holdId: string): Value {
  const h = state.get<Rec>(holdKey(owner, holdId)) as HoldRecord | undefined
  return h ? { asset: h.asset, from: h.from, owner: h.owner, amount: h.amount, remaining: h.remaining } : null
}

export const token = refuseRevokedSigners(
  defineService({
    name: 'token',
    version: '1.0.0',
    dependencies: ['identity'],
    methods: {
      createAsset: {
        doc: "Creates an asset. Needs ('token','admin'). budgetPerPeriod 0 = no budget.",
        args: args.createAsset,
        auth: (ctx) => signerHas(ctx, 'token', 'admin'),
        handler(ctx, a: Infer<typeof args.createAsset>) {
          ensure(!ctx.state.has(`asset/${a.asset}`), 'ASSET_EXISTS', `asset ${a.asset} exists`)
          const rec: AssetRecord = {
            ...a,
            controllers: [...new Set(a.controllers)],
            creator: ctx.signer,
            height: ctx.height,
          }
          ctx.state.set(`asset/${a.asset}`, rec as unknown as Rec)
          ctx.state.set(`supply/${a.asset}`, { minted: 0, burned: 0, held: 0 })
          ctx.emit('assetCreated', { asset: a.asset, policy: a.policy })
        },
      },
      mint: {
        doc: "Mints to a key, within the period budget. Needs ('token', 'issuer:<asset>'); never for 'controlled' assets.",
        args: args.mint,
        auth: (ctx, a: Infer<typeof args.mint>) => signerHas(ctx, 'token', `issuer:${a.asset}`),
        handler(ctx, a: Infer<typeof args.mint>) {
          requireUncontrolled(ctx.state, a.asset, 'minted')
          mint(ctx, a.asset, a.to, a.amount)
        },
      },
      burn: {
        doc: "Burns from the signer's own balance. Anyone; never for 'controlled' assets.",
        args: args.burn,
        handler(ctx, a: Infer<typeof args.burn>) {
          requireUncontrolled(ctx.state, a.asset, 'burned')
          burn(ctx, a.asset, ctx.signer, a.amount)
        },
      },
      transfer: {
        doc: "Moves the signer's funds. Policy 'open'; 'allowlist' when the recipient is allowlisted; never for 'controlled'.",
        args: args.transfer,
        handler(ctx, a: Infer<typeof args.transfer>) {
          const asset = getAsset(ctx.state, a.asset)
          ensure(
            asset.policy !== 'controlled',
            'TRANSFER_FORBIDDEN',
            `${a.asset} moves only through its controllers`,
          )
          if (asset.policy === 'allowlist') {
            ensure(
              ctx.state.has(`allow/${a.asset}/${hex(a.to)}`),
              'NOT_ALLOWLISTED',
              'recipient is not allowlisted',
            )
          }
          move(ctx, a.asset, ctx.signer, a.to, a.amount)
        },
      },
      setAllowlist: {
        doc: "Adds or removes a key from an asset's allowlist. Needs ('token', 'issuer:<asset>').",
        args: args.setAllowlist,
        auth: (ctx, a: Infer<typeof args.setAllowlist>) => signerHas(ctx, 'token', `issuer:${a.asset}`),
        handler(ctx, a: Infer<typeof args.setAllowlist>) {
          getAsset(ctx.state, a.asset)
          const k = `allow/${a.asset}/${hex(a.key)}`
          if (a.allowed) ctx.state.set(k, true)
          else ctx.state.delete(k)
          ctx.emit('allowlist', { asset: a.asset, key: a.key, allowed: a.allowed })
        },
      },
    },
    exports: {
      /** Controllers only: mints within the period budget ('BUDGET_EXCEEDED'). */
      mint(ctx: TxContext, raw: Value): void {
        const a = parse(args.mint, raw)
        requireController(ctx, a.asset)
        mint(ctx, a.asset, a.to, a.amount)
      },
      /** Controllers only: burns from `from`. */
      burn(ctx: TxContext, raw: Value): void {
        const a = parse(args.xburn, raw)
        requireController(ctx, a.asset)
        burn(ctx, a.asset, a.from, a.amount)
      },
      /** Controllers only: moves funds whatever the policy ('INSUFFICIENT_FUNDS'). */
      transfer(ctx: TxContext, raw: Value): void {
        const a = parse(args.xtransfer, raw)
        requireController(ctx, a.asset)
        move(ctx, a.asset, a.from, a.to, a.amount)
      },
      /** Controllers only: moves `amount` of `from`'s balance into a new hold owned by the calling service. */
      hold(ctx: TxContext, raw: Value): void {
        const a = parse(args.hold, raw)
        requireController(ctx, a.asset)
        const k = holdKey(ctx.caller!, a.holdId)
        ensure(!ctx.state.has(k), 'HOLD_EXISTS', `hold ${a.holdId} exists`)
        debit(ctx.state, a.asset, a.from, a.amount)
        const h: HoldRecord = {
          holdId: a.holdId,
          asset: a.asset,
          from: a.from,
          owner: ctx.caller!,
          amount: a.amount,
          remaining: a.amount,
          height: ctx.height,
        }
        ctx.state.set(k, h as unknown as Rec)
        const sup = getSupply(ctx.state, a.asset)
        ctx.state.set(`supply/${a.asset}`, { ...sup, held: add(sup.held, a.amount, 'held') })
        ctx.emit('hold', { holdId: a.holdId, asset: a.asset, from: a.from, amount: a.amount })
      },
      /** The hold's owner only: pays `amount` out of the hold ('HOLD_EXCEEDED' past what remains). */
      release(ctx: TxContext, raw: Value): void {
        const a = parse(args.release, raw)
        const h = requireHoldOwner(ctx, a.holdId)
        takeFromHold(ctx, h, a.amount)
        credit(ctx.state, h.asset, a.to, a.amount)
        ctx.emit('release', { holdId: a.holdId, to: a.to, amount: a.amount })
      },
      /** The hold's owner only: returns what remains to the original owner; returns that amount. */
      cancelHold(ctx: TxContext, raw: Value): number {
        const a = parse(args.holdId, raw)
        const h = requireHoldOwner(ctx, a.holdId)
        const n = h.remaining
        if (n > 0) {
          takeFromHold(ctx, h, n)
          credit(ctx.state, h.asset, h.from, n)
        }
        ctx.emit('holdCancelled', { holdId: a.holdId, returned: n })
        return n
      },
      /** Any caller: a balance (0 when none). */
      balance(ctx: TxContext, raw: Value): number {
        const a = parse(args.balance, raw)
        return balanceOf(ctx.state, a.asset, a.owner)
      },
      /** Any caller: { asset, from, owner, amount, remaining } of `owner`'s hold (default: the caller's), or null. */
      holdOf(ctx: TxContext, raw: Value): Value {
        const a = parse(args.holdOf, raw)
        const owner = a.owner ?? ctx.caller
        return owner === undefined ? null : holdView(ctx.state, owner, a.holdId)
      },
      /** Any caller: the asset record or null (lets a service check policy and controllers up front). */
      getAsset(ctx: TxContext, raw: Value): Value {
        return ctx.state.get(`asset/${parse(args.asset, raw).asset}`) ?? null
      },
    },
    queries: {
      balance: {
        doc: 'Balance of a key (0 when none).',
        args: args.balance,
        handler: (q: QueryContext, a: Infer<typeof args.balance>) => balanceOf(q.state, a.asset, a.owner),
      },
      asset: {
        doc: 'The asset record or null.',
        args: args.asset,
        handler: (q: QueryContext, a: Infer<typeof args.asset>) => q.state.get(`asset/${a.asset}`) ?? null,
      },
      supply: {
        doc: '{ minted, burned, held, supply } where supply = minted - burned (balances + holds).',
        args: args.asset,
        handler(q: QueryContext, a: Infer<typeof args.asset>) {
          const sup = getSupply(q.state, getAsset(q.state, a.asset).asset)
          return { ...sup, supply: sup.minted - sup.burned }
        },
      },
      hold: {
        doc: "A service's hold: { asset, from, owner, amount, remaining } or null.",
        args: args.holdQuery,
        handler: (q: QueryContext, a: Infer<typeof args.holdQuery>) => holdView(q.state, a.owner, a.holdId),
      },
      allowed: {
        doc: "True when the key is on the asset's allowlist.",
        args: s.object({ asset: name(), key: s.key() }),
        handler: (q: QueryContext, a: { asset: string; key: Uint8Array }) =>
          q.state.has(`allow/${a.asset}/${hex(a.key)}`),
      },
    },
  }),
)
