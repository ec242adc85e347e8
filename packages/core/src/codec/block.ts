import { sha256 } from '../crypto/hash.ts'
import { CHAIN_ID_RE, LIMITS } from './limits.ts'
import {
  CodecError,
  decodeStrict,
  encode,
  expectArray,
  expectBytes,
  expectString,
  expectUint,
} from './msgpack.ts'

const HEADER_VERSION = 1

/**
 * Block header. Travels as the fixed-order array
 * `[version, chainId, height, view, time, parentHash, txRoot, prevStateRoot, proposer]`.
 * The block hash is SHA-256 of exactly those bytes.
 */
export interface BlockHeader {
  chainId: string
  /** 1 for the first block after genesis; the PBFT sequence number. */
  height: number
  /** PBFT view in which the block was proposed. */
  view: number
  /**
   * Proposer's time, milliseconds since the Unix epoch. The codec only requires a safe integer; the
   * node's block-time rule (after the parent, within a drift bound of the validators' clocks) is in
   * `@cityledger/node`'s ledger and README.
   */
  time: number
  /** Hash of the block at height - 1 (32 zero bytes at height 1). */
  parentHash: Uint8Array
  /** Merkle root of the transaction hashes. */
  txRoot: Uint8Array
  /** State root after executing the block at height - 1 (the genesis state root at height 1). */
  prevStateRoot: Uint8Array
  /** Ed25519 public key of the proposing validator. */
  proposer: Uint8Array
}

export interface Block {
  header: BlockHeader
  headerBytes: Uint8Array
  hash: Uint8Array
  /** Transaction envelopes, exactly as they travel (decode with `decodeTx`). */
  txs: Uint8Array[]
  /** The encoded block `[headerBytes, [tx...]]`. */
  bytes: Uint8Array
}

export const ZERO_HASH = new Uint8Array(32)

/**
 * Checks that every header field is one `decodeHeader` reads back (safe unsigned integers, 32-byte
 * hashes, a valid chain id), so no header that fails to decode can ever be encoded, hashed or stored.
 * Throws CodecError naming the field.
 */
export function checkHeader(h: BlockHeader): void {
  if (h === null || typeof h !== 'object') throw new CodecError('BAD_FIELD', 'header: expected an object')
  expectString(h.chainId, 'header.chainId', CHAIN_ID_RE)
  for (const field of ['height', 'view', 'time'] as const) {
    if (!Number.isSafeInteger(h[field]) || h[field] < 0)
      throw new CodecError(
        'BAD_FIELD',
        `header.${field}: expected a safe integer >= 0, got ${String(h[field])}`,
        {
          field,
        },
      )
  }
  for (const field of ['parentHash', 'txRoot', 'prevStateRoot', 'proposer'] as const) {
    if (!(h[field] instanceof Uint8Array) || h[field].length !== 32)
      throw new CodecError('BAD_FIELD', `header.${field}: expected 32 bytes`, { field })
  }
}

/** The canonical header bytes; refuses (CodecError) a header that would not decode again. */
export function encodeHeader(h: BlockHeader): Uint8Array {
  checkHeader(h)
  return encode([
    HEADER_VERSION,
    h.chainId,
    h.height,
    h.view,
    h.time,
    h.parentHash,
    h.txRoot,
    h.prevStateRoot,
    h.proposer,
  ])
}

export function decodeHeader(bytes: Uint8Array): BlockHeader {
  const f = expectArray(decodeStrict(bytes, { maxBytes: 1024, maxDepth: 1 }), 9, 'block header')
  if (f[0] !== HEADER_VERSION) {
    throw new CodecError('BAD_FIELD', `header.version: unsupported ${String(f[0])}`, { field: 'version' })
  }
  return {
    chainId: expectString(f[1], 'header.chainId', CHAIN_ID_RE),
    height: expectUint(f[2], 'header.height'),
    view: expectUint(f[3], 'header.view'),
    time: expectUint(f[4], 'header.time'),
    parentHash: new Uint8Array(expectBytes(f[5], 'header.parentHash', 32)),
    txRoot: new Uint8Array(expectBytes(f[6], 'header.txRoot', 32)),
    prevStateRoot: new Uint8Array(expectBytes(f[7], 'header.prevStateRoot', 32)),
    proposer: new Uint8Array(expectBytes(f[8], 'header.proposer', 32)),
  }
}

export function blockHash(headerBytes: Uint8Array): Uint8Array {
  return sha256(headerBytes)
}

/** Assembles a block from its header and tx envelopes (the tx root must already be in the header). */
export function makeBlock(header: BlockHeader, txs: Uint8Array[]): Block {
  const headerBytes = encodeHeader(header)
  return { header, headerBytes, hash: blockHash(headerBytes), txs, bytes: encode([headerBytes, txs]) }
}

/**
 * Strict decode of a block; limits on bytes and tx count come before anything else. Every byte array
 * of the result is its own copy (`new Uint8Array(view)`: a memcpy, where `Uint8Array.from` iterated).
 */
export function decodeBlock(bytes: Uint8Array, maxBytes: number = LIMITS.maxBlockBytes): Block {
  const f = expectArray(decodeStrict(bytes, { maxBytes, maxDepth: 2 }), 2, 'block')
  const headerBytes = new Uint8Array(expectBytes(f[0], 'block.header', undefined, 1024))
  const list = f[1]
  if (!Array.isArray(list))
    throw new CodecError('BAD_FIELD', 'block.txs: expected an array', { field: 'txs' })
  if (list.length > LIMITS.maxBlockTxs) {
    throw new CodecError('TOO_LARGE', `block has ${list.length} txs, limit ${LIMITS.maxBlockTxs}`)
  }
  const txs = list.map(
    (t, i) => new Uint8Array(expectBytes(t, `block.txs[${i}]`, undefined, LIMITS.maxTxBytes)),
  )
  return {
    header: decodeHeader(headerBytes),
    headerBytes,
    hash: blockHash(headerBytes),
    txs,
    bytes: new Uint8Array(bytes),
  }
}

/**
 * The hash of an encoded block read from its front (the header bytes) without decoding its txs:
 * cheap enough for every pre-prepare. Full validation (`decodeBlock`) still checks the rest.
 */
export function blockHashFromBytes(bytes: Uint8Array): Uint8Array {
  let off: number
  let len: number
  if (bytes.length < 3 || bytes[0] !== 0x92) throw new CodecError('MALFORMED', 'not an encoded block')
  if (bytes[1] === 0xc4) {
    len = bytes[2]!
    off = 3
  } else if (bytes[1] === 0xc5 && bytes.length >= 4) {
    len = (bytes[2]! << 8) | bytes[3]!
    off = 4
  } else throw new CodecError('MALFORMED', 'not an encoded block')
  if (off + len > bytes.length || len > 1024) throw new CodecError('MALFORMED', 'block header out of bounds')
  return blockHash(bytes.subarray(off, off + len))
}
