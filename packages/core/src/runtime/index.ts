export * from './schema.ts'
export * from './service.ts'
export * from './layer.ts'
export {
  createRuntime,
  type Runtime,
  type RuntimeOptions,
  type TxResult,
  type ServiceEvent,
  type BlockExecution,
  type QueryResult,
} from './executor.ts'
export type { HookCounters, HookRecord } from './hooks.ts'
export type { ServiceUpgrade, VersionReport } from './versions.ts'
export {
  type ValidatorChange,
  MAX_SCHEDULED_VALIDATORS,
  validatorAuthorityKey,
  validatorChangeKey,
  validatorCountKey,
} from './validators.ts'
export { SERVICE_SDK } from './sdk.ts'
export {
  hardenProcess,
  isProcessHardened,
  loadServiceFolder,
  loadServiceModules,
  moduleFunctor,
  type SandboxOptions,
} from './sandbox.ts'
