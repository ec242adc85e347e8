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
import { hex, refuseRevokedSigners } from '../base/common.ts'

/**
 * Seoul service 4: used-car trust.
 *
 * A vehicle is known only by a keyed id of its VIN, `vehicle` = HMAC(registry key, VIN) (`vehicleIdOf`,
 * src/base/pseudonym.ts), computed by the vehicle registry agency, which alone holds the key and registers
 * each id once (role ('usedcar','registrar'), `register`). One car has one id, whoever asks (an insurer
 * asks the registry, not the holder), so no dealer can open a second, clean history with a salt of its
 * own; without the key nobody tells a VIN from its id. Holders are pseudonymous keys (per-relationship
 * keys, see identity). Its history is an append-only list of entries, one per successful tx:
 *   purchase   a dealer (role ('usedcar','dealer')) takes a vehicle into the system; it becomes the holder
 *   inspection a licensed inspector (role ('usedcar','inspector')) records a report hash and pass/fail
 *   accident   an insurer (role ('usedcar','insurer')) records a claim report hash and its severity
 *   meterSwap  an inspector records an odometer replacement: the old meter's last reading and the new one's
 *   sale       the buyer accepts the holder's offer (two steps: `offer`, then `accept`)
 *   correction the author of the last reading (purchase, inspection, accident) corrects a mistyped
 *              odometer value, never below the reading before that entry; the mistake stays on record
 * Odometer readings never go down except across a meterSwap entry; `distance` adds the readings of
 * replaced meters, so it never decreases at all. A vehicle may be listed or offered for sale only with a
 * passed inspection made within `inspectionValidityBlocks` and after its last accident and meter swap;
 * `accept` checks that again, so a buyer never takes a car whose record changed under the offer.
 *
 * State (namespace `usedcar/`):
 *   config                   -> { inspectionValidityBlocks, offerValidityBlocks }
 *   reg/<vehicleHex>         -> { by, height }: vehicle ids the registry registered
 *   car/<vehicleHex>         -> {@link VehicleRecord}
 *   hist/<vehicleHex>/<i>    -> {@link HistoryEntry}, i = 0..entries-1 (written once, never changed)
 * Each tx writes one history entry and the vehicle record: growth per tx is bounded.
 */

/** Error codes of usedcar (besides the runtime's UNAUTHORIZED and BAD_ARGS). */
export type UsedcarErrorCode =
  | 'UNAUTHORIZED'
  | 'ALREADY_REGISTERED'
  | 'NOT_FOUND'
  | 'NOT_HOLDER'
  | 'ODOMETER_ROLLBACK'
  | 'INSPECTION_REQUIRED'
  | 'CONFLICT_OF_INTEREST'
  | 'NO_OFFER'
  | 'NOT_BUYER'
  | 'OFFER_EXPIRED'
  | 'SELF_SALE'
  | 'BAD_GENESIS'
  | 'NOT_REGISTERED'
  | 'NOT_AUTHOR'
  | 'NOT_CORRECTABLE'

export type EntryKind = 'purchase' | 'inspection' | 'accident' | 'meterSwap' | 'sale' | 'correction'
export type Severity = 'minor' | 'major' | 'total-loss'

/** One history entry. `odometer` is the meter reading after the event (km). */
export interface HistoryEntry {
  [k: string]: Value
  kind: EntryKind
  height: number
  by: Uint8Array
  odometer: number
  /** Hash of the off-chain report (inspection, claim, swap work order, purchase or sale contract). */
  report: Uint8Array | null
  passed: boolean | null
  severity: Severity | null
  /** meterSwap: the replaced meter's last reading; correction: the reading it replaces. */
  oldReading: number | null
  /** correction: the index of the entry whose reading it corrects. */
  corrects: number | null
  /** sale: seller and buyer. */
  from: Uint8Array | null
  to: Uint8Array | null
}

export interface Offer {
  [k: string]: Value
  buyer: Uint8Array
  odometer: number
  price: Uint8Array | null
  height: number
  expiresAt: number
}

