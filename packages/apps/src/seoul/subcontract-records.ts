import type { Value } from '@cityledger/core'

/** The records and error codes of the subcontract service (types only; the service is subcontract.ts). */

/** Error codes of subcontract (besides the runtime's UNAUTHORIZED and BAD_ARGS, and token's). */
export type SubcontractErrorCode =
  | 'UNAUTHORIZED'
  | 'ALREADY_EXISTS'
  | 'NOT_FOUND'
  | 'BAD_ASSET'
  | 'BAD_PARTY'
  | 'BAD_STATE'
  | 'CONTRACT_CLOSED'
  | 'DUPLICATE_MILESTONE'
  | 'PAYOUT_MISMATCH'
  | 'OVERFUNDED'
  | 'OVER_COMMITTED'
  | 'ALREADY_CERTIFIED'
  | 'NOT_CERTIFIED'
  | 'ALREADY_PAID'
  | 'INSUFFICIENT_ESCROW'
  | 'CONFLICT_OF_INTEREST'
  | 'OUTSTANDING'
  | 'ALREADY_SIGNED'
  | 'LIMIT'
  | 'OVERFLOW'

/** One escrow funding: a token hold taken from the client. */
export interface Funding {
  [k: string]: Value
  holdId: string
  amount: number
  remaining: number
}

/** A public works contract. Amounts are in the asset's smallest unit. */
export interface ContractRecord {
  [k: string]: Value
  id: string
  client: Uint8Array
  prime: Uint8Array
  asset: string
  value: number
  /** Sum of the totals of approved subcontracts. */
  committed: number
  escrowed: number
  released: number
  refunded: number
  holds: Funding[]
  subs: string[]
  /** Approved subcontracts not yet completed. */
  open: number
  status: 'open' | 'closed'
  terms: Uint8Array
  createdAt: number
}

export interface PayoutLine {
  [k: string]: Value
  to: Uint8Array
  amount: number
}

export type MilestoneStatus = 'pending' | 'certified' | 'paid'

export interface SubMilestone {
  [k: string]: Value
  id: string
  amount: number
  payouts: PayoutLine[]
  status: MilestoneStatus
  certifiedAt: number | null
  certifiedBy: Uint8Array | null
  report: Uint8Array | null
  paidAt: number | null
}

export type SubcontractStatus = 'proposed' | 'signed' | 'active' | 'completed' | 'cancelled' | 'terminated'

export interface SubcontractRecord {
  [k: string]: Value
  contract: string
  sub: string
  subcontractor: Uint8Array
  terms: Uint8Array
  milestones: SubMilestone[]
  total: number
  paid: number
  status: SubcontractStatus
  primeSigned: boolean
  subcontractorSigned: boolean
  approvedAt: number | null
  createdAt: number
  /** Who asked to terminate the active subcontract: [client, prime, subcontractor]. */
  ending: boolean[]
}
