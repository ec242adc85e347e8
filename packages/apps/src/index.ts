/** @cityledger/apps: the city services. */
export * from './base/index.ts'
