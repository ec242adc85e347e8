export {
  runSimulation,
  livenessBound,
  FAULT_KINDS,
  BYZANTINE_KINDS,
  type FaultKind,
  type LinkFault,
  type PermanentCrash,
  type SimOptions,
  type SimResult,
  type Violation,
  type ViolationKind,
} from './simulator.ts'
export { NODE_LIMITS, PROFILES, type ProfileName, type SimProfile } from './profile.ts'
export { simCrypto, type SimCrypto, type SimKey } from './crypto.ts'
export { sweep, type SweepOptions, type SweepSummary } from './sweep.ts'
export {
  runReconfiguration,
  type PlannedChange,
  type ReconfigOptions,
  type ReconfigResult,
} from './reconfig.ts'