export interface VehicleRecord {
  [k: string]: Value
  vehicle: Uint8Array
  holder: Uint8Array
  /** Current meter reading. */
  odometer: number
  /** Sum of the last readings of replaced meters: total distance = distanceBase + odometer. */
  distanceBase: number
  entries: number
  registeredAt: number
  /** Height of the last passed inspection; null when none, or when an accident, a meter swap or a failed inspection came after it. */
  inspectedAt: number | null
  lastAccidentAt: number | null
  lastSwapAt: number | null
  totalLoss: boolean
  listed: boolean
  offer: Offer | null
}

export const DEFAULT_INSPECTION_VALIDITY = 1000
export const DEFAULT_OFFER_VALIDITY = 100
/** The highest odometer reading accepted (km); guards against typos that would lock a car's history. */
export const MAX_ODOMETER = 10_000_000

const SCOPE = 'usedcar'
const carKey = (v: Uint8Array) => `car/${hex(v)}`
const histKey = (v: Uint8Array, i: number) => `hist/${hex(v)}/${i}`
const regKey = (v: Uint8Array) => `reg/${hex(v)}`
/** Entries whose reading may be corrected by their author. */
const CORRECTABLE: readonly EntryKind[] = ['purchase', 'inspection', 'accident']

const odometer = s.uint({ max: MAX_ODOMETER })

interface Config {
  [k: string]: Value
  inspectionValidityBlocks: number
  offerValidityBlocks: number
}

type Reader = { state: { get(k: string): Value | undefined }; height: number }

function config(ctx: Reader): Config {
  return (
    (ctx.state.get('config') as Config | undefined) ?? {
      inspectionValidityBlocks: DEFAULT_INSPECTION_VALIDITY,
      offerValidityBlocks: DEFAULT_OFFER_VALIDITY,
    }
  )
}

function hasRole(ctx: TxContext, role: string): boolean {
  return ctx.call<boolean>('identity', 'hasRole', { scope: SCOPE, role, key: ctx.signer }) === true
}

function getCar(ctx: Reader, vehicle: Uint8Array): VehicleRecord {
  const v = ctx.state.get(carKey(vehicle)) as VehicleRecord | undefined
  ensure(v, 'NOT_FOUND', 'no such vehicle')
  return { ...v }
}

/** Why the vehicle may not be put up for sale now, or null. */
export function saleBlocker(v: VehicleRecord, height: number, validity: number): string | null {
  if (v.totalLoss) return 'the vehicle is a total loss'
  if (v.inspectedAt === null) {
    if (v.lastAccidentAt !== null || v.lastSwapAt !== null)
      return 'no passed inspection since the last accident or meter swap'
    return 'no passed inspection on record'
  }
  if (height >= v.inspectedAt + validity)
    return `the last passed inspection (height ${v.inspectedAt}) is older than ${validity} blocks`
  return null
}

function requireSaleable(ctx: Reader, v: VehicleRecord): void {
  const why = saleBlocker(v, ctx.height, config(ctx).inspectionValidityBlocks)
  ensure(why === null, 'INSPECTION_REQUIRED', why ?? '')
}

function requireReading(v: VehicleRecord, reading: number): void {
  ensure(
    reading >= v.odometer,
    'ODOMETER_ROLLBACK',
    `reading ${reading} < recorded ${v.odometer} (a meter swap must be recorded first)`,
    { recorded: v.odometer, reading },
  )
}

/** Appends one entry and saves the vehicle: the only way history grows. */
function append(
  ctx: TxContext,
  v: VehicleRecord,
  e: Pick<HistoryEntry, 'kind' | 'odometer'> &
    Partial<Pick<HistoryEntry, 'report' | 'passed' | 'severity' | 'oldReading' | 'corrects' | 'from' | 'to'>>,
): void {
  const entry: HistoryEntry = {
    report: null,
    passed: null,
    severity: null,
    oldReading: null,
    corrects: null,
    from: null,
    to: null,
    ...e,
    height: ctx.height,
    by: ctx.signer,
  }
  ctx.state.set(histKey(v.vehicle, v.entries), entry)
  const next: VehicleRecord = { ...v, odometer: entry.odometer, entries: v.entries + 1 }
  ctx.state.set(carKey(v.vehicle), next)
  ctx.emit(entry.kind, { vehicle: v.vehicle, index: v.entries, odometer: entry.odometer })
}

