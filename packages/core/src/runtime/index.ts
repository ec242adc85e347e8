export * from './schema.ts'
export * from './service.ts'
