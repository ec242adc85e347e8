import {
  type MethodDef,
  type QueryDef,
  type BlockContext,
  type TxContext,
  type Value,
  defineService,
  ensure,
  s,
  toHex,
  fromHex,
  concatBytes,
  utf8,
  referenceVerdict,
} from '@cityledger/core'
import { refuseRevokedSigners } from '../base/common.ts'

/**
 * Seoul service 3: S-Coin mileage.
 *
 * Miles are a `controlled` token asset (default 'SCOIN') whose only controller is this service, so no
 * one moves them with a plain token transfer: every move goes through the methods below, and there is
 * no citizen-to-citizen transfer at all. The asset itself is created on the token service (at genesis by
 * the token admin, see docs/seoul-a.md) with `policy: 'controlled', controllers: ['scoin']`.
 *
 * - Program operators (identity role ('scoin', 'operator') AND listed in the program) award miles within
 *   the program's budget; every award is a lot that expires `expiryBlocks` after the award.
 * - Citizens spend at allowlisted merchants and agencies, donate to allowlisted campaigns and agencies,
 *   and convert (burn against a settlement receipt hash, each receipt once). Allowlists are kept by
 *   scoin admins (role ('scoin', 'admin')).
 * - Expiry: a lot with `expiresAt = h` can no longer be used from height h on. Expiry is lazy (every
 *   operation on a holder first burns that holder's expired lots) and swept: `endBlock` burns the lots of
 *   at most {@link SWEEP_HOLDERS} queued holders per block, so token balances converge without unbounded work.
 *
 * State (namespace `scoin/`):
 * - `config`                  -> { asset }
 * - `program/<id>`            -> {@link Program}
 * - `place/<keyHex>`          -> 'merchant' | 'agency' | 'campaign' (the allowlist)
 * - `lots/<holderHex>`        -> [[expiresAt, amount], ...] sorted by expiresAt, at most {@link MAX_LOTS}
 * - `expq/<height>/n`, `expq/<height>/<i>` -> expiry queue: holders with a lot expiring at that height
 * - `sweep`                   -> { height, index }: the endBlock sweep's cursor into the queue
 * - `receipt/<hex>`           -> { holder, amount, height }: used settlement receipts
 * - `stats`                   -> {@link ScoinStats}: running totals
 * A holder's token balance = its unexpired lots + expired lots not yet burned + "free" miles (miles a
 * merchant, agency or campaign received; they never expire).
 */

/** Error codes of the scoin service (besides the runtime's UNAUTHORIZED and BAD_ARGS, and token's). */
export type ScoinErrorCode =
  | 'ALREADY_EXISTS'
  | 'NOT_FOUND'
  | 'NOT_OPERATOR'
  | 'PROGRAM_CLOSED'
  | 'BUDGET_EXCEEDED'
  | 'NOT_ALLOWLISTED'
  | 'SELF_PAYMENT'
  | 'INSUFFICIENT_MILES'
  | 'DUPLICATE_RECEIPT'
  | 'TOO_MANY_LOTS'
  | 'BAD_ASSET'
  | 'BAD_RECEIPT'

export type PlaceKind = 'merchant' | 'agency' | 'campaign'

/** An award program. Budget and awarded are in miles. */
export interface Program {
  [k: string]: Value
  operators: Uint8Array[]
  budget: number
  awarded: number
  expiryBlocks: number
  active: boolean
}

export interface ScoinStats {
  [k: string]: Value
  awarded: number
  expired: number
  converted: number
  spent: number
  donated: number
}

/** A lot: [expiresAt, amount]. */
export type Lot = [number, number]

export const DEFAULT_ASSET = 'SCOIN'
/** Live lots per holder; an award that would need more is refused (TOO_MANY_LOTS). */
export const MAX_LOTS = 32
/** Queue entries plus empty heights the endBlock sweep walks per block. */
export const SWEEP_STEPS = 64
/**
 * Queue entries (holders) the sweep expires per block. Each expiry emits two events (token `burn`,
 * scoin `expired`) and the runtime allows 64 events per end-of-block hook.
 */
export const SWEEP_HOLDERS = 24

const SCOPE = 'scoin'
const RECEIPT_DOMAIN = utf8.encode('cityledger/scoin/receipt/v1')

