/**
 * @cityledger/consensus: a PBFT replica as a pure, deterministic state machine, commit certificates,
 * and a deterministic fault simulator. See README.md for the protocol as implemented.
 */
export {
  Replica,
  createReplica,
  planNewView,
  type Input,
  type Output,
  type TimerId,
  type ReplicaFootprint,
  type ReplicaStatus,
  type NewViewPlan,
  type PlannedReproposal,
} from './replica/index.ts'
export {
  type ReplicaConfig,
  type ResolvedConfig,
  resolveConfig,
  quorumSize,
  maxFaulty,
  NULL_DIGEST,
} from './config.ts'
export { ConsensusError, type ConsensusErrorCode, PENALIZE } from './errors.ts'
export {
  verifyCommitCertificate,
  verifyVoteQuorum,
  type CertificateVerdict,
  type CertificateErrorCode,
} from './certificate.ts'
export {
  type Epoch,
  type ValidatorSchedule,
  genesisSchedule,
  activationHeight,
  epochAt,
  validatorsAt,
  lastHeightOf,
  scheduleChange,
  epochChainId,
  epochOfChainId,
  verifyCertificateAt,
} from './epochs.ts'
export {
  type CertifiedStep,
  type FollowOptions,
  type FollowResult,
  followCertificates,
} from './lightClient.ts'
export { type JournalEntry, type RestoredJournal, restoreFromJournal, compactJournal } from './journal.ts'
export * from './messages/index.ts'
export * from './sim/index.ts'
