import {
  type Block,
  type CityError,
  LIMITS,
  type Runtime,
  type SignatureVerifier,
  type Tx,
  type TxResult,
  type VerifiedCache,
  decodeBlock,
  decodeTx,
  equalBytes,
  isCityError,
  makeBlock,
  merkleRoot,
  toHex,
  txSignatureCheck,
} from '@cityledger/core'

/**
 * What the ledger needs from the block store (core's ChainStore fits). Declared here, where it is used.
 */
export interface LedgerStore {
  height(): number
  /** Hash of the block at `height` (genesis: 32 zero bytes). */
  blockHash(height: number): Promise<Uint8Array | undefined>
  block(height: number): Promise<Block | undefined>
  stateRoot(height?: number): Uint8Array
  /** Synchronous read of the latest committed state. */
  getState(key: Uint8Array): Uint8Array | undefined
  commitBlock(entry: {
    block: Block
    certificate: Uint8Array
    results: TxResult[]
    blockEvents: TxResult['events']
    stateWrites: Map<string, Uint8Array | null>
  }): Promise<Uint8Array>
}

/** The head of the chain: the last committed block. */
export interface Head {
  height: number
  hash: Uint8Array
  stateRoot: Uint8Array
  time: number
}

export type Validation = { ok: true; block: Block; txs: Tx[] } | { ok: false; code: string; message: string }

export interface CommittedBlock {
  block: Block
  txs: Tx[]
  results: TxResult[]
  blockEvents: TxResult['events']
  stateRoot: Uint8Array
}

export interface LedgerOptions {
  chainId: string
  validators: Uint8Array[]
  store: LedgerStore
  runtime: Runtime
  verifier: SignatureVerifier
  verifiedCache: VerifiedCache
  genesisTime: number
  maxBlockTxs: number
  maxBlockBytes: number
}

/**
 * Validates, executes and commits blocks strictly in height order. A block is valid when its header
 * extends the head (height, parent hash, previous state root, later time, the view's primary as
 * proposer), its tx root matches, and every tx decodes, belongs to this chain, appears once, and
 * carries a valid signature (checked once per node: txs admitted by the mempool are skipped).
 */
export class Ledger {
  readonly opts: LedgerOptions
  private headState: Head

  private constructor(opts: LedgerOptions, head: Head) {
    this.opts = opts
    this.headState = head
  }

  static async open(opts: LedgerOptions): Promise<Ledger> {
    const height = opts.store.height()
    const hash = await opts.store.blockHash(height)
    const block = height === 0 ? undefined : await opts.store.block(height)
    if (!hash || (height > 0 && !block))
      throw new Error(`invariant broken: store height ${height} has no block`)
    return new Ledger(opts, {
      height,
      hash,
      stateRoot: opts.store.stateRoot(height),
      time: block ? block.header.time : opts.genesisTime,
    })
  }

  get head(): Head {
    return this.headState
  }

  /** Hash of the committed block at `height` (undefined above the head). */
  blockHashAt(height: number): Promise<Uint8Array | undefined> {
    return this.opts.store.blockHash(height)
  }

  /** The validator expected to propose in `view`. */
  primaryOf(view: number): Uint8Array {
    return this.opts.validators[view % this.opts.validators.length]!
  }

  /** A proposal for the next height from the given txs (already admitted, so verified). */
  propose(view: number, txs: Tx[], now: number, proposer: Uint8Array): Block {
    const h = this.headState
    return makeBlock(
      {
        chainId: this.opts.chainId,
        height: h.height + 1,
        view,
        time: Math.max(now, h.time + 1),
        parentHash: h.hash,
        txRoot: merkleRoot(txs.map((t) => t.hash)),
        prevStateRoot: h.stateRoot,
        proposer,
      },
      txs.map((t) => t.bytes),
    )
  }

