import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { allServices } from '@cityledger/apps'
import {
  type Block,
  ChainStore,
  type KvStore,
  LIMITS,
  type Runtime,
  STORE_PREFIX,
  type SignatureVerifier,
  type Tx,
  type TxResult,
  type Value,
  VerifiedCache,
  concatBytes,
  createRuntime,
  decodeBlock,
  decodeTx,
  encodeCertificate,
  equalBytes,
  makeBlock,
  merkleRoot,
  openLevelKv,
  openMemoryKv,
  sha256,
  toHex,
  txSignatureCheck,
  utf8,
} from '@cityledger/core'
import { sandboxedAppServices } from '@cityledger/node'
import { benchKey } from './signer.ts'

/** Milliseconds spent in each phase of one block. */
export interface PhaseTimes {
  decode: number
  verify: number
  execute: number
  /** State root and the atomic store batch (ChainStore.commitBlock). */
  commit: number
}

export interface BlockRun {
  times: PhaseTimes
  /**
   * CPU time of `executeBlock` per tx, microseconds: the runtime's cost, less disturbed than wall time
   * by other processes on a shared machine (execution is synchronous on this thread).
   */
  executeCpuUsPerTx: number
  /** Signatures checked during validation (0 when all were verified at admission). */
  verified: number
  failed: number
  /** Codes of failed txs (a correct workload has none). */
  failures: Record<string, number>
  results: TxResult[]
  txs: Tx[]
}

/**
 * A single-node chain on a real store: core's ChainStore over LevelDB in a temp folder (or memory), the
 * runtime with `allServices`. Blocks go through the same steps as the node's Ledger (packages/node
 * chain/ledger.ts: validate, then commit): strict decode, duplicate and chain checks, tx root, signatures
 * of txs not in the verified cache through the verifier, execute, one atomic commit.
 */
export class BenchChain {
  readonly chainId: string
  readonly store: ChainStore
  readonly runtime: Runtime
  readonly proposer = benchKey('bench/proposer').publicKey
  private readonly kv: KvStore
  /** The LevelDB folder (undefined for the memory backend). */
  readonly dir: string | undefined
  /**
   * Signatures in each block's commit certificate: 1 (zero bytes) by default; `disk` sets the 2f+1 of
   * a 4-validator set with distinct keys and pseudo-random signatures (incompressible, like real ones).
   */
  certificateSigners = 1
  private readonly validatorKeys: Uint8Array[] = []
  private time = 1_700_000_000_000

  private constructor(
    chainId: string,
    store: ChainStore,
    runtime: Runtime,
    kv: KvStore,
    dir: string | undefined,
  ) {
    this.chainId = chainId
    this.store = store
    this.runtime = runtime
    this.kv = kv
    this.dir = dir
  }

  static async open(opts: {
    chainId: string
    genesis: Record<string, Value>
    backend?: 'level' | 'memory'
    /** The services in the SES sandbox (one Compartment per module), as a validator runs them. */
    sandbox?: boolean
  }): Promise<BenchChain> {
    const dir = opts.backend === 'memory' ? undefined : mkdtempSync(join(tmpdir(), 'cityledger-bench-'))
    const kv = dir ? await openLevelKv(dir) : openMemoryKv()
    try {
      const store = await ChainStore.open(kv, { chainId: opts.chainId })
      const runtime = createRuntime({ services: opts.sandbox ? sandboxedAppServices() : allServices })
      const g = runtime.genesis({ get: () => undefined }, opts.genesis, 1_700_000_000_000)
      await store.initGenesis({ chainId: opts.chainId, stateWrites: g.writes })
      return new BenchChain(opts.chainId, store, runtime, kv, dir)
    } catch (err) {
      await kv.close()
      if (dir) rmSync(dir, { recursive: true, force: true })
      throw err
    }
  }

  /** A reader of the latest committed state (for the mempool's checks). */
  readonly state = { get: (k: Uint8Array) => this.store.state.get(k) }

  /** The next block holding `txs`, as the primary would propose it. */
  propose(txs: Tx[]): Block {
    this.time += 1000
    return makeBlock(
      {
        chainId: this.chainId,
        height: this.store.height() + 1,
        view: 0,
        time: this.time,
        parentHash: this.store.height() === 0 ? new Uint8Array(32) : this.store.tipHash(),
        txRoot: merkleRoot(txs.map((t) => t.hash)),
        prevStateRoot: this.store.state.root(),
        proposer: this.proposer,
      },
      txs.map((t) => t.bytes),
    )
  }

