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
  const own = bytes instanceof Uint8Array ? new Uint8Array(bytes) : bytes
  const bodyView = envelopeBody(own, maxBytes)
  const bodyEnd = own.length - 66
  return {
    body: decodeTxBody(bodyView),
    bodyBytes: bodyView,
    signature: own.subarray(bodyEnd + 2),
    bytes: own,
    hash: sha256(own),
  }
}

/**
 * The envelope has exactly one canonical form, `[bin(body), bin8(signature)]`, so it is checked by
 * reading its framing (fixarray of 2, the shortest bin header for the body, bin8 of 64 bytes, nothing
 * after) instead of decoding and re-encoding it; the body is then decoded strictly.
 */
function envelopeBody(b: Uint8Array, maxBytes: number): Uint8Array {
  if (!(b instanceof Uint8Array)) throw new CodecError('MALFORMED', 'input is not a byte array')
  if (b.length > maxBytes)
    throw new CodecError('TOO_LARGE', `tx is ${b.length} bytes, limit ${maxBytes}`, {
      size: b.length,
      limit: maxBytes,
    })
  if (b.length === 0) throw new CodecError('MALFORMED', 'empty input')
  if (b[0] !== 0x92) throw new CodecError('BAD_FIELD', 'tx envelope: expected an array of 2 fields')
  if (b.length < 4) throw new CodecError('MALFORMED', 'not valid msgpack: tx envelope is truncated')
  let len: number
  let off: number
  if (b[1] === 0xc4) {
    len = b[2]!
    off = 3
  } else if (b[1] === 0xc5) {
    len = (b[2]! << 8) | b[3]!
    off = 4
    if (len < 0x100) throw new CodecError('NON_CANONICAL', 'value is not in canonical encoding')
  } else if (b[1] === 0xc6) {
    throw new CodecError('TOO_LARGE', 'tx body larger than 64 KiB')
  } else throw new CodecError('BAD_FIELD', 'tx.body: expected bytes', { field: 'body' })
  const end = off + len
  if (end + 2 > b.length) throw new CodecError('MALFORMED', 'not valid msgpack: tx envelope is truncated')
  if (b[end] !== 0xc4 || b[end + 1] !== 64)
    throw new CodecError('BAD_FIELD', 'tx.signature: expected 64 bytes', { field: 'signature' })
  if (end + 66 > b.length) throw new CodecError('MALFORMED', 'not valid msgpack: tx envelope is truncated')
  if (end + 66 < b.length) throw new CodecError('TRAILING_BYTES', 'bytes remain after the value')
  return b.subarray(off, end)
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
