import { type Block, type Mempool, type Tx, ZERO_HASH, equalBytes, toHex } from '@cityledger/core'
import type { Output } from '@cityledger/consensus'
import type { Ledger } from '../chain/ledger.ts'
import { nullBlock } from './nullBlock.ts'

type CommitOut = Extract<Output, { type: 'commit' }>

/** Blocks this node built or validated lately, by hash: committing one of them needs no second check. */
export class CheckedBlocks {
  readonly #blocks = new Map<string, { block: Block; txs: Tx[] }>()

  remember(block: Block, txs: Tx[]): void {
    this.#blocks.set(toHex(block.hash), { block, txs })
    // A handful of heights in flight at most; old entries go first.
    while (this.#blocks.size > 16) this.#blocks.delete(this.#blocks.keys().next().value!)
  }

  /** The block `hash` (hex) and its txs, when it was checked on top of the block `parentHash`. */
  get(hash: string, parentHash: Uint8Array): { block: Block; txs: Tx[] } | undefined {
    const b = this.#blocks.get(hash)
    return b && equalBytes(b.block.header.parentHash, parentHash) ? b : undefined
  }

  delete(hash: string): void {
    this.#blocks.delete(hash)
  }
}

/**
 * The block a commit names, on top of the ledger's head, and its txs: the canonical null block of the
 * height (see nullBlock.ts), a block checked before, or the commit's bytes validated now. Throws when
 * 2f+1 validators committed a block that does not validate here: this node's state is not the network's.
 */
export async function blockOfCommit(
  c: CommitOut,
  o: { chainId: string; ledger: Ledger; mempool: Mempool; checked: CheckedBlocks },
): Promise<{ block: Block; txs: Tx[] }> {
  const head = o.ledger.head
  // Canonical per height: the same bytes whatever the view of the certificate.
  if (c.isNull || equalBytes(c.digest, ZERO_HASH)) return { block: nullBlock(o.chainId, head), txs: [] }
  const checked = o.checked.get(toHex(c.digest), head.hash)
  if (checked) return checked
  // 2f+1 committed it: the proposal-time clock bound no longer applies (a node whose clock is behind
  // must still follow the chain).
  const v = await o.ledger.validate(c.block, (h) => o.mempool.get(h), { certified: true })
  if (!v.ok || !equalBytes(v.block.hash, c.digest))
    throw new Error(
      `committed block ${c.height} does not validate here: ${v.ok ? 'digest mismatch' : `${v.code} ${v.message}`}`,
    )
  return { block: v.block, txs: v.txs }
}