  /** Validates and commits the encoded block; `cache` holds the hashes verified at admission. */
  async apply(
    bytes: Uint8Array,
    verifier: SignatureVerifier,
    cache: VerifiedCache = new VerifiedCache(),
  ): Promise<BlockRun> {
    const t0 = performance.now()
    const block = decodeBlock(bytes, LIMITS.maxBlockBytes)
    if (block.header.height !== this.store.height() + 1)
      throw new Error(`invariant broken: block ${block.header.height} on ${this.store.height()}`)
    if (!equalBytes(block.header.prevStateRoot, this.store.state.root()))
      throw new Error('invariant broken: prevStateRoot')
    const txs: Tx[] = []
    const seen = new Set<string>()
    const toVerify: Tx[] = []
    for (const b of block.txs) {
      const tx = decodeTx(b)
      const hex = toHex(tx.hash)
      if (seen.has(hex)) throw new Error('invariant broken: duplicate tx in a bench block')
      seen.add(hex)
      if (tx.body.chainId !== this.chainId) throw new Error('invariant broken: wrong chain')
      if (!cache.has(tx.hash)) toVerify.push(tx)
      txs.push(tx)
    }
    if (!equalBytes(merkleRoot(txs.map((t) => t.hash)), block.header.txRoot))
      throw new Error('invariant broken: tx root')
    const t1 = performance.now()
    if (toVerify.length) {
      const verdicts = await verifier.verifyBatch(toVerify.map(txSignatureCheck))
      if (verdicts.includes(false)) throw new Error('invariant broken: a bench tx has a bad signature')
      for (const tx of toVerify) cache.add(tx.hash)
    }
    const t2 = performance.now()
    const cpu0 = process.cpuUsage()
    const exec = this.runtime.executeBlock(this.state, {
      height: block.header.height,
      time: block.header.time,
      chainId: this.chainId,
      txs,
    })
    const t3 = performance.now()
    const cpu = process.cpuUsage(cpu0)
    const certificate = encodeCertificate({
      chainId: this.chainId,
      view: 0,
      height: block.header.height,
      blockHash: block.hash,
      signatures: this.certificateSignatures(block.header.height),
    })
    await this.store.commitBlock({
      block,
      certificate,
      results: exec.results,
      blockEvents: exec.blockEvents,
      stateWrites: exec.writes,
    })
    const t4 = performance.now()
    const failures: Record<string, number> = {}
    let failed = 0
    for (const r of exec.results)
      if (r.code !== null) {
        failed++
        failures[r.code] = (failures[r.code] ?? 0) + 1
      }
    return {
      times: { decode: t1 - t0, verify: t2 - t1, execute: t3 - t2, commit: t4 - t3 },
      executeCpuUsPerTx: txs.length ? (cpu.user + cpu.system) / txs.length : 0,
      verified: toVerify.length,
      failed,
      failures,
      results: exec.results,
      txs,
    }
  }

  private certificateSignatures(height: number): { validator: Uint8Array; signature: Uint8Array }[] {
    if (this.certificateSigners === 1) return [{ validator: this.proposer, signature: new Uint8Array(64) }]
    while (this.validatorKeys.length < this.certificateSigners)
      this.validatorKeys.push(benchKey(`bench/validator-${this.validatorKeys.length}`).publicKey)
    return Array.from({ length: this.certificateSigners }, (_, i) => {
      const tag = utf8.encode(`bench/cert/${height}/${i}`)
      return {
        validator: this.validatorKeys[i]!,
        signature: concatBytes(sha256(tag, utf8.encode('a')), sha256(tag, utf8.encode('b'))),
      }
    })
  }

  /** Live bytes (key + value, before LevelDB's compression) by namespace (the key's first byte). */
  async bytesByNamespace(): Promise<Record<string, number>> {
    const names = new Map<number, string>(Object.entries(STORE_PREFIX).map(([name, b]) => [b, name]))
    const out: Record<string, number> = {}
    for await (const [k, v] of this.kv.iterate({})) {
      const ns = names.get(k[0]!) ?? `0x${k[0]!.toString(16)}`
      out[ns] = (out[ns] ?? 0) + k.length + v.length
    }
    return out
  }

  /** Compacts the whole store (LevelDB: every key range), so the folder holds only live data. */
  async compactAll(): Promise<void> {
    await this.kv.compact?.({ gte: new Uint8Array(0), lt: new Uint8Array(64).fill(0xff) })
  }

  /** Runs the setup waves, one block each; throws if any setup tx fails. */
  async setup(waves: Tx[][], verifier: SignatureVerifier): Promise<void> {
    for (const [i, wave] of waves.entries()) {
      if (wave.length === 0) continue
      const run = await this.apply(this.propose(wave).bytes, verifier)
      if (run.failed) throw new Error(`setup wave ${i + 1} had failed txs: ${JSON.stringify(run.failures)}`)
    }
  }

  async close(): Promise<void> {
    await this.kv.close()
    if (this.dir) rmSync(this.dir, { recursive: true, force: true })
  }
}
