import { type KeyPair, sign } from '@cityledger/core'
import type { ValidatorSigner } from './types.ts'

/** The signer of a key held in memory (read from `<home>/key.json`): what the node always did. */
export function fileSigner(key: KeyPair): ValidatorSigner {
  const { secretKey, publicKey } = key
  return { publicKey, sign: (message) => sign(secretKey, message) }
}