/**
 * The bytes a settlement operator signs (Ed25519) to let `holder` convert `amount` miles of `asset`
 * against `receipt`: domain 0x00 asset 0x00 holder amount(8 bytes, big-endian) receipt.
 */
export function receiptMessage(
  asset: string,
  holder: Uint8Array,
  amount: number,
  receipt: Uint8Array,
): Uint8Array {
  const n = new Uint8Array(8)
  new DataView(n.buffer).setBigUint64(0, BigInt(amount))
  return concatBytes(
    RECEIPT_DOMAIN,
    new Uint8Array([0]),
    utf8.encode(asset),
    new Uint8Array([0]),
    holder,
    n,
    receipt,
  )
}
const programKey = (id: string) => `program/${id}`
const placeKey = (key: Uint8Array) => `place/${toHex(key)}`
const lotsKey = (hex: string) => `lots/${hex}`
const queueCount = (h: number) => `expq/${h}/n`
const queueEntry = (h: number, i: number) => `expq/${h}/${i}`

type Ctx = TxContext | BlockContext

const asset = (ctx: { state: { get(k: string): Value | undefined } }): string =>
  (ctx.state.get('config') as { asset: string } | undefined)?.asset ?? DEFAULT_ASSET

function hasRole(ctx: TxContext, role: string): boolean {
  return ctx.call<boolean>('identity', 'hasRole', { scope: SCOPE, role, key: ctx.signer }) === true
}

function bumpStats(
  ctx: Ctx,
  field: 'awarded' | 'expired' | 'converted' | 'spent' | 'donated',
  amount: number,
): void {
  const st = ctx.state.get<ScoinStats>('stats') ?? {
    awarded: 0,
    expired: 0,
    converted: 0,
    spent: 0,
    donated: 0,
  }
  ctx.state.set('stats', { ...st, [field]: st[field] + amount })
}

/** Burns `holder`'s lots expired at this height; returns the live lots. Bounded by MAX_LOTS. */
function expireLots(ctx: Ctx, holderHex: string): Lot[] {
  const lots = ctx.state.get<Lot[]>(lotsKey(holderHex)) ?? []
  const live = lots.filter(([at]) => at > ctx.height)
  if (live.length === lots.length) return live
  const due = lots.reduce((sum, [at, n]) => (at <= ctx.height ? sum + n : sum), 0)
  // The lots can only exceed the balance if miles left the holder outside this service (the token
  // refuses that for a controlled asset); burn what is there rather than fail the sweep for everyone.
  const balance = ctx.call<number>('token', 'balance', { asset: asset(ctx), owner: fromHex(holderHex) })
  const amount = Math.min(due, balance)
  if (amount > 0) ctx.call('token', 'burn', { asset: asset(ctx), from: fromHex(holderHex), amount })
  if (live.length === 0) ctx.state.delete(lotsKey(holderHex))
  else ctx.state.set(lotsKey(holderHex), live)
  bumpStats(ctx, 'expired', amount)
  ctx.emit('expired', { holder: fromHex(holderHex), amount })
  return live
}

/**
 * Takes `amount` from the signer's usable miles: unexpired lots first (earliest expiry first), then free
 * miles. Only updates the lots; the caller moves or burns the tokens.
 */
function debit(ctx: TxContext, amount: number): void {
  const lots = expireLots(ctx, ctx.signerHex)
  const balance = ctx.call<number>('token', 'balance', { asset: asset(ctx), owner: ctx.signer })
  ensure(balance >= amount, 'INSUFFICIENT_MILES', `usable miles ${balance} < ${amount}`)
  let left = amount
  const rest: Lot[] = []
  for (const [at, n] of lots) {
    const take = Math.min(n, left)
    left -= take
    if (n > take) rest.push([at, n - take])
  }
  if (lots.length === 0) return
  if (rest.length === 0) ctx.state.delete(lotsKey(ctx.signerHex))
  else ctx.state.set(lotsKey(ctx.signerHex), rest)
}

/**
 * Miles must be a 'controlled' asset with this service as a controller; otherwise citizens could move
 * them with plain token transfers. Checked on every award (the only way miles come into being here).
 */
