import {
  type ReadonlyStateView,
  type Schema,
  type StateView,
  type Value,
  ensure,
  equalBytes,
  s,
  toHex,
} from '@cityledger/core'

/**
 * The rules of governance that do not depend on the transaction: the parameter table, the payload
 * schemas of each proposal kind, validator-set arithmetic and the activation timelines. Pure functions
 * over their arguments and the service's own state; the service (../governance.ts) wires them in.
 */

/** Most governing members. */
export const MAX_MEMBERS = 32
/** A validator-set change never leaves fewer validators than this (3f + 1 with f = 1). */
export const MIN_VALIDATORS = 4
/** Most validators in a set. */
export const MAX_VALIDATORS = 128
/** Most add/remove/replace operations in one validator-set proposal. */
export const MAX_VALIDATOR_CHANGES = 8
/** Most parameters one parameter proposal changes. */
export const MAX_PARAMETER_CHANGES = 16
/** Most proposals open at once (bounds the work of a membership change and of the expiry hook). */
export const MAX_OPEN_PROPOSALS = 64

/** One settable parameter: its range (inclusive) and the value it has until governance changes it. */
export interface ParameterSpec {
  min: number
  max: number
  default: number
  doc: string
}

/**
 * Every parameter governance may set, with its allowed range. A name outside this table is refused
 * (UNKNOWN_PARAMETER), a value outside its range too (PARAMETER_OUT_OF_RANGE). The consensus values
 * mirror the genesis file's `consensus` section; the node does not read them from here yet.
 */
export const PARAMETERS: Readonly<Record<string, ParameterSpec>> = Object.freeze({
  'consensus.maxBlockTxs': { min: 1, max: 100_000, default: 5000, doc: 'most txs in a block' },
  'consensus.maxBlockBytes': {
    min: 1024,
    max: 64 * 1024 * 1024,
    default: 8 * 1024 * 1024,
    doc: 'most bytes of txs in a block',
  },
  'consensus.blockIntervalMs': {
    min: 10,
    max: 60_000,
    default: 200,
    doc: 'how long a primary waits for txs before proposing, ms',
  },
  'consensus.viewChangeTimeoutMs': {
    min: 100,
    max: 600_000,
    default: 3000,
    doc: 'base view-change timeout, ms',
  },
  'governance.minActivationDelay': {
    min: 1,
    max: 1_000_000,
    default: 16,
    doc: 'blocks between the last height a proposal can execute (its expiry) and its activation',
  },
  'governance.maxProposalLifetime': {
    min: 1,
    max: 10_000_000,
    default: 100_000,
    doc: 'most blocks between a proposal and its expiry',
  },
  'voting.petitionDebate': { min: 1, max: 100_000_000, default: 100, doc: 'ballots for a debate' },
  'voting.petitionMayorAnswer': {
    min: 1,
    max: 100_000_000,
    default: 1000,
    doc: "ballots for the mayor's answer",
  },
})

/** Checks a parameter name and value against the table; returns the value. */
export function checkParameter(name: string, value: number, field: string): number {
  const spec = Object.hasOwn(PARAMETERS, name) ? PARAMETERS[name] : undefined
  ensure(spec, 'UNKNOWN_PARAMETER', `${field}: no parameter ${name}`, { name })
  ensure(
    Number.isSafeInteger(value) && value >= spec.min && value <= spec.max,
    'PARAMETER_OUT_OF_RANGE',
    `${field}: ${name} must be ${spec.min}..${spec.max}, not ${value}`,
    { name, value, min: spec.min, max: spec.max },
  )
  return value
}

/** The kinds of proposal. */
export type ProposalKind = 'validators' | 'upgrade' | 'parameters' | 'governance'

/** One operation on the validator set. */
export type ValidatorChange =
  | { op: 'add'; key: Uint8Array }
  | { op: 'remove'; key: Uint8Array }
  | { op: 'replace'; key: Uint8Array; with: Uint8Array }

const SERVICE_NAME = /^[a-z][a-z0-9_-]{0,63}$/
const VERSION = /^\d{1,9}\.\d{1,9}\.\d{1,9}(?:[-+][0-9A-Za-z.-]{1,40})?$/
const PARAMETER_NAME = /^[a-z][A-Za-z0-9]*\.[a-z][A-Za-z0-9]*$/

/** The payload schema of each kind (BAD_ARGS names the failing field). */
export const PAYLOADS = {
  validators: s.object({
    changes: s.array(
      s.variant('op', {
        add: { key: s.key() },
        remove: { key: s.key() },
        replace: { key: s.key(), with: s.key() },
      }),
      { min: 1, max: MAX_VALIDATOR_CHANGES },
    ),
  }),
  upgrade: s.object({
    service: s.string({ min: 1, max: 64, pattern: SERVICE_NAME }),
    version: s.string({ min: 5, max: 72, pattern: VERSION }),
    codeHash: s.hash(),
  }),
  parameters: s.object({
    changes: s.array(
      s.object({ name: s.string({ min: 3, max: 64, pattern: PARAMETER_NAME }), value: s.uint() }),
      { min: 1, max: MAX_PARAMETER_CHANGES },
    ),
  }),
  governance: s.object({
    members: s.array(s.key(), { min: 1, max: MAX_MEMBERS }),
    threshold: s.uint({ min: 1 }),
  }),
} satisfies Record<ProposalKind, Schema<unknown>>

export type UpgradePayload = { service: string; version: string; codeHash: Uint8Array }
export type ParametersPayload = { changes: { name: string; value: number }[] }
export type MembershipPayload = { members: Uint8Array[]; threshold: number }

