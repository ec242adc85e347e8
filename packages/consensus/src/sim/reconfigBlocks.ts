import {
  type Value,
  decodeStrict,
  encode,
  expectArray,
  expectBytes,
  expectUint,
  sha256,
} from '@cityledger/core'

// Blocks of the reconfiguration simulator. Blocks are opaque to the replica; here a block may carry a
// validator-set change (a governance decision, as the node's executor would find one in a block's txs).

const TAG = 'cityledger/sim-epoch-block'

export interface EpochSimBlock {
  height: number
  view: number
  proposer: number
  nonce: number
  /** Index of the plan's change this block executes, and the new validator keys; absent: no change. */
  change?: { index: number; validators: Uint8Array[] }
}

export function encodeEpochBlock(b: EpochSimBlock): Uint8Array {
  const change = b.change ? [b.change.index, b.change.validators] : []
  return encode([TAG, b.height, b.view, b.proposer, b.nonce, change])
}

/** The block, or undefined for bytes that are not a well-formed block of this simulator. */
export function decodeEpochBlock(bytes: Uint8Array): EpochSimBlock | undefined {
  try {
    const f = expectArray(decodeStrict(bytes, { maxBytes: 4096, maxDepth: 3 }), 6, 'block') as Value[]
    if (f[0] !== TAG) return undefined
    const b: EpochSimBlock = {
      height: expectUint(f[1], 'height'),
      view: expectUint(f[2], 'view'),
      proposer: expectUint(f[3], 'proposer'),
      nonce: expectUint(f[4], 'nonce'),
    }
    const c = f[5]
    if (!Array.isArray(c)) return undefined
    if (c.length === 2 && Array.isArray(c[1])) {
      const validators = (c[1] as Value[]).map((v) => expectBytes(v, 'validator', 32))
      b.change = { index: expectUint(c[0], 'change'), validators }
    } else if (c.length !== 0) return undefined
    return b
  } catch {
    return undefined
  }
}

/** SHA-256 of the bytes; throws on bytes that are not a block, like the node's digest does on garbage. */
export function epochBlockDigest(bytes: Uint8Array): Uint8Array {
  if (!decodeEpochBlock(bytes)) throw new Error('not a simulated epoch block')
  return sha256(bytes)
}
