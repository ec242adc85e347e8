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
