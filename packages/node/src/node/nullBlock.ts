import { type Block, ZERO_HASH, makeBlock, merkleRoot } from '@cityledger/core'
import type { Head } from '../chain/ledger.ts'

/**
 * The block every node records for a height that a NEW-VIEW filled with a null request: no txs, the
 * view of the NEW-VIEW, time = parent time + 1, zero proposer. Deterministic, so all nodes (and sync)
 * derive the same bytes; its certificate certifies the null digest, not this block's hash.
 */
export function nullBlock(chainId: string, head: Head, view: number): Block {
  return makeBlock(
    {
      chainId,
      height: head.height + 1,
      view,
      time: head.time + 1,
      parentHash: head.hash,
      txRoot: merkleRoot([]),
      prevStateRoot: head.stateRoot,
      proposer: ZERO_HASH,
    },
    [],
  )
}
