/** The Seoul city services. */
export { scoin, DEFAULT_ASSET, MAX_LOTS, SWEEP_STEPS, SWEEP_HOLDERS, type Program, type ScoinStats, type Lot, type PlaceKind, type ScoinErrorCode } from './scoin.ts'
export { voting, nullifierOf, phaseOf, PETITION_DEBATE, PETITION_MAYOR_ANSWER, MAX_OPTIONS, type PollRecord, type PollPhase, type PollMode, type Electorate, type VotingErrorCode } from './voting.ts'
export { certificates, CERTIFICATE_TYPES, CITIZEN_CARD, CREDENTIAL_TYPES, roleFor, type CertificateType, type CertificateStatus, type CertificateRecord, type VerifyResult, type CertificatesErrorCode } from './certificates.ts'