/** A membership: distinct keys, 1 <= threshold <= members. `code` is the error code for a duplicate. */
export function checkMembership(
  members: readonly Uint8Array[],
  threshold: number,
  field: string,
  errorCode: string,
): void {
  ensure(members.length >= 1, errorCode, `${field}: at least one member`)
  ensure(members.length <= MAX_MEMBERS, errorCode, `${field}: at most ${MAX_MEMBERS} members`)
  const seen = new Set<string>()
  for (const [i, m] of members.entries()) {
    const h = toHex(m)
    ensure(!seen.has(h), 'DUPLICATE_MEMBER', `${field}[${i}]: ${h} is listed twice`, { member: h })
    seen.add(h)
  }
  ensure(
    Number.isSafeInteger(threshold) && threshold >= 1 && threshold <= members.length,
    'BAD_THRESHOLD',
    `threshold must be 1..${members.length} (the number of members), not ${threshold}`,
    { threshold, members: members.length },
  )
}

/** Checks a parameter payload: known names, values in range, each name once. */
export function checkParameters(p: ParametersPayload): void {
  const seen = new Set<string>()
  for (const [i, c] of p.changes.entries()) {
    ensure(!seen.has(c.name), 'DUPLICATE_PARAMETER', `changes[${i}]: ${c.name} is set twice`)
    seen.add(c.name)
    checkParameter(c.name, c.value, `changes[${i}]`)
  }
}

const has = (set: readonly Uint8Array[], k: Uint8Array) => set.some((x) => equalBytes(x, k))

/**
 * The set after `changes`, applied in order to `set`: an added key must be new (DUPLICATE_VALIDATOR),
 * a removed or replaced key must be there (NO_SUCH_VALIDATOR) and is gone afterwards, a replacement key
 * must be new; the result keeps at least MIN_VALIDATORS when a change shrinks it (TOO_FEW_VALIDATORS)
 * and at most MAX_VALIDATORS (TOO_MANY_VALIDATORS). Order is kept: a replacement takes the old key's
 * place, an addition goes last.
 */
export function applyValidatorChanges(
  set: readonly Uint8Array[],
  changes: readonly ValidatorChange[],
): Uint8Array[] {
  let out = [...set]
  for (const [i, c] of changes.entries()) {
    const f = `changes[${i}]`
    if (c.op === 'add') {
      ensure(!has(out, c.key), 'DUPLICATE_VALIDATOR', `${f}: ${toHex(c.key)} is already a validator`)
      ensure(
        out.length < MAX_VALIDATORS,
        'TOO_MANY_VALIDATORS',
        `${f}: the set would exceed ${MAX_VALIDATORS}`,
      )
      out.push(c.key)
      continue
    }
    ensure(has(out, c.key), 'NO_SUCH_VALIDATOR', `${f}: ${toHex(c.key)} is not a validator`)
    if (c.op === 'remove') {
      ensure(
        out.length - 1 >= MIN_VALIDATORS,
        'TOO_FEW_VALIDATORS',
        `${f}: removing ${toHex(c.key)} would leave ${out.length - 1} validators (at least ${MIN_VALIDATORS})`,
      )
      out = out.filter((x) => !equalBytes(x, c.key))
    } else {
      ensure(
        !has(out, c.with),
        'DUPLICATE_VALIDATOR',
        `${f}: the replacement ${toHex(c.with)} is already a validator`,
      )
      out = out.map((x) => (equalBytes(x, c.key) ? c.with : x))
    }
  }
  return out
}

/**
 * A timeline: values that take effect at increasing activation heights, stored as `<prefix>n` (the
 * count) and `<prefix><seq>` = { activationHeight, value, proposal }. `at(h)` finds the last entry
 * active at h by binary search, so a query reads O(log n) keys whatever the history's length.
 */
export interface TimelineEntry {
  activationHeight: number
  value: Value
  /** The proposal that scheduled it, or null for a genesis value. */
  proposal: number | null
}

const pad = (n: number, width: number) => String(n).padStart(width, '0')

export function timelineLength(state: ReadonlyStateView, prefix: string): number {
  return state.get<number>(`${prefix}n`) ?? 0
}

export function timelineEntry(state: ReadonlyStateView, prefix: string, i: number): TimelineEntry {
  const e = state.get<Record<string, Value>>(`${prefix}${pad(i, 8)}`)
  if (e === undefined) throw new Error(`invariant broken: timeline ${prefix} has no entry ${i}`)
  return e as unknown as TimelineEntry
}

/** The last entry, or undefined for an empty timeline. */
export function timelineLast(state: ReadonlyStateView, prefix: string): TimelineEntry | undefined {
  const n = timelineLength(state, prefix)
  return n === 0 ? undefined : timelineEntry(state, prefix, n - 1)
}

/** Appends an entry; its activation height must be above the last one's (checked by the caller). */
export function timelineAppend(state: StateView, prefix: string, e: TimelineEntry): void {
  const n = timelineLength(state, prefix)
  const last = timelineLast(state, prefix)
  if (last && last.activationHeight >= e.activationHeight)
    throw new Error(`invariant broken: timeline ${prefix} activations must increase`)
  state.set(`${prefix}${pad(n, 8)}`, e as unknown as Value)
  state.set(`${prefix}n`, n + 1)
}

/** The entry in effect at `height` (the last with activationHeight <= height), or undefined. */
export function timelineAt(
  state: ReadonlyStateView,
  prefix: string,
  height: number,
): TimelineEntry | undefined {
  let lo = 0
  let hi = timelineLength(state, prefix) - 1
  let found: TimelineEntry | undefined
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    const e = timelineEntry(state, prefix, mid)
    if (e.activationHeight <= height) {
      found = e
      lo = mid + 1
    } else hi = mid - 1
  }
  return found
}