function requireControlledAsset(ctx: TxContext): void {
  const rec = ctx.call<{ policy?: Value; controllers?: Value } | null>('token', 'getAsset', {
    asset: asset(ctx),
  })
  ensure(rec !== null, 'BAD_ASSET', `asset ${asset(ctx)} does not exist on token`)
  const controllers = Array.isArray(rec.controllers) ? rec.controllers : []
  // scoin alone: a second controller could move miles between citizens through its own methods.
  ensure(
    rec.policy === 'controlled' && controllers.length === 1 && controllers[0] === 'scoin',
    'BAD_ASSET',
    `asset ${asset(ctx)} must be 'controlled' with controllers ['scoin'] only`,
  )
}

function requirePlace(ctx: TxContext, to: Uint8Array, kinds: PlaceKind[]): PlaceKind {
  const kind = ctx.state.get<PlaceKind>(placeKey(to))
  ensure(
    kind !== undefined && kinds.includes(kind),
    'NOT_ALLOWLISTED',
    `recipient is not an allowlisted ${kinds.join(' or ')}`,
  )
  ensure(toHex(to) !== ctx.signerHex, 'SELF_PAYMENT', 'cannot pay yourself')
  return kind
}

function enqueueExpiry(ctx: TxContext, height: number, holderHex: string): void {
  const n = ctx.state.get<number>(queueCount(height)) ?? 0
  ctx.state.set(queueEntry(height, n), holderHex)
  ctx.state.set(queueCount(height), n + 1)
}

const programId = s.string({ min: 1, max: 64, pattern: /^[a-z0-9][a-z0-9-]*$/ })
const miles = s.uint({ min: 1 })

/** Typed method and query definitions: the handler's args are inferred from the schema. */
const method = <A>(m: MethodDef<A>): MethodDef<A> => m
const query = <A>(q: QueryDef<A>): QueryDef<A> => q

