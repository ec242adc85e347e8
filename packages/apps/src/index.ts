/** @cityledger/apps: the city services. */
export * from './base/index.ts'
export * from './all.ts'
export * from './seoul/index.ts'
