import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import {
  LIMITS,
  type Mempool,
  VerifiedCache,
  createMempool,
  createVerifierPool,
  defaultPoolSize,
} from '@cityledger/core'
import { BenchChain } from './chain.ts'
import {
  type BenchResult,
  type Figures,
  type RoundOptions,
  figures,
  fmt,
  machine,
  progress,
  round3,
  table,
} from './harness.ts'
import { type Mix, Workload } from './workload.ts'

export interface MempoolOptions extends RoundOptions {
  /** Pending transactions to admit. */
  txs: number
  /** Distinct signers (citizens); each sends txs / signers of them, nonces consecutive. */
  signers: number
  /** Transactions per reaped block. */
  block: number
  /** Envelopes per addMany call (an RPC/gossip batch). */
  batch: number
  poolSize?: number
}

export const MEMPOOL_DEFAULTS: MempoolOptions = {
  warmup: 1,
  rounds: 3,
  txs: 100_000,
  signers: 10_000,
  block: 5000,
  batch: 1000,
}

/** Citizens only, so that 10,000 signers share the load evenly (operators and issuers would hit maxPerSigner). */
const MEMPOOL_MIX: Mix = { spend: 4, subject: 3, vote: 3 }

function gcNow(): void {
  const g = (globalThis as { gc?: () => void }).gc
  if (g) {
    g()
    return
  }
  setFlagsFromString('--expose-gc')
  ;(runInNewContext('gc') as () => void)()
}

function heapBytes(): number {
  gcNow()
  const m = process.memoryUsage()
  return m.heapUsed + m.arrayBuffers
}

/**
 * Admission of `txs` pending transactions from `signers` signers (strict decode, nonces, signatures in
 * shared batches through the pool, service checks), the memory they hold, then draining them in blocks:
 * reap (the primary's batch) and update (drop included, re-check the rest) after each commit.
 */
