import { type KeyPair, concatBytes, equalBytes, fromHex, isHex, publicKeyOf, toHex } from '@cityledger/core'
import { privateKeyFromRaw, publicKeyFromRaw } from '@libp2p/crypto/keys'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { p2pError } from './errors.ts'

/**
 * A validator's libp2p identity is its Ed25519 validator key itself: the peer id embeds the public key,
 * so after the Noise handshake the remote's validator key is known without any extra exchange.
 */

/** The libp2p private key for a validator key pair (libp2p's raw Ed25519 form is seed || public key). */
export function libp2pPrivateKey(keyPair: KeyPair): PrivateKey {
  if (!(keyPair?.secretKey instanceof Uint8Array) || keyPair.secretKey.length !== 32) {
    throw p2pError('P2P_BAD_OPTIONS', 'keyPair.secretKey must be the 32-byte Ed25519 seed')
  }
  // libp2p does not check that the two halves match; a mismatch would give a peer id nobody can prove.
  if (
    !(keyPair.publicKey instanceof Uint8Array) ||
    !equalBytes(publicKeyOf(keyPair.secretKey), keyPair.publicKey)
  ) {
    throw p2pError('P2P_BAD_OPTIONS', 'keyPair.publicKey does not belong to keyPair.secretKey')
  }
  return privateKeyFromRaw(concatBytes(keyPair.secretKey, keyPair.publicKey))
}

/** The peer id of a validator, from its 32-byte Ed25519 public key (bytes or hex). */
export function peerIdFromValidatorKey(publicKey: Uint8Array | string): PeerId {
  const raw = typeof publicKey === 'string' ? validatorKeyBytes(publicKey) : publicKey
  if (!(raw instanceof Uint8Array) || raw.length !== 32)
    throw p2pError('P2P_BAD_PEER', 'a validator public key is 32 bytes')
  try {
    return peerIdFromPublicKey(publicKeyFromRaw(raw))
  } catch (err) {
    throw p2pError('P2P_BAD_PEER', `not an Ed25519 public key: ${(err as Error).message}`)
  }
}

/** The validator key (lowercase hex) behind a peer id, or undefined for non-Ed25519 peer ids. */
export function validatorKeyOfPeerId(peerId: PeerId): string | undefined {
  if (peerId.type !== 'Ed25519') return undefined
  return toHex(peerId.publicKey.raw)
}

/** Normalises a hex validator key (32 bytes) to lowercase; throws P2P_BAD_PEER naming `field`. */
export function normalizeValidatorKey(hex: string, field = 'peer'): string {
  if (!isHex(hex, 32)) throw p2pError('P2P_BAD_PEER', `${field}: expected a 32-byte hex public key`)
  return hex.toLowerCase()
}

function validatorKeyBytes(hex: string): Uint8Array {
  return fromHex(normalizeValidatorKey(hex))
}
