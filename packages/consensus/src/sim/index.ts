export {
  runSimulation,
  livenessBound,
  FAULT_KINDS,
  type FaultKind,
  type SimOptions,
  type SimResult,
  type Violation,
  type ViolationKind,
} from './simulator.ts'
export { simCrypto, type SimCrypto, type SimKey } from './crypto.ts'
export { sweep, type SweepOptions, type SweepSummary } from './sweep.ts'
