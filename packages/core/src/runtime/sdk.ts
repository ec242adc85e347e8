import { compareBytes, concatBytes, equalBytes, fromHex, isHex, toHex, utf8 } from '../bytes/index.ts'
import { sha256 } from '../crypto/hash.ts'
import { type KeyPair, generateKeyPair as keyPairOf } from '../crypto/keys.ts'
import { referenceVerdict } from '../crypto/pureVerifier.ts'
import { CityError } from '../errors/index.ts'
import { parseTextArgs, s } from './schema.ts'
import {
  ServiceError,
  callExport,
  deadlinePassed,
  defineExport,
  defineService,
  ensure,
  method,
  query,
} from './service.ts'

/**
 * What a sandboxed service module gets when it imports `@cityledger/core`: the SDK (schemas, errors,
 * `defineService`) and pure helpers over bytes and hashes. Everything here is deterministic and holds
 * no I/O; stores, networking, the clock and the verifier pool are not reachable from a service. An
 * import of any other name refuses to load (`SERVICE_LOAD_FAILED`).
 */
/** Key derivation from a seed only: the random form (no seed) would be ambient randomness. */
function generateKeyPair(seed: Uint8Array): KeyPair {
  if (!(seed instanceof Uint8Array))
    throw new CityError('BAD_KEY', 'services derive keys from a 32-byte seed only')
  return keyPairOf(seed)
}

export const SERVICE_SDK = {
  CityError,
  ServiceError,
  callExport,
  compareBytes,
  concatBytes,
  deadlinePassed,
  defineExport,
  defineService,
  ensure,
  equalBytes,
  fromHex,
  generateKeyPair,
  isHex,
  method,
  parseTextArgs,
  query,
  referenceVerdict,
  s,
  sha256,
  toHex,
  utf8,
}
