export * from './ledger.ts'
export * from './storeAdapter.ts'
