import { type Value, decodeStrict, encode, expectArray, expectUint } from '@cityledger/core'

const TAG = 'cityledger/sim-block'

/** A simulated block: small, unique per proposal, and marked valid or not (Byzantine primaries propose invalid ones). */
export interface SimBlock {
  height: number
  view: number
  proposer: number
  nonce: number
  valid: boolean
}

export function encodeSimBlock(b: SimBlock): Uint8Array {
  return encode([TAG, b.height, b.view, b.proposer, b.nonce, b.valid ? 1 : 0])
}

export function decodeSimBlock(bytes: Uint8Array): SimBlock | undefined {
  try {
    const f = expectArray(decodeStrict(bytes, { maxBytes: 256, maxDepth: 1 }), 6, 'block') as Value[]
    if (f[0] !== TAG) return undefined
    return {
      height: expectUint(f[1], 'height'),
      view: expectUint(f[2], 'view'),
      proposer: expectUint(f[3], 'proposer'),
      nonce: expectUint(f[4], 'nonce'),
      valid: f[5] === 1,
    }
  } catch {
    return undefined
  }
}

/** What the simulated node's validation says: a well-formed block for the expected height, marked valid. */
export function simValidate(bytes: Uint8Array, height: number): boolean {
  const b = decodeSimBlock(bytes)
  return b !== undefined && b.valid && b.height === height
}
