import { type Block, ZERO_HASH, makeBlock, merkleRoot } from '@cityledger/core'
import type { Head } from '../chain/ledger.ts'

/**
 * The block every node records for a height that a NEW-VIEW filled with a null request: no txs, view 0,
 * time = parent time + 1, zero proposer. Canonical per height: it depends only on the parent (which all
 * honest nodes share), never on the view of the NEW-VIEW that created the filler or of the certificate
 * that committed it (commits are accepted from neighbouring views, so two nodes may hold certificates of
 * different views for the same null height). Its certificate certifies the null digest, not this block's hash.
 */
export function nullBlock(chainId: string, head: Head): Block {
  return makeBlock(
    {
      chainId,
      height: head.height + 1,
      view: 0,
      time: head.time + 1,
      parentHash: head.hash,
      txRoot: merkleRoot([]),
      prevStateRoot: head.stateRoot,
      proposer: ZERO_HASH,
    },
    [],
  )
}
