// The p2p identity of a validator whose key is held by a signer (an HSM): libp2p's Noise handshake
// signs the node's static Noise key with the identity key (one signature per connection), so the
// identity can be the validator key without its secret bytes in the process.
import { CityError, equalBytes, utf8 } from '@cityledger/core'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey, Ed25519PublicKey } from '@libp2p/interface'
import type { ValidatorSigner } from './types.ts'

/** What libp2p-noise signs (its spec's signature payload prefix, then the 32-byte static key). */
const NOISE_PREFIX = utf8.encode('noise-libp2p-static-key:')

/**
 * A libp2p Ed25519 private key whose `sign` is `signer.sign`, for `createLibp2p({ privateKey })`.
 * It signs only Noise handshake payloads: the one thing the node's libp2p signs (no identify, no
 * signed peer records), so libp2p code can never make the validator key sign anything else.
 * `raw` throws: the secret is in the signer.
 */
export function libp2pKeyOfSigner(signer: ValidatorSigner): Ed25519PrivateKey {
  const publicKey = publicKeyFromRaw(signer.publicKey) as Ed25519PublicKey
  return {
    type: 'Ed25519',
    publicKey,
    get raw(): Uint8Array {
      throw new CityError('SIGNER_BAD', 'the p2p identity key is held by the validator signer: no raw bytes')
    },
    equals: (key?: { type?: string; publicKey?: { raw?: Uint8Array } }) =>
      key?.type === 'Ed25519' &&
      key.publicKey?.raw instanceof Uint8Array &&
      equalBytes(key.publicKey.raw, signer.publicKey),
    sign(data) {
      const bytes = data instanceof Uint8Array ? data : data.subarray()
      if (
        bytes.length !== NOISE_PREFIX.length + 32 ||
        !equalBytes(bytes.subarray(0, NOISE_PREFIX.length), NOISE_PREFIX)
      )
        throw new CityError(
          'SIGNER_BAD',
          'the p2p layer asked the validator key to sign something other than a Noise handshake',
        )
      return signer.sign(bytes)
    },
  }
}
