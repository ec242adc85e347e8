export * from './json.ts'
export * from './genesis.ts'
export * from './nodeConfig.ts'
export * from './validate.ts'
