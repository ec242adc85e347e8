import { sha256, signingMessage, DOMAIN } from '../crypto/hash.ts'
import { sign } from '../crypto/keys.ts'
import type { SignatureCheck } from '../crypto/verifier.ts'
import { CHAIN_ID_RE, LIMITS, METHOD_RE, SERVICE_RE } from './limits.ts'
import {
  CodecError,
  type Value,
  decodeStrict,
  encode,
  expectArray,
  expectBytes,
  expectString,
  expectUint,
} from './msgpack.ts'

const TX_VERSION = 1

/**
 * What a client signs. Travels as the fixed-order array
 * `[version, chainId, service, method, args, signer, nonce, expiry]`.
 */
export interface TxBody {
  chainId: string
  service: string
  method: string
  args: Value
  /** Ed25519 public key of the signer, 32 bytes. */
  signer: Uint8Array
  /** Per signer, strictly increasing from 1. */
  nonce: number
  /** Last height at which the tx may be included; 0 means no expiry. */
  expiry: number
}

/** A decoded transaction with the exact bytes it travelled as. */
export interface Tx {
  body: TxBody
  bodyBytes: Uint8Array
  signature: Uint8Array
  /** The envelope `[bodyBytes, signature]` as it travels. */
  bytes: Uint8Array
  /** SHA-256 of `bytes`: the tx id, and the key of the "already verified" cache. */
  hash: Uint8Array
}

export function encodeTxBody(body: TxBody): Uint8Array {
  checkBody(body)
  return encode([
    TX_VERSION,
    body.chainId,
    body.service,
    body.method,
    body.args,
    body.signer,
    body.nonce,
    body.expiry,
  ])
}

/** The bytes that are signed for a body: `cityledger/tx/v1 || 0x00 || bodyBytes`. */
export function txSigningMessage(bodyBytes: Uint8Array): Uint8Array {
  return signingMessage(DOMAIN.tx, bodyBytes)
}

/** Builds and signs a transaction. `secretKey` must belong to `body.signer`. */
export function signTx(body: TxBody, secretKey: Uint8Array): Tx {
  const bodyBytes = encodeTxBody(body)
  const signature = sign(secretKey, txSigningMessage(bodyBytes))
  const bytes = encode([bodyBytes, signature])
  return { body: { ...body }, bodyBytes, signature, bytes, hash: sha256(bytes) }
}

/** Strictly decodes an envelope (signature not checked: see `txSignatureCheck`). */
export function decodeTx(bytes: Uint8Array, maxBytes: number = LIMITS.maxTxBytes): Tx {
  if (bytes instanceof Uint8Array && bytes.length > maxBytes) {
    throw new CodecError('TOO_LARGE', `tx is ${bytes.length} bytes, limit ${maxBytes}`, {
      size: bytes.length,
      limit: maxBytes,
    })
  }
  // Decode from our own copy, so nothing in the result keeps the caller's (possibly large) buffer alive.
  const own = bytes instanceof Uint8Array ? Uint8Array.from(bytes) : bytes
  const env = expectArray(decodeStrict(own, { maxBytes, maxDepth: 1 }), 2, 'tx envelope')
  const bodyBytes = expectBytes(env[0], 'tx.body')
  expectBytes(env[1], 'tx.signature', 64)
  // The envelope ends with the signature as bin8 (2 header bytes + 64): the body sits right before it.
  const bodyEnd = own.length - 66
  const bodyView = own.subarray(bodyEnd - bodyBytes.length, bodyEnd)
  return {
    body: decodeTxBody(bodyView),
    bodyBytes: bodyView,
    signature: own.subarray(bodyEnd + 2),
    bytes: own,
    hash: sha256(own),
  }
}

export function decodeTxBody(bodyBytes: Uint8Array): TxBody {
  const f = expectArray(
    decodeStrict(bodyBytes, { maxBytes: LIMITS.maxTxBytes, maxDepth: LIMITS.maxArgsDepth + 1 }),
    8,
    'tx body',
  )
  if (f[0] !== TX_VERSION)
    throw new CodecError('BAD_FIELD', `tx.version: unsupported ${String(f[0])}`, { field: 'version' })
  return {
    chainId: expectString(f[1], 'tx.chainId', CHAIN_ID_RE),
    service: expectString(f[2], 'tx.service', SERVICE_RE),
    method: expectString(f[3], 'tx.method', METHOD_RE),
    args: f[4] as Value,
    signer: expectBytes(f[5], 'tx.signer', 32),
    nonce: expectUint(f[6], 'tx.nonce'),
    expiry: expectUint(f[7], 'tx.expiry'),
  }
}

/** What to hand a SignatureVerifier for this transaction. */
export function txSignatureCheck(tx: Tx): SignatureCheck {
  return { publicKey: tx.body.signer, message: txSigningMessage(tx.bodyBytes), signature: tx.signature }
}

function checkBody(b: TxBody): void {
  if (!CHAIN_ID_RE.test(b.chainId))
    throw new CodecError('BAD_FIELD', 'tx.chainId: invalid', { field: 'chainId' })
  if (!SERVICE_RE.test(b.service))
    throw new CodecError('BAD_FIELD', 'tx.service: invalid', { field: 'service' })
  if (!METHOD_RE.test(b.method)) throw new CodecError('BAD_FIELD', 'tx.method: invalid', { field: 'method' })
  if (!(b.signer instanceof Uint8Array) || b.signer.length !== 32) {
    throw new CodecError('BAD_FIELD', 'tx.signer: expected 32 bytes', { field: 'signer' })
  }
  expectUint(b.nonce, 'tx.nonce')
  expectUint(b.expiry, 'tx.expiry')
}
