import { assertCheck, closedError } from './errors.ts'
import { type NativeBackendChoice, loadNativeBackend, nativeVerifyFunction } from './nativeBackend.ts'
import type { SignatureVerifier } from './verifier.ts'

/** Options of `createNativeVerifier`. */
export interface NativeVerifierOptions {
  /** `'auto'` (default): libsodium when it loads, else OpenSSL. Force one to test both. */
  backend?: NativeBackendChoice
  /** OpenSSL only: how many public keys keep a ready KeyObject (default 4096). */
  keyCacheSize?: number
}

/**
 * A single-thread native verifier, named after its backend (`'sodium'` or `'openssl'`). Every check
 * runs `precheck` first and then the library, so its verdicts are the validity rule's whatever
 * library version is linked. `verifyBatch` runs on the calling thread; use the pool for big batches.
 *
 * @example
 * const v = await createNativeVerifier({ backend: 'openssl' })
 * v.verify({ publicKey, message, signature })
 */
export async function createNativeVerifier(opts: NativeVerifierOptions = {}): Promise<SignatureVerifier> {
  const name = await loadNativeBackend(opts.backend ?? 'auto')
  const verifyOne = await nativeVerifyFunction(
    name,
    opts.keyCacheSize === undefined ? {} : { keyCacheSize: opts.keyCacheSize },
  )
  let closed = false
  return {
    name,
    verify(check) {
      if (closed) throw closedError(name)
      assertCheck(check)
      return verifyOne(check.publicKey, check.message, check.signature)
    },
    async verifyBatch(checks) {
      if (closed) throw closedError(name)
      checks.forEach(assertCheck)
      return checks.map((c) => verifyOne(c.publicKey, c.message, c.signature))
    },
    async close() {
      closed = true
    },
  }
}
