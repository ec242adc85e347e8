import { type KeyObject, createPublicKey, verify as opensslVerify } from 'node:crypto'
import { VerifierError } from './errors.ts'
import { precheck } from './validity.ts'

/** The native library a verifier runs: libsodium (via sodium-native) or Node's bundled OpenSSL. */
export type NativeBackend = 'sodium' | 'openssl'

/** `'auto'` picks libsodium when sodium-native loads on this machine, OpenSSL otherwise. */
export type NativeBackendChoice = NativeBackend | 'auto'

/** Verdict of one signature: precheck + native curve check. Never throws on bad bytes. */
export type NativeVerifyFn = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean

interface SodiumSign {
  crypto_sign_verify_detached(sig: Uint8Array, m: Uint8Array, pk: Uint8Array): boolean
}

let sodiumLoad: Promise<SodiumSign | null> | undefined

/** sodium-native is optional at run time: a missing or broken prebuild must not stop a node. */
function loadSodium(): Promise<SodiumSign | null> {
  sodiumLoad ??= (async () => {
    try {
      const specifier = 'sodium-native' // a variable: the package ships no type declarations
      const mod = await import(specifier)
      const sodium = (mod.default ?? mod) as SodiumSign
      return typeof sodium.crypto_sign_verify_detached === 'function' ? sodium : null
    } catch {
      return null
    }
  })()
  return sodiumLoad
}

/**
 * The native backend `choice` resolves to on this machine. `'auto'` (the default) is `'sodium'` when
 * sodium-native loads, else `'openssl'`; asking for `'sodium'` where it cannot load is an error
 * (`VERIFIER_BACKEND_UNAVAILABLE`). OpenSSL is always there (node:crypto).
 *
 * @example
 * const backend = await loadNativeBackend() // 'sodium' on a normal install
 */
export async function loadNativeBackend(choice: NativeBackendChoice = 'auto'): Promise<NativeBackend> {
  if (choice === 'openssl') return 'openssl'
  if (choice !== 'auto' && choice !== 'sodium') {
    throw new VerifierError(
      'VERIFIER_BAD_OPTIONS',
      `backend must be 'auto', 'sodium' or 'openssl', got ${String(choice)}`,
    )
  }
  const sodium = await loadSodium()
  if (sodium) return 'sodium'
  if (choice === 'sodium') {
    throw new VerifierError('VERIFIER_BACKEND_UNAVAILABLE', 'sodium-native cannot be loaded on this machine')
  }
  return 'openssl'
}

/** DER SubjectPublicKeyInfo header of a raw Ed25519 public key (RFC 8410); the 32 key bytes follow. */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

/** Default bound of the OpenSSL KeyObject cache: validators and active signers, not every key ever seen. */
export const DEFAULT_KEY_CACHE_SIZE = 4096

function opensslVerifyFn(keyCacheSize: number): NativeVerifyFn {
  if (!Number.isInteger(keyCacheSize) || keyCacheSize < 1) {
    throw new VerifierError(
      'VERIFIER_BAD_OPTIONS',
      `keyCacheSize must be an integer >= 1, got ${keyCacheSize}`,
    )
  }
  // Building a KeyObject costs about as much as a verification, and the same keys sign again and again.
  const cache = new Map<string, KeyObject>()
  const keyObject = (publicKey: Uint8Array): KeyObject => {
    const id = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString('latin1')
    let key = cache.get(id)
    if (key) {
      cache.delete(id) // refresh: least recently used goes first
      cache.set(id, key)
      return key
    }
    key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' })
    if (cache.size >= keyCacheSize) cache.delete(cache.keys().next().value!)
    cache.set(id, key)
    return key
  }
  return (publicKey, message, signature) => {
    if (!precheck(publicKey, signature)) return false
    try {
      return opensslVerify(null, message, keyObject(publicKey), signature)
    } catch {
      return false // a key OpenSSL refuses to decode is not a valid key (rule 5)
    }
  }
}

/**
 * A synchronous verify function for `backend`, `precheck` included. Shared by the inline native
 * verifier and the pool's workers so both give the same verdicts by construction.
 */
export async function nativeVerifyFunction(
  backend: NativeBackend,
  opts: { keyCacheSize?: number } = {},
): Promise<NativeVerifyFn> {
  if (backend === 'openssl') return opensslVerifyFn(opts.keyCacheSize ?? DEFAULT_KEY_CACHE_SIZE)
  const sodium = await loadSodium()
  if (!sodium)
    throw new VerifierError('VERIFIER_BACKEND_UNAVAILABLE', 'sodium-native cannot be loaded on this machine')
  return (publicKey, message, signature) => {
    if (!precheck(publicKey, signature)) return false
    return sodium.crypto_sign_verify_detached(signature, message, publicKey)
  }
}