export const scoin = refuseRevokedSigners(
  defineService({
    name: 'scoin',
    version: '1.0.0',
    dependencies: ['identity', 'token'],
    genesis(ctx, config) {
      const c = (config ?? {}) as { asset?: Value }
      const name = c.asset === undefined ? DEFAULT_ASSET : c.asset
      if (typeof name !== 'string' || name.length === 0 || name.length > 32)
        throw new Error('scoin genesis: asset must be a string of 1..32 characters')
      ctx.state.set('config', { asset: name })
      ctx.state.set('sweep', { height: 1, index: 0 })
      ctx.state.set('stats', { awarded: 0, expired: 0, converted: 0, spent: 0, donated: 0 })
    },
    methods: {
      createProgram: method({
        doc: "Create an award program with its operators, budget and expiry. Role ('scoin', 'admin').",
        args: s.object({
          program: programId,
          operators: s.array(s.key(), { min: 1, max: 16 }),
          budget: miles,
          expiryBlocks: s.uint({ min: 1 }),
        }),
        auth: (ctx) => hasRole(ctx, 'admin'),
        handler(ctx, a) {
          ensure(!ctx.state.has(programKey(a.program)), 'ALREADY_EXISTS', `program ${a.program} exists`)
          const program: Program = {
            operators: a.operators,
            budget: a.budget,
            awarded: 0,
            expiryBlocks: a.expiryBlocks,
            active: true,
          }
          ctx.state.set(programKey(a.program), program)
          ctx.emit('programCreated', { program: a.program, budget: a.budget, expiryBlocks: a.expiryBlocks })
        },
      }),
      addBudget: method({
        doc: "Raise a program's budget. Role ('scoin', 'admin').",
        args: s.object({ program: programId, amount: miles }),
        auth: (ctx) => hasRole(ctx, 'admin'),
        handler(ctx, a) {
          const p = ctx.state.get<Program>(programKey(a.program))
          ensure(p, 'NOT_FOUND', `no program ${a.program}`)
          ensure(Number.isSafeInteger(p.budget + a.amount), 'BUDGET_EXCEEDED', 'budget overflow')
          ctx.state.set(programKey(a.program), { ...p, budget: p.budget + a.amount })
        },
      }),
      closeProgram: method({
        doc: "Stop a program's awards for good (awarded miles stay). Role ('scoin', 'admin').",
        args: s.object({ program: programId }),
        auth: (ctx) => hasRole(ctx, 'admin'),
        handler(ctx, a) {
          const p = ctx.state.get<Program>(programKey(a.program))
          ensure(p, 'NOT_FOUND', `no program ${a.program}`)
          ctx.state.set(programKey(a.program), { ...p, active: false })
          ctx.emit('programClosed', { program: a.program })
        },
      }),
      setPlace: method({
        doc: "Allowlist a key as merchant, agency or donation campaign, or remove it ('none'). Role ('scoin', 'admin').",
        args: s.object({ key: s.key(), kind: s.literal('merchant', 'agency', 'campaign', 'none') }),
        auth: (ctx) => hasRole(ctx, 'admin'),
        handler(ctx, a) {
          if (a.kind === 'none') ctx.state.delete(placeKey(a.key))
          else ctx.state.set(placeKey(a.key), a.kind)
          ctx.emit('placeSet', { key: a.key, kind: a.kind })
        },
      }),
      award: method({
        doc: "Award miles from a program's budget; they expire expiryBlocks later. Role ('scoin', 'operator') and listed in the program.",
        args: s.object({ program: programId, to: s.key(), amount: miles, ref: s.optional(s.hash()) }),
        auth: (ctx) => hasRole(ctx, 'operator'),
        handler(ctx, a) {
          const p = ctx.state.get<Program>(programKey(a.program))
          ensure(p, 'NOT_FOUND', `no program ${a.program}`)
          ensure(
            p.operators.some((k) => toHex(k) === ctx.signerHex),
            'NOT_OPERATOR',
            `signer does not operate ${a.program}`,
          )
          ensure(p.active, 'PROGRAM_CLOSED', `program ${a.program} is closed`)
          ensure(
            p.awarded + a.amount <= p.budget,
            'BUDGET_EXCEEDED',
            `award of ${a.amount} exceeds the remaining budget ${p.budget - p.awarded}`,
          )
          requireControlledAsset(ctx)
          const toHexKey = toHex(a.to)
          const lots = expireLots(ctx, toHexKey)
          const expiresAt = ctx.height + p.expiryBlocks
          const i = lots.findIndex(([at]) => at >= expiresAt)
          let next: Lot[]
          if (i >= 0 && lots[i]![0] === expiresAt) {
            next = lots.map((l, j): Lot => (j === i ? [l[0], l[1] + a.amount] : l))
          } else {
            ensure(lots.length < MAX_LOTS, 'TOO_MANY_LOTS', `holder has ${MAX_LOTS} live lots`)
            next =
              i < 0
                ? [...lots, [expiresAt, a.amount]]
                : [...lots.slice(0, i), [expiresAt, a.amount], ...lots.slice(i)]
            enqueueExpiry(ctx, expiresAt, toHexKey)
          }
          ctx.call('token', 'mint', { asset: asset(ctx), to: a.to, amount: a.amount })
          ctx.state.set(lotsKey(toHexKey), next)
          ctx.state.set(programKey(a.program), { ...p, awarded: p.awarded + a.amount })
          bumpStats(ctx, 'awarded', a.amount)
          ctx.emit('awarded', {
            program: a.program,
            to: a.to,
            amount: a.amount,
            expiresAt,
            ref: a.ref ?? null,
          })
        },
      }),
      spend: method({
        doc: 'Pay an allowlisted merchant or agency with your usable miles (anyone holding miles).',
        args: s.object({ to: s.key(), amount: miles, ref: s.optional(s.hash()) }),
        handler(ctx, a) {
          const kind = requirePlace(ctx, a.to, ['merchant', 'agency'])
          debit(ctx, a.amount)
          ctx.call('token', 'transfer', { asset: asset(ctx), from: ctx.signer, to: a.to, amount: a.amount })
          bumpStats(ctx, 'spent', a.amount)
          // No payer, no merchant: the event stream is not a log of merchant visits (see packages/apps/README.md).
          ctx.emit('spent', { kind, amount: a.amount })
        },
      }),
      donate: method({
        doc: 'Give usable miles to an allowlisted donation campaign or agency (anyone holding miles).',
        args: s.object({ to: s.key(), amount: miles }),
        handler(ctx, a) {
          const kind = requirePlace(ctx, a.to, ['campaign', 'agency'])
          debit(ctx, a.amount)
          ctx.call('token', 'transfer', { asset: asset(ctx), from: ctx.signer, to: a.to, amount: a.amount })
          bumpStats(ctx, 'donated', a.amount)
          ctx.emit('donated', { kind, amount: a.amount })
        },
      }),
      convert: method({
        doc: "Burn usable miles against a settlement receipt signed by a settlement operator (role ('scoin','settlement')) for this holder and amount; each receipt once.",
        args: s.object({ amount: miles, receipt: s.hash(), operator: s.key(), signature: s.bytes(64) }),
        handler(ctx, a) {
          const rk = `receipt/${toHex(a.receipt)}`
          ensure(!ctx.state.has(rk), 'DUPLICATE_RECEIPT', 'this settlement receipt was already used')
          ensure(
            ctx.call<boolean>('identity', 'hasRole', {
              scope: SCOPE,
              role: 'settlement',
              key: a.operator,
            }) === true,
            'BAD_RECEIPT',
            "the receipt's operator does not hold ('scoin', 'settlement')",
          )
          const message = receiptMessage(asset(ctx), ctx.signer, a.amount, a.receipt)
          ensure(
            referenceVerdict({ publicKey: a.operator, message, signature: a.signature }),
            'BAD_RECEIPT',
            'the receipt is not signed by its operator for this holder and amount',
          )
          debit(ctx, a.amount)
          ctx.call('token', 'burn', { asset: asset(ctx), from: ctx.signer, amount: a.amount })
          ctx.state.set(rk, { holder: ctx.signer, amount: a.amount, height: ctx.height })
          bumpStats(ctx, 'converted', a.amount)
          ctx.emit('converted', { amount: a.amount, receipt: a.receipt })
        },
      }),
      expire: method({
        doc: "Burn a holder's expired lots now (anyone; the sweep does it anyway).",
        args: s.object({ holder: s.key() }),
        handler(ctx, a) {
          expireLots(ctx, toHex(a.holder))
        },
      }),
    },
    endBlock(ctx) {
      const cursor = ctx.state.get<{ height: number; index: number }>('sweep') ?? { height: 1, index: 0 }
      let { height, index } = cursor
      let holders = 0
      for (let steps = 0; steps < SWEEP_STEPS && holders < SWEEP_HOLDERS && height <= ctx.height; steps++) {
        const n = ctx.state.get<number>(queueCount(height)) ?? 0
        if (index < n) {
          const holder = ctx.state.get<string>(queueEntry(height, index))
          ctx.state.delete(queueEntry(height, index))
          if (holder !== undefined) expireLots(ctx, holder)
          index++
          holders++
        } else {
          if (n > 0) ctx.state.delete(queueCount(height))
          height++
          index = 0
        }
      }
      if (height !== cursor.height || index !== cursor.index) ctx.state.set('sweep', { height, index })
    },
    queries: {
      balance: query({
        doc: "A holder's miles: { usable, lots (live, [expiresAt, amount]), free, pendingExpiry }.",
        args: s.object({ holder: s.key() }),
        handler(q, a) {
          const hex = toHex(a.holder)
          const lots = q.state.get<Lot[]>(lotsKey(hex)) ?? []
          const live = lots.filter(([at]) => at > q.height)
          const pendingExpiry = lots.reduce((sum, [at, n]) => (at <= q.height ? sum + n : sum), 0)
          const total = q.query<number>('token', 'balance', { asset: asset(q), owner: a.holder })
          const usable = total - pendingExpiry
          const liveSum = live.reduce((sum, [, n]) => sum + n, 0)
          return { usable, lots: live, free: usable - liveSum, pendingExpiry }
        },
      }),
      program: query({
        doc: 'An award program, or null.',
        args: s.object({ program: programId }),
        handler: (q, a) => q.state.get<Program>(programKey(a.program)) ?? null,
      }),
      place: query({
        doc: "A key's allowlist kind ('merchant' | 'agency' | 'campaign') or null.",
        args: s.object({ key: s.key() }),
        handler: (q, a) => q.state.get<PlaceKind>(placeKey(a.key)) ?? null,
      }),
      receipt: query({
        doc: 'A used settlement receipt: { holder, amount, height } or null.',
        args: s.object({ receipt: s.hash() }),
        handler: (q, a) => q.state.get(`receipt/${toHex(a.receipt)}`) ?? null,
      }),
      stats: query({
        doc: 'Running totals: awarded, expired, converted, spent, donated.',
        args: s.object({}),
        handler: (q) =>
          q.state.get<ScoinStats>('stats') ?? { awarded: 0, expired: 0, converted: 0, spent: 0, donated: 0 },
      }),
      config: query({
        doc: '{ asset }: the token asset the service controls.',
        args: s.object({}),
        handler: (q) => q.state.get('config') ?? { asset: DEFAULT_ASSET },
      }),
    },
  }),
)
