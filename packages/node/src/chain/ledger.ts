import {
  type Block,
  CityError,
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
  /** For each tx hash, whether the tx index holds it (a committed tx). */
  hasTxs(hashes: readonly Uint8Array[]): Promise<boolean[]>
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

/**
 * The block-time rule (README, "Block time"). A block's time is after its parent's; a proposal's time
 * is at most `maxDriftMs` ahead of the validating node's wall clock; and no block time exceeds
 * `maxTime`. Only the drift bound depends on the local clock, so it is a rule for voting on proposals:
 * a certified block (2f+1 commits) is never refused for it.
 */
export const BLOCK_TIME = {
  /** How far a proposal's time may be ahead of the validator's clock, ms. */
  maxDriftMs: 10_000,
  /**
   * The largest block time (the largest JS Date, in the year 275760). It leaves 3.6e14 ms below
   * MAX_SAFE_INTEGER, so null fillers at parent time + 1 always stay safe integers.
   */
  maxTime: 8_640_000_000_000_000,
} as const

/** How a block is judged by `validate`. */
export interface ValidateOptions {
  /**
   * The block is certified (2f+1 validators committed it: a commit being applied, block sync): the
   * local-clock drift bound is not applied, since a node whose clock is behind must follow, not halt.
   * Every other rule is.
   */
  certified?: boolean
}

export interface LedgerOptions {
  chainId: string
  /** The genesis validators (used when `validatorsAt` is not given). */
  validators: Uint8Array[]
  /**
   * The validators that sign `height` (the schedule as executed so far; epochs.ts of consensus).
   * Default: `validators` at every height.
   */
  validatorsAt?: (height: number) => readonly Uint8Array[]
  store: LedgerStore
  runtime: Runtime
  verifier: SignatureVerifier
  verifiedCache: VerifiedCache
  genesisTime: number
  maxBlockTxs: number
  maxBlockBytes: number
  /** This node's wall clock, ms since the epoch (the drift bound of proposals). Default `Date.now`. */
  wallClock?: () => number
  /** Drift bound for proposals, ms (default `BLOCK_TIME.maxDriftMs`). */
  maxClockDriftMs?: number
}

/**
 * Validates, executes and commits blocks strictly in height order. A block is valid when its header
 * extends the head (height, parent hash, previous state root, the view's primary as proposer), its
 * time follows the block-time rule (`BLOCK_TIME`), its tx root matches, and every tx decodes, belongs
 * to this chain, has not expired, appears once, was never committed before (tx index), carries its
 * signer's next nonce (committed + 1, then + 2 within the block: no gap, repeat or reorder), and has a
 * valid signature (checked once per node: txs admitted by the mempool are skipped).
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

  /** The validator expected to propose in `view` at `height` (default: the next height), of that height's set. */
  primaryOf(view: number, height: number = this.headState.height + 1): Uint8Array {
    const set = this.opts.validatorsAt?.(height) ?? this.opts.validators
    return set[view % set.length]!
  }

  /**
   * A proposal for the next height from the given txs (already admitted, so verified; in nonce order
   * per signer, as the mempool reaps them). Its time is `now`, or the parent's + 1 when the clock is
   * behind the parent; throws `BAD_TIME` rather than build a block past `BLOCK_TIME.maxTime`.
   */
  propose(view: number, txs: Tx[], now: number, proposer: Uint8Array): Block {
    const h = this.headState
    const time = Math.max(Math.floor(now), h.time + 1)
    if (!(time <= BLOCK_TIME.maxTime))
      throw new CityError('BAD_TIME', `block time ${time} would be past the largest block time`)
    return makeBlock(
      {
        chainId: this.opts.chainId,
        height: h.height + 1,
        view,
        time,
        parentHash: h.hash,
        txRoot: merkleRoot(txs.map((t) => t.hash)),
        prevStateRoot: h.stateRoot,
        proposer,
      },
      txs.map((t) => t.bytes),
    )
  }

  /**
   * Checks a proposed (or, with `certified`, a committed) block against the head. Never throws for
   * bad input. Codes: WRONG_CHAIN, BAD_HEIGHT, BAD_PARENT, BAD_STATE_ROOT, BAD_TIME, BAD_PROPOSER,
   * TOO_MANY_TXS, BAD_TX, DUPLICATE_TX, TX_EXPIRED, BAD_TX_ROOT, TX_COMMITTED, BAD_NONCE, BAD_SIGNATURE
   * (or the codec's code when the block does not decode).
   */
  async validate(
    bytes: Uint8Array,
    known?: (hash: Uint8Array) => Tx | undefined,
    options: ValidateOptions = {},
  ): Promise<Validation> {
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
    if (h.time > BLOCK_TIME.maxTime)
      return fail('BAD_TIME', `block time ${h.time} is past the largest block time ${BLOCK_TIME.maxTime}`)
    if (!options.certified) {
      const now = (this.opts.wallClock ?? Date.now)()
      const drift = this.opts.maxClockDriftMs ?? BLOCK_TIME.maxDriftMs
      if (h.time > now + drift)
        return fail(
          'BAD_TIME',
          `block time ${h.time} is ${h.time - now} ms ahead of this node's clock (bound ${drift})`,
        )
    }
    if (!equalBytes(h.proposer, this.primaryOf(h.view, h.height)))
      return fail('BAD_PROPOSER', `proposer is not the primary of view ${h.view}`)
    if (block.txs.length > this.opts.maxBlockTxs)
      return fail('TOO_MANY_TXS', `${block.txs.length} txs, limit ${this.opts.maxBlockTxs}`)
    const txs: Tx[] = []
    const seen = new Set<string>()
    const toVerify: Tx[] = []
    // Next nonce per signer: committed + 1 at the first tx of a signer, then one more per tx.
    const nextNonce = new Map<string, number>()
    const state = { get: (key: Uint8Array) => this.opts.store.getState(key) }
    let nonceFailure: Validation | undefined
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
      // The executor fails an expired tx without using its nonce; a block may not carry one.
      if (tx.body.expiry !== 0 && h.height > tx.body.expiry)
        return fail('TX_EXPIRED', `tx ${i} expired at height ${tx.body.expiry}`)
      const signer = toHex(tx.body.signer)
      const want = nextNonce.get(signer) ?? this.opts.runtime.committedNonce(state, tx.body.signer) + 1
      if (tx.body.nonce !== want && !nonceFailure)
        nonceFailure = fail('BAD_NONCE', `tx ${i} has nonce ${tx.body.nonce}, its signer's next is ${want}`)
      nextNonce.set(signer, want + 1)
      const cached = known?.(tx.hash)
      if (!cached && !this.opts.verifiedCache.has(tx.hash)) toVerify.push(tx)
      txs.push(tx)
    }
    if (!equalBytes(merkleRoot(txs.map((t) => t.hash)), h.txRoot))
      return fail('BAD_TX_ROOT', 'tx root does not match the txs')
    if (txs.length) {
      const committed = await this.opts.store.hasTxs(txs.map((t) => t.hash))
      const again = committed.indexOf(true)
      if (again >= 0)
        return fail('TX_COMMITTED', `tx ${again} (${toHex(txs[again]!.hash)}) is already committed`)
    }
    if (nonceFailure) return nonceFailure
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
