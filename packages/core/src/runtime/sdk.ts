import { compareBytes, concatBytes, equalBytes, fromHex, isHex, toHex, utf8 } from '../bytes/index.ts'
import { sha256 } from '../crypto/hash.ts'
import { referenceVerdict } from '../crypto/pureVerifier.ts'
import { CityError } from '../errors/index.ts'
import { parseTextArgs, s } from './schema.ts'
import { ServiceError, defineService, ensure } from './service.ts'

/**
 * What a sandboxed service module gets when it imports `@cityledger/core`: the SDK (schemas, errors,
 * `defineService`) and pure helpers over bytes and hashes. Everything here is deterministic and holds
 * no I/O; stores, networking, the clock and the verifier pool are not reachable from a service. An
 * import of any other name refuses to load (`SERVICE_LOAD_FAILED`).
 */
export const SERVICE_SDK = {
  CityError,
  ServiceError,
  compareBytes,
  concatBytes,
  defineService,
  ensure,
  equalBytes,
  fromHex,
  isHex,
  parseTextArgs,
  referenceVerdict,
  s,
  sha256,
  toHex,
  utf8,
}
