import { type Block, decodeBlock } from '../codec/block.ts'
import type { TxResult } from '../runtime/executor.ts'
import { corrupt } from './errors.ts'
import { decodeTxResult } from './results.ts'

// Small helpers shared by the chain store's commit checks, open checks and reads.

export const hex = (b: Uint8Array): string =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
export const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0
export const isBytes = (x: unknown, len?: number): x is Uint8Array =>
  x instanceof Uint8Array && (len === undefined || x.length === len)

/** The stored block at `height`, decoded; `STORE_CORRUPT` naming `what` when it does not decode or is another height. */
export function decodeStored(bytes: Uint8Array, what: string, height: number): Block {
  let block: Block
  try {
    block = decodeBlock(bytes)
  } catch (err) {
    throw corrupt(what, `does not decode (${(err as Error).message})`)
  }
  if (block.header.height !== height) throw corrupt(what, `holds block ${block.header.height}`)
  return block
}

/** A stored tx result, decoded; `STORE_CORRUPT` naming its place when it does not decode. */
export function decodeResult(bytes: Uint8Array, height: number, index: number): TxResult {
  try {
    return decodeTxResult(bytes)
  } catch (err) {
    throw corrupt(`result ${index} of block ${height}`, `does not decode (${(err as Error).message})`)
  }
}
