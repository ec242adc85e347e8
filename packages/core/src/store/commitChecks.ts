import { type Block, ZERO_HASH, encodeHeader } from '../codec/block.ts'
import { LIMITS } from '../codec/limits.ts'
import { assertValue, encode } from '../codec/msgpack.ts'
import { decodeCertificate } from '../codec/vote.ts'
import { sha256 } from '../crypto/hash.ts'
import type { ServiceEvent, TxResult } from '../runtime/executor.ts'
import { StoreError } from './errors.ts'
import {
  MAX_EVENT_DATA_DEPTH,
  MAX_RESULT_BYTES,
  decodeBlockEvents,
  encodeBlockEvents,
  encodeTxResult,
} from './results.ts'
import { type Hash32, hashBytes, hashHex, sha256Str } from './stateHash.ts'
import { hex, isBytes, same } from './storedValues.ts'

// What `ChainStore.commitBlock` checks of its input before it writes anything: each check throws the
// StoreError code that names the part at fault, and everything accepted here reads back at open.

/** Whether 32 bytes hold the hash `h` (a compare in JS: cheaper than turning either side around). */
function holdsHash(b: Uint8Array, h: Hash32): boolean {
  for (let i = 0; i < 32; i++) if (b[i] !== h.charCodeAt(i)) return false
  return true
}

export function checkBlock(block: Block): void {
  if (
    block === null ||
    typeof block !== 'object' ||
    block.header === null ||
    typeof block.header !== 'object'
  ) {
    throw new StoreError('STORE_BAD_BLOCK', 'block: expected a Block')
  }
  if (
    !isBytes(block.headerBytes) ||
    !isBytes(block.hash, 32) ||
    !isBytes(block.bytes) ||
    !Array.isArray(block.txs)
  ) {
    throw new StoreError('STORE_BAD_BLOCK', 'block: headerBytes, hash, bytes and txs are required')
  }
  const h = block.header
  if (!isBytes(h.parentHash, 32) || !isBytes(h.prevStateRoot, 32) || !Number.isSafeInteger(h.height)) {
    throw new StoreError('STORE_BAD_BLOCK', 'block.header: malformed')
  }
  let headerBytes: Uint8Array
  try {
    headerBytes = encodeHeader(h)
  } catch (err) {
    throw new StoreError('STORE_BAD_BLOCK', `block.header: ${(err as Error).message}`)
  }
  if (!same(headerBytes, block.headerBytes))
    throw new StoreError('STORE_BAD_BLOCK', 'block.headerBytes do not encode block.header')
  if (!same(sha256(block.headerBytes), block.hash))
    throw new StoreError('STORE_BAD_BLOCK', 'block.hash is not the hash of its header')
  // What `decodeBlock` refuses on the way back in must be refused here, or the store would not reopen.
  if (block.txs.length > LIMITS.maxBlockTxs)
    throw new StoreError('STORE_BAD_BLOCK', `block has ${block.txs.length} txs, limit ${LIMITS.maxBlockTxs}`)
  for (let i = 0; i < block.txs.length; i++) {
    if (!isBytes(block.txs[i])) throw new StoreError('STORE_BAD_BLOCK', `block.txs[${i}]: expected bytes`)
    if (block.txs[i]!.length > LIMITS.maxTxBytes)
      throw new StoreError('STORE_BAD_BLOCK', `block.txs[${i}]: longer than ${LIMITS.maxTxBytes} bytes`)
  }
  if (block.bytes.length > LIMITS.maxBlockBytes)
    throw new StoreError(
      'STORE_BAD_BLOCK',
      `block is ${block.bytes.length} bytes, limit ${LIMITS.maxBlockBytes}`,
    )
  if (!same(encode([block.headerBytes, block.txs]), block.bytes)) {
    throw new StoreError('STORE_BAD_BLOCK', 'block.bytes do not encode its header and txs')
  }
}

/**
 * Whether a certificate's chain id belongs to the block's chain: the chain id itself (validator epoch 0)
 * or `<chainId>--e<N>` (N >= 1: the votes of validator epoch N, see @cityledger/consensus epochChainId).
 */
function certifiesChain(certChainId: string, chainId: string): boolean {
  if (certChainId === chainId) return true
  return (
    certChainId.startsWith(`${chainId}--e`) &&
    /^[1-9][0-9]{0,14}$/.test(certChainId.slice(chainId.length + 3))
  )
}

