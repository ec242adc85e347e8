export * from './hash.ts'
export * from './keys.ts'
export type * from './verifier.ts'
export * from './validity.ts'
export { VerifierError, type VerifierErrorCode } from './errors.ts'
export { referenceVerdict, createPureVerifier } from './pureVerifier.ts'
export { type NativeBackend, type NativeBackendChoice, loadNativeBackend } from './nativeBackend.ts'
export { type NativeVerifierOptions, createNativeVerifier } from './nativeVerifier.ts'
export {
  type VerifierPool,
  type VerifierPoolOptions,
  type VerifierPoolStats,
  createVerifierPool,
  defaultPoolSize,
} from './verifierPool.ts'
export { type VerifierKind, type CreateVerifierOptions, createVerifier } from './createVerifier.ts'
