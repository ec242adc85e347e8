export { createNode, type CityNode, type NodeOptions } from './createNode.ts'
export { runNode } from './run.ts'
export { PROTOCOL } from './protocols.ts'
export { sandboxedAppServices } from './sandboxedServices.ts'