export function checkCertificate(certificate: Uint8Array, block: Block): void {
  if (!isBytes(certificate)) throw new StoreError('STORE_BAD_CERTIFICATE', 'certificate: expected bytes')
  let cert: ReturnType<typeof decodeCertificate>
  try {
    cert = decodeCertificate(certificate)
  } catch (err) {
    throw new StoreError('STORE_BAD_CERTIFICATE', `certificate: ${(err as Error).message}`)
  }
  // A height that a NEW-VIEW filled with a null request is stored as an empty block with a zero
  // proposer; its certificate certifies the null digest (32 zero bytes), not that block's hash.
  const nullFill =
    same(cert.blockHash, ZERO_HASH) && block.txs.length === 0 && same(block.header.proposer, ZERO_HASH)
  if (
    cert.height !== block.header.height ||
    (!same(cert.blockHash, block.hash) && !nullFill) ||
    !certifiesChain(cert.chainId, block.header.chainId)
  ) {
    throw new StoreError(
      'STORE_BAD_CERTIFICATE',
      `certificate is for block ${cert.height} ${hex(cert.blockHash)}, not ${block.header.height} ${hex(block.hash)}`,
    )
  }
}

/** Checks one result per tx, matching the tx hashes, and that each result reads back. */
export function checkResults(
  results: readonly TxResult[],
  block: Block,
): { txHashes: Uint8Array[]; encoded: Uint8Array[] } {
  if (!Array.isArray(results) || results.length !== block.txs.length) {
    throw new StoreError(
      'STORE_BAD_RESULTS',
      `expected ${block.txs.length} results, got ${Array.isArray(results) ? results.length : 'none'}`,
    )
  }
  const hashes: Uint8Array[] = new Array(results.length)
  const encoded: Uint8Array[] = new Array(results.length)
  // Tx hashes as latin1 strings (one-shot SHA-256, no Buffer per hash), which also key the duplicate check.
  const seen = new Set<Hash32>()
  for (let i = 0; i < results.length; i++) {
    const r = results[i]!
    const txHash = sha256Str(block.txs[i]!)
    if (seen.has(txHash))
      throw new StoreError('STORE_BAD_BLOCK', `block.txs[${i}] repeats an earlier tx ${hashHex(txHash)}`)
    seen.add(txHash)
    if (r === null || typeof r !== 'object' || !isBytes(r.hash, 32) || !holdsHash(r.hash, txHash)) {
      throw new StoreError('STORE_BAD_RESULTS', `results[${i}].hash is not the hash of block.txs[${i}]`)
    }
    if (r.code !== null && (typeof r.code !== 'string' || r.code === '')) {
      throw new StoreError('STORE_BAD_RESULTS', `results[${i}].code: expected null or a non-empty string`)
    }
    if (r.message !== undefined && typeof r.message !== 'string') {
      throw new StoreError('STORE_BAD_RESULTS', `results[${i}].message: expected a string`)
    }
    if (!Array.isArray(r.events))
      throw new StoreError('STORE_BAD_RESULTS', `results[${i}].events: expected an array`)
    for (const [j, e] of r.events.entries()) {
      if (typeof e?.service !== 'string' || typeof e.name !== 'string')
        throw new StoreError(
          'STORE_BAD_RESULTS',
          `results[${i}].events[${j}]: expected service and name strings`,
        )
    }
    let bytes: Uint8Array
    try {
      // Encoded once (no decode-back on the hot path: a 5,000-tx block spent a quarter of its commit
      // there); the size cap that reads enforce is checked here instead.
      for (const e of r.events) assertValue(e?.data, MAX_EVENT_DATA_DEPTH, `events.${e?.name}`)
      bytes = encodeTxResult(r)
      if (bytes.length > MAX_RESULT_BYTES)
        throw new Error(`encoded result is ${bytes.length} bytes, limit ${MAX_RESULT_BYTES}`)
    } catch (err) {
      throw new StoreError('STORE_BAD_RESULTS', `results[${i}]: ${(err as Error).message}`)
    }
    hashes[i] = hashBytes(txHash)
    encoded[i] = bytes
  }
  return { txHashes: hashes, encoded }
}

export function checkBlockEvents(events: readonly ServiceEvent[]): Uint8Array | undefined {
  if (!Array.isArray(events)) throw new StoreError('STORE_BAD_RESULTS', 'blockEvents: expected an array')
  if (events.length === 0) return undefined
  try {
    const bytes = encodeBlockEvents(events)
    decodeBlockEvents(bytes)
    return bytes
  } catch (err) {
    throw new StoreError('STORE_BAD_RESULTS', `blockEvents: ${(err as Error).message}`)
  }
}