function parseGenesis(c: Value | undefined): Config {
  const cfg = (c ?? {}) as Record<string, Value>
  const int = (x: Value | undefined, d: number, field: string): number => {
    const v = x ?? d
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
      throw new ServiceError('BAD_GENESIS', `usedcar genesis: ${field} must be an integer >= 1`)
    return v
  }
  if (typeof cfg !== 'object' || Array.isArray(cfg) || cfg instanceof Uint8Array)
    throw new ServiceError('BAD_GENESIS', 'usedcar genesis: expected a map')
  return {
    inspectionValidityBlocks: int(
      cfg.inspectionValidityBlocks,
      DEFAULT_INSPECTION_VALIDITY,
      'inspectionValidityBlocks',
    ),
    offerValidityBlocks: int(cfg.offerValidityBlocks, DEFAULT_OFFER_VALIDITY, 'offerValidityBlocks'),
  }
}

export const usedcar = refuseRevokedSigners(
  defineService({
    name: 'usedcar',
    version: '1.0.0',
    dependencies: ['identity'],
    genesis(ctx, c) {
      ctx.state.set('config', parseGenesis(c))
    },
    methods: {
      register: method({
        doc: "Register the keyed id of a vehicle (HMAC of its VIN under the registry's key), once. Role ('usedcar','registrar').",
        args: s.object({ vehicle: s.hash() }),
        auth: (ctx) => hasRole(ctx, 'registrar'),
        handler(ctx, a) {
          ensure(!ctx.state.has(regKey(a.vehicle)), 'ALREADY_REGISTERED', 'vehicle id already registered')
          ctx.state.set(regKey(a.vehicle), { by: ctx.signer, height: ctx.height })
          ctx.emit('registered', { vehicle: a.vehicle })
        },
      }),
      correct: method({
        doc: 'Correct the odometer reading of the last reading entry (purchase, inspection, accident, or a correction of it). Its author; not below the reading before that entry.',
        args: s.object({ vehicle: s.hash(), odometer, report: s.hash() }),
        handler(ctx, a) {
          const v = getCar(ctx, a.vehicle)
          const last = ctx.state.get(histKey(a.vehicle, v.entries - 1)) as HistoryEntry
          const t = last.kind === 'correction' && last.corrects !== null ? last.corrects : v.entries - 1
          const target = ctx.state.get(histKey(a.vehicle, t)) as HistoryEntry
          ensure(
            CORRECTABLE.includes(target.kind),
            'NOT_CORRECTABLE',
            `a ${target.kind} entry is not corrected`,
          )
          ensure(equalBytes(target.by, ctx.signer), 'NOT_AUTHOR', 'only the author of the entry corrects it')
          const before = t === 0 ? 0 : (ctx.state.get(histKey(a.vehicle, t - 1)) as HistoryEntry).odometer
          ensure(
            a.odometer >= before,
            'ODOMETER_ROLLBACK',
            `corrected reading ${a.odometer} < ${before}, the reading before entry ${t}`,
            { before, reading: a.odometer },
          )
          // The reading changed under any listing or offer: withdraw them.
          const next: VehicleRecord = { ...v, listed: false, offer: null }
          append(ctx, next, {
            kind: 'correction',
            odometer: a.odometer,
            oldReading: v.odometer,
            corrects: t,
            report: a.report,
          })
        },
      }),
      purchase: method({
        doc: "Take a vehicle into the system as its first holder, with its odometer reading. Role ('usedcar','dealer').",
        args: s.object({ vehicle: s.hash(), odometer, report: s.optional(s.hash()) }),
        auth: (ctx) => hasRole(ctx, 'dealer'),
        handler(ctx, a) {
          ensure(
            ctx.state.has(regKey(a.vehicle)),
            'NOT_REGISTERED',
            "unknown vehicle id: the vehicle registry registers each car's one id",
          )
          ensure(
            !ctx.state.has(carKey(a.vehicle)),
            'ALREADY_REGISTERED',
            'vehicle already has a history: buy it through offer/accept',
          )
          const v: VehicleRecord = {
            vehicle: a.vehicle,
            holder: ctx.signer,
            odometer: a.odometer,
            distanceBase: 0,
            entries: 0,
            registeredAt: ctx.height,
            inspectedAt: null,
            lastAccidentAt: null,
            lastSwapAt: null,
            totalLoss: false,
            listed: false,
            offer: null,
          }
          append(ctx, v, { kind: 'purchase', odometer: a.odometer, report: a.report ?? null, to: ctx.signer })
        },
      }),
      inspect: method({
        doc: "Record an inspection (report hash, pass/fail, odometer). Role ('usedcar','inspector'), not the holder.",
        args: s.object({ vehicle: s.hash(), odometer, report: s.hash(), passed: s.bool() }),
        auth: (ctx) => hasRole(ctx, 'inspector'),
        handler(ctx, a) {
          const v = getCar(ctx, a.vehicle)
          ensure(
            !equalBytes(v.holder, ctx.signer),
            'CONFLICT_OF_INTEREST',
            'an inspector does not inspect a vehicle it holds',
          )
          requireReading(v, a.odometer)
          const next: VehicleRecord = { ...v, inspectedAt: a.passed ? ctx.height : v.inspectedAt }
          // A failed inspection withdraws the car from sale until it passes again.
          if (!a.passed) {
            next.inspectedAt = null
            next.listed = false
            next.offer = null
          }
          append(ctx, next, { kind: 'inspection', odometer: a.odometer, report: a.report, passed: a.passed })
        },
      }),
      accident: method({
        doc: "Record an accident (claim report hash, severity, optional odometer). Role ('usedcar','insurer'). Withdraws any listing or offer.",
        args: s.object({
          vehicle: s.hash(),
          severity: s.literal('minor', 'major', 'total-loss'),
          report: s.hash(),
          odometer: s.optional(odometer),
        }),
        auth: (ctx) => hasRole(ctx, 'insurer'),
        handler(ctx, a) {
          const v = getCar(ctx, a.vehicle)
          const reading = a.odometer ?? v.odometer
          requireReading(v, reading)
          const next: VehicleRecord = {
            ...v,
            lastAccidentAt: ctx.height,
            inspectedAt: null,
            listed: false,
            offer: null,
            totalLoss: v.totalLoss || a.severity === 'total-loss',
          }
          append(ctx, next, { kind: 'accident', odometer: reading, report: a.report, severity: a.severity })
        },
      }),
      meterSwap: method({
        doc: "Record an odometer replacement: the old meter's final reading (>= recorded) and the new meter's reading. Role ('usedcar','inspector').",
        args: s.object({ vehicle: s.hash(), oldReading: odometer, newReading: odometer, report: s.hash() }),
        auth: (ctx) => hasRole(ctx, 'inspector'),
        handler(ctx, a) {
          const v = getCar(ctx, a.vehicle)
          ensure(
            !equalBytes(v.holder, ctx.signer),
            'CONFLICT_OF_INTEREST',
            'an inspector does not swap the meter of a vehicle it holds',
          )
          requireReading(v, a.oldReading)
          const next: VehicleRecord = {
            ...v,
            distanceBase: v.distanceBase + a.oldReading,
            lastSwapAt: ctx.height,
            inspectedAt: null,
            listed: false,
            offer: null,
          }
          append(ctx, next, {
            kind: 'meterSwap',
            odometer: a.newReading,
            oldReading: a.oldReading,
            report: a.report,
          })
        },
      }),
      list: method({
        doc: 'Put the vehicle up for sale publicly. Its holder; needs a fresh passed inspection after the last accident and meter swap.',
        args: s.object({ vehicle: s.hash() }),
        handler(ctx, a) {
          const v = getCar(ctx, a.vehicle)
          if (!equalBytes(v.holder, ctx.signer))
            throw new ServiceError('NOT_HOLDER', 'only the holder lists the vehicle')
          requireSaleable(ctx, v)
          ctx.state.set(carKey(a.vehicle), { ...v, listed: true })
          ctx.emit('listed', { vehicle: a.vehicle })
        },
      }),
      offer: method({
        doc: 'Offer the vehicle to a buyer, declaring its odometer (and optionally a price commitment). Its holder; same inspection rule as `list`.',
        args: s.object({ vehicle: s.hash(), buyer: s.key(), odometer, price: s.optional(s.hash()) }),
        handler(ctx, a) {
          const v = getCar(ctx, a.vehicle)
          if (!equalBytes(v.holder, ctx.signer))
            throw new ServiceError('NOT_HOLDER', 'only the holder offers the vehicle')
          ensure(!equalBytes(a.buyer, ctx.signer), 'SELF_SALE', 'the buyer is the holder')
          requireSaleable(ctx, v)
          requireReading(v, a.odometer)
          const offer: Offer = {
            buyer: a.buyer,
            odometer: a.odometer,
            price: a.price ?? null,
            height: ctx.height,
            expiresAt: ctx.height + config(ctx).offerValidityBlocks,
          }
          ctx.state.set(carKey(a.vehicle), { ...v, offer })
          ctx.emit('offered', {
            vehicle: a.vehicle,
            buyer: a.buyer,
            odometer: a.odometer,
            expiresAt: offer.expiresAt,
          })
        },
      }),
      withdraw: method({
        doc: 'Withdraw the listing and any pending offer. Its holder.',
        args: s.object({ vehicle: s.hash() }),
        handler(ctx, a) {
          const v = getCar(ctx, a.vehicle)
          if (!equalBytes(v.holder, ctx.signer))
            throw new ServiceError('NOT_HOLDER', 'only the holder withdraws')
          ctx.state.set(carKey(a.vehicle), { ...v, listed: false, offer: null })
          ctx.emit('withdrawn', { vehicle: a.vehicle })
        },
      }),
      accept: method({
        doc: 'Accept the pending offer: the sale is recorded and the signer becomes the holder. The named buyer, before the offer expires, while the inspection rule still holds.',
        args: s.object({ vehicle: s.hash() }),
        handler(ctx, a) {
          const v = getCar(ctx, a.vehicle)
          ensure(v.offer, 'NO_OFFER', 'no pending offer')
          ensure(equalBytes(v.offer.buyer, ctx.signer), 'NOT_BUYER', 'the offer names another buyer')
          ensure(
            ctx.height < v.offer.expiresAt,
            'OFFER_EXPIRED',
            `offer expired at height ${v.offer.expiresAt}`,
          )
          requireSaleable(ctx, v)
          requireReading(v, v.offer.odometer)
          const next: VehicleRecord = { ...v, holder: ctx.signer, listed: false, offer: null }
          append(ctx, next, {
            kind: 'sale',
            odometer: v.offer.odometer,
            report: v.offer.price,
            from: v.holder,
            to: ctx.signer,
          })
        },
      }),
    },
    queries: {
      vehicle: query({
        doc: 'A vehicle record plus `distance` (distanceBase + odometer) and `saleable`, or null.',
        args: s.object({ vehicle: s.hash() }),
        handler(q, a) {
          const v = q.state.get<VehicleRecord>(carKey(a.vehicle))
          if (!v) return null
          const why = saleBlocker(v, q.height, config(q).inspectionValidityBlocks)
          return {
            ...v,
            distance: v.distanceBase + v.odometer,
            saleable: why === null,
            notSaleableBecause: why,
          }
        },
      }),
      history: query({
        doc: 'History entries [from, from+limit) of a vehicle (limit <= 256).',
        args: s.object({
          vehicle: s.hash(),
          from: s.optional(s.uint()),
          limit: s.optional(s.uint({ min: 1, max: 256 })),
        }),
        handler(q, a) {
          const v = q.state.get<VehicleRecord>(carKey(a.vehicle))
          if (!v) return []
          const from = a.from ?? 0
          const to = Math.min(v.entries, from + (a.limit ?? 256))
          const out: Value[] = []
          for (let i = from; i < to; i++) out.push(q.state.get(histKey(a.vehicle, i))!)
          return out
        },
      }),
      registered: query({
        doc: 'Has the vehicle registry registered this vehicle id?',
        args: s.object({ vehicle: s.hash() }),
        handler: (q, a) => q.state.has(regKey(a.vehicle)),
      }),
      config: query({
        doc: '{ inspectionValidityBlocks, offerValidityBlocks }.',
        args: s.object({}),
        handler: (q) => config(q),
      }),
    },
  }),
)