  /** Checks a proposed block against the head. Never throws for bad input. */
  async validate(bytes: Uint8Array, known?: (hash: Uint8Array) => Tx | undefined): Promise<Validation> {
    const fail = (code: string, message: string): Validation => ({ ok: false, code, message })
    let block: Block
    try {
      block = decodeBlock(bytes, Math.min(LIMITS.maxBlockBytes, this.opts.maxBlockBytes + 64 * 1024))
    } catch (err) {
      return fail((err as CityError).code ?? 'MALFORMED', (err as Error).message)
    }
    const h = block.header
    const head = this.headState
    if (h.chainId !== this.opts.chainId) return fail('WRONG_CHAIN', `block for chain ${h.chainId}`)
    if (h.height !== head.height + 1)
      return fail('BAD_HEIGHT', `block height ${h.height}, expected ${head.height + 1}`)
    if (!equalBytes(h.parentHash, head.hash)) return fail('BAD_PARENT', 'parent hash does not match the head')
    if (!equalBytes(h.prevStateRoot, head.stateRoot))
      return fail('BAD_STATE_ROOT', 'previous state root does not match')
    if (h.time <= head.time) return fail('BAD_TIME', `block time ${h.time} not after ${head.time}`)
    if (!equalBytes(h.proposer, this.primaryOf(h.view)))
      return fail('BAD_PROPOSER', `proposer is not the primary of view ${h.view}`)
    if (block.txs.length > this.opts.maxBlockTxs)
      return fail('TOO_MANY_TXS', `${block.txs.length} txs, limit ${this.opts.maxBlockTxs}`)
    const txs: Tx[] = []
    const seen = new Set<string>()
    const toVerify: Tx[] = []
    for (const [i, bytesI] of block.txs.entries()) {
      let tx: Tx
      try {
        tx = decodeTx(bytesI)
      } catch (err) {
        return fail('BAD_TX', `tx ${i}: ${(err as Error).message}`)
      }
      const hex = toHex(tx.hash)
      if (seen.has(hex)) return fail('DUPLICATE_TX', `tx ${i} appears twice`)
      seen.add(hex)
      if (tx.body.chainId !== this.opts.chainId)
        return fail('WRONG_CHAIN', `tx ${i} is for chain ${tx.body.chainId}`)
      const cached = known?.(tx.hash)
      if (!cached && !this.opts.verifiedCache.has(tx.hash)) toVerify.push(tx)
      txs.push(tx)
    }
    if (!equalBytes(merkleRoot(txs.map((t) => t.hash)), h.txRoot))
      return fail('BAD_TX_ROOT', 'tx root does not match the txs')
    if (toVerify.length) {
      const verdicts = await this.opts.verifier.verifyBatch(toVerify.map(txSignatureCheck))
      const bad = verdicts.indexOf(false)
      if (bad >= 0) return fail('BAD_SIGNATURE', `tx ${toHex(toVerify[bad]!.hash)} has a bad signature`)
      for (const tx of toVerify) this.opts.verifiedCache.add(tx.hash)
    }
    return { ok: true, block, txs }
  }

  /**
   * Executes a validated block on the head and commits it with its certificate in one atomic store
   * batch. Only call with the block that extends the head.
   */
  async commit(block: Block, txs: Tx[], certificate: Uint8Array): Promise<CommittedBlock> {
    const head = this.headState
    if (block.header.height !== head.height + 1 || !equalBytes(block.header.parentHash, head.hash)) {
      throw new Error(`invariant broken: commit of height ${block.header.height} on head ${head.height}`)
    }
    const store = this.opts.store
    const exec = this.opts.runtime.executeBlock(
      { get: (key) => store.getState(key) },
      { height: block.header.height, time: block.header.time, chainId: this.opts.chainId, txs },
    )
    const stateRoot = await store.commitBlock({
      block,
      certificate,
      results: exec.results,
      blockEvents: exec.blockEvents,
      stateWrites: exec.writes,
    })
    this.headState = { height: block.header.height, hash: block.hash, stateRoot, time: block.header.time }
    return { block, txs, results: exec.results, blockEvents: exec.blockEvents, stateRoot }
  }
}

export function errorCode(err: unknown): string {
  return isCityError(err) ? err.code : 'INTERNAL'
}
