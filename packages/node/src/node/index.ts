export { createNode, type CityNode, type NodeOptions } from './createNode.ts'
export { runNode } from './run.ts'
export { PROTOCOL } from './protocols.ts'
export { sandboxedAppServices } from './sandboxedServices.ts'
export {
  runStateSync,
  stateSyncToFolder,
  syncState,
  type StateSyncOptions,
  type StateSyncResult,
  type StateSyncRun,
} from './stateSync.ts'
export { serveStateSync, type StateSyncSource } from './stateSyncServe.ts'
