export * from './hash.ts'
export * from './keys.ts'
export type * from './verifier.ts'
