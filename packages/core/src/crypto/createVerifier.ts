import { VerifierError } from './errors.ts'
import { type NativeVerifierOptions, createNativeVerifier } from './nativeVerifier.ts'
import { createPureVerifier } from './pureVerifier.ts'
import { type VerifierPoolOptions, createVerifierPool } from './verifierPool.ts'
import type { SignatureVerifier } from './verifier.ts'

/** Which verifier: pure JS (`'noble'`), single-thread native (`'native'`) or the worker pool (`'pool'`). */
export type VerifierKind = 'noble' | 'native' | 'pool'

/** Options of `createVerifier`: those of the chosen kind (`'noble'` takes none). */
export type CreateVerifierOptions = NativeVerifierOptions & VerifierPoolOptions

/**
 * One entry point for wiring: all kinds give the same verdicts (the validity rule), they differ only
 * in speed and threads.
 *
 * @example
 * const verifier = await createVerifier('pool', { nodesOnMachine: 4, maxQueue: 16 })
 */
export async function createVerifier(
  kind: VerifierKind,
  opts: CreateVerifierOptions = {},
): Promise<SignatureVerifier> {
  switch (kind) {
    case 'noble':
      return createPureVerifier()
    case 'native':
      return createNativeVerifier(opts)
    case 'pool':
      return createVerifierPool(opts)
    default:
      throw new VerifierError('VERIFIER_BAD_OPTIONS', `unknown verifier kind ${String(kind)}`)
  }
}
