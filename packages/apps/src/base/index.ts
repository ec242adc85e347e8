import type { ServiceDefinition } from '@cityledger/core'
import { agreement } from './agreement.ts'
import { consent } from './consent.ts'
import { governance } from './governance.ts'
import { identity } from './identity.ts'
import { registry } from './registry.ts'
import { token } from './token.ts'

/**
 * The base services (Seoul's "standard platform"), in dependency order. City services build on them
 * through `ctx.call('<service>', '<export>', args)` after naming them in `dependencies`.
 *
 * @example
 * const chain = createTestChain({ services: [...baseServices, myService], genesis: { identity: { admins: [{ key, scopes: ['*'] }] } } })
 */
export const baseServices: ServiceDefinition[] = [identity, token, registry, consent, agreement, governance]

export { agreement, consent, governance, identity, registry, token }

export { parameterAt } from './governance.ts'
export type {
  GovernanceErrorCode,
  GovernanceGenesis,
  ProposalRecord,
  ProposalStatus,
  UpgradeRecord,
} from './governance.ts'
export {
  MAX_MEMBERS,
  MAX_OPEN_PROPOSALS,
  MAX_VALIDATORS,
  MAX_VALIDATOR_CHANGES,
  MIN_VALIDATORS,
  PARAMETERS,
} from './governance/rules.ts'
export type { ParameterSpec, ProposalKind, ValidatorChange } from './governance/rules.ts'
export type {
  AgreementErrorCode,
  AgreementRecord,
  AgreementStatus,
  Funding,
  Milestone,
  Payout,
} from './agreement.ts'
export { MAX_HOLDS, MAX_MILESTONES, MAX_PARTIES, MAX_PAYOUTS } from './agreement.ts'
export type { AccessEntry, ConsentErrorCode, GrantRecord } from './consent.ts'
export { DEFAULT_PURPOSES, PURPOSE_RE, grantActiveAt } from './consent.ts'
export type { IdentityErrorCode, IdentityGenesis, OrgRecord } from './identity.ts'
export { CITY_SCOPE, MAX_ORG_KEYS, MAX_ROLES_PER_KEY } from './identity.ts'
export { hmacSha256, pseudonymCommitment, relationshipKey, vehicleIdOf } from './pseudonym.ts'
export type { DocRecord, DocStatus, RegistryErrorCode } from './registry.ts'
export type { AssetRecord, HoldRecord, TokenErrorCode, TransferPolicy } from './token.ts'
