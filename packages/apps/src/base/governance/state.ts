import {
  type ReadonlyStateView,
  type StateView,
  type Value,
  ServiceError,
  ensure,
  equalBytes,
} from '@cityledger/core'
import { PARAMETERS, type ProposalKind, timelineAt, timelineLast } from './rules.ts'

/**
 * The records of governance and how they are read: keys, the proposal and membership records, and the
 * timelines that answer "what is in effect at height h". Reads only single keys (no prefix listing), so
 * every state backend serves them.
 */

export type ProposalStatus = 'open' | 'executed' | 'expired' | 'cancelled'

/** A stored proposal. `activationHeight` is null for a membership change (it applies when executed). */
export interface ProposalRecord {
  id: number
  kind: ProposalKind
  payload: Value
  proposer: Uint8Array
  /** The membership it was created under; approvals come from its members only. */
  epoch: number
  createdAt: number
  expiresAt: number
  activationHeight: number | null
  /** Distinct member keys, in the order they approved. */
  approvals: Uint8Array[]
  status: ProposalStatus
  /** Height it was executed, expired or cancelled at; null while open. */
  closedAt: number | null
}

/** An executed service upgrade. */
export interface UpgradeRecord {
  service: string
  version: string
  codeHash: Uint8Array
  activationHeight: number
  proposal: number
}

export interface Meta {
  epoch: number
  members: Uint8Array[]
  threshold: number
  nextId: number
  /** The open proposals (at most MAX_OPEN_PROPOSALS), oldest first: the expiry hook's queue. */
  open: { id: number; expiresAt: number }[]
}

export type View = ReadonlyStateView | StateView
export type Rec = Record<string, Value>

export const pad = (n: number, width: number) => String(n).padStart(width, '0')
export const propKey = (id: number) => `prop/${pad(id, 12)}`
export const VSET = 'vset/'
export const paramTimeline = (name: string) => `param/${name}/`
export const upgradeTimeline = (service: string) => `upg/${service}/`
/** Most services with upgrades (bounds the reads of the upgrade queries). */
export const MAX_UPGRADED_SERVICES = 64

export function meta(state: View): Meta {
  return (
    (state.get<Rec>('meta') as unknown as Meta | undefined) ?? {
      epoch: 0,
      members: [],
      threshold: 0,
      nextId: 0,
      open: [],
    }
  )
}

export const isMember = (m: Meta, key: Uint8Array) => m.members.some((k) => equalBytes(k, key))

export function getProposal(state: View, id: number): ProposalRecord {
  const p = state.get<Rec>(propKey(id)) as unknown as ProposalRecord | undefined
  ensure(p, 'NO_SUCH_PROPOSAL', `no proposal ${id}`)
  return p
}

/** The status a reader sees: an open proposal past its expiry is expired even before the hook ran. */
export function statusAt(p: ProposalRecord, height: number): ProposalStatus {
  return p.status === 'open' && height > p.expiresAt ? 'expired' : p.status
}

/** A parameter's value in effect at `height`. */
export function parameterAt(state: View, name: string, height: number): number {
  const spec = PARAMETERS[name]
  if (!spec) throw new ServiceError('UNKNOWN_PARAMETER', `no parameter ${name}`)
  const e = timelineAt(state, paramTimeline(name), height)
  return e ? (e.value as number) : spec.default
}

export function validatorSetAt(state: View, height: number): Uint8Array[] {
  return (timelineAt(state, VSET, height)?.value as Uint8Array[] | undefined) ?? []
}

/** The validator set after every executed change (what a new change applies to). */
export function lastValidatorSet(state: View): Uint8Array[] {
  return (timelineLast(state, VSET)?.value as Uint8Array[] | undefined) ?? []
}

export function upgradedServices(state: View): string[] {
  return state.get<string[]>('upgraded') ?? []
}

/** The upgrades that activate at exactly `height`, by service name. */
export function upgradesAt(state: View, height: number): Value[] {
  const out: Value[] = []
  for (const svc of [...upgradedServices(state)].sort()) {
    const e = timelineAt(state, upgradeTimeline(svc), height)
    if (e && e.activationHeight === height) out.push(e.value)
  }
  return out
}

/** Executed upgrades that activate above `height`, earliest first (one per service at most). */
export function pendingUpgrades(state: View, height: number): Value[] {
  const out: UpgradeRecord[] = []
  for (const svc of upgradedServices(state)) {
    const e = timelineLast(state, upgradeTimeline(svc))
    if (e && e.activationHeight > height) out.push(e.value as unknown as UpgradeRecord)
  }
  out.sort((a, b) => a.activationHeight - b.activationHeight || (a.service < b.service ? -1 : 1))
  return out as unknown as Value[]
}