export async function runMempool(opts: MempoolOptions, command: string): Promise<BenchResult> {
  const poolSize = opts.poolSize ?? defaultPoolSize()
  const chainId = 'bench-mempool'
  const perSigner = Math.ceil(opts.txs / opts.signers)
  const polls = Math.max(1, Math.ceil((opts.txs * 0.3) / opts.signers) + 1)
  progress(`mempool: keys for ${opts.signers} signers, setup`)
  const workload = new Workload({
    chainId,
    citizens: opts.signers,
    spenders: opts.signers,
    polls,
    mix: MEMPOOL_MIX,
    operators: 32,
  })
  const pool = await createVerifierPool({ size: poolSize })
  const chain = await BenchChain.open({ chainId, genesis: workload.serviceGenesis(), backend: 'memory' })
  try {
    await chain.setup(workload.setupWaves(), pool)
    progress(`mempool: signing ${opts.txs} txs`)
    const envelopes = workload.next(opts.txs).map((t) => t.bytes)
    const limits = {
      maxTxs: opts.txs + 1000,
      maxBytes: 1 << 30,
      maxTxBytes: LIMITS.maxTxBytes,
      maxPerSigner: Math.max(64, perSigner + 8),
    }
    const fresh = (): Mempool =>
      createMempool({
        chainId,
        verifier: pool,
        verifiedCache: new VerifiedCache(Math.max(200_000, opts.txs)),
        committedNonce: (signer) => chain.runtime.committedNonce(chain.state, signer),
        check: (tx) => chain.runtime.checkTx(chain.state, tx),
        height: () => chain.store.height(),
        limits,
      })
    const admit = async (mp: Mempool): Promise<number> => {
      const t0 = performance.now()
      for (let i = 0; i < envelopes.length; i += opts.batch) {
        const res = await mp.addMany(envelopes.slice(i, i + opts.batch))
        const bad = res.find((r) => !r.ok)
        if (bad && !bad.ok)
          throw new Error(`mempool refused a load tx: ${bad.error.code} ${bad.error.message}`)
      }
      return performance.now() - t0
    }

    const rates: number[] = []
    let memory = 0
    let mp: Mempool | undefined
    for (let i = -opts.warmup; i < opts.rounds; i++) {
      mp = undefined
      const before = heapBytes()
      mp = fresh()
      const ms = await admit(mp)
      if (i === opts.rounds - 1) memory = heapBytes() - before
      progress(
        `mempool admission ${i < 0 ? 'warm-up' : `round ${i + 1}/${opts.rounds}`}: ${fmt(opts.txs / (ms / 1000))} tx/s, ${mp.size()} pending`,
      )
      if (i >= 0) rates.push(opts.txs / (ms / 1000))
    }
    const admission = figures(rates, opts.txs, 'tx/s')

    // Drain the last round's pool: reap a block, commit it, update; only reap and update are timed.
    const reapRates: number[] = []
    const updateMs: number[] = []
    let pendingAtFirstUpdate = 0
    while (mp!.size() > 0) {
      const r0 = performance.now()
      const batch = mp!.reap({ maxTxs: opts.block, maxBytes: LIMITS.maxBlockBytes - 65_536 })
      const reapMs = performance.now() - r0
      if (batch.length === 0)
        throw new Error(`invariant broken: reap gave nothing with ${mp!.size()} pending`)
      const run = await chain.apply(chain.propose(batch).bytes, pool, mp!.verifiedCache)
      if (run.failed) throw new Error(`mempool load failed in execution: ${JSON.stringify(run.failures)}`)
      if (!pendingAtFirstUpdate) pendingAtFirstUpdate = mp!.size()
      const u0 = performance.now()
      mp!.update({ committed: batch, height: chain.store.height() })
      updateMs.push(performance.now() - u0)
      reapRates.push(batch.length / (reapMs / 1000))
      progress(
        `mempool drain: reaped ${batch.length} in ${fmt(reapMs, 1)} ms, update ${fmt(updateMs.at(-1)!, 1)} ms, ${mp!.size()} left`,
      )
    }
    const reap = figures(reapRates, opts.block, 'tx/s')
    const update = figures(
      updateMs.map((ms) => 1000 / ms),
      opts.block,
      'updates/s',
    )
    const updateMedianMs = round3(1000 / update.median)
    const drainSeconds =
      updateMs.reduce((s, x) => s + x, 0) / 1000 +
      reapRates.reduce((s, r, i) => s + (i < reapRates.length ? opts.block / r : 0), 0) / 1000
    return {
      id: 'mempool',
      command,
      date: new Date().toISOString(),
      machine: machine(),
      params: { ...opts, poolSize, perSigner, limits, mix: MEMPOOL_MIX },
      variants: {
        admission: admission as unknown as Record<string, unknown>,
        reap: reap as unknown as Record<string, unknown>,
        update: { ...update, medianMs: updateMedianMs, pendingAtFirstUpdate } as unknown as Record<
          string,
          unknown
        >,
        memory: { bytes: memory, bytesPerTx: Math.round(memory / opts.txs), mib: round3(memory / 2 ** 20) },
      },
      ratios: {
        reapVsAdmission: round3(reap.median / admission.median),
        // Blocks of `block` txs per second that reap + update could sustain, against admission.
        drainVsAdmission: round3(opts.txs / drainSeconds / admission.median),
      },
    }
  } finally {
    await chain.close()
    await pool.close()
  }
}

export function mempoolTable(r: BenchResult): string {
  const v = r.variants as unknown as Record<
    string,
    Figures & { medianMs?: number; mib?: number; bytesPerTx?: number }
  >
  const rows: (string | number)[][] = [['variant', 'median', 'unit', 'min', 'max', 'spread %']]
  for (const name of ['admission', 'reap', 'update']) {
    const f = v[name]!
    rows.push([name, f.median, f.unit, f.min, f.max, fmt(f.spread * 100, 1)])
  }
  return `${table(rows)}\n\nupdate after a block: ${fmt(v.update!.medianMs ?? 0, 1)} ms (median)\nmemory held by ${fmt(Number(r.params.txs))} pending txs: ${fmt(v.memory!.mib ?? 0, 1)} MiB (${fmt(v.memory!.bytesPerTx ?? 0)} bytes/tx)`
}
