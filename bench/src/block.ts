import {
  LIMITS,
  VerifiedCache,
  createMempool,
  createVerifierPool,
  defaultPoolSize,
  txSignatureCheck,
} from '@cityledger/core'
import { BenchChain, type BlockRun, type PhaseTimes } from './chain.ts'
import {
  type BenchResult,
  type Figures,
  type RoundOptions,
  figures,
  fmt,
  machine,
  measure,
  median,
  progress,
  round3,
  table,
  targetCheck,
} from './harness.ts'
import { checkSignerMatchesNoble } from './signer.ts'
import { DEFAULT_MIX, Workload } from './workload.ts'

export interface BlockOptions extends RoundOptions {
  /** Transactions per block, one chain per size. */
  sizes: number[]
  /** Distinct citizens signing (plus operators, issuers, agencies). */
  signers: number
  poolSize?: number
  backend?: 'level' | 'memory'
  /** Run the services in the SES sandbox, as validators do (default: in-process closures). */
  sandbox?: boolean
}

export const BLOCK_DEFAULTS: BlockOptions = {
  warmup: 1,
  rounds: 3,
  sizes: [1000, 5000, 10_000],
  signers: 10_000,
}

const PHASES = ['decode', 'verify', 'execute', 'commit'] as const

interface SizeResult {
  size: number
  mode: 'cold' | 'warm'
  txPerSec: Figures
  /** Median milliseconds per phase over the rounds. */
  phasesMs: PhaseTimes
  /** Median CPU time of execution per tx, microseconds (see BlockRun.executeCpuUsPerTx). */
  executeCpuUsPerTx: number
  /** Share of the block's time outside signature checks. */
  outsideSignatures: number
  /** Txs per second of mempool admission before the block (warm only). */
  admissionPerSec?: Figures
  failed: number
  failures: Record<string, number>
}

function summarize(size: number, mode: 'cold' | 'warm', runs: BlockRun[]): SizeResult {
  const totals = runs.map((r) => PHASES.reduce((s, p) => s + r.times[p], 0))
  const phasesMs = Object.fromEntries(
    PHASES.map((p) => [p, round3(median(runs.map((r) => r.times[p])))]),
  ) as unknown as PhaseTimes
  const total = PHASES.reduce((s, p) => s + phasesMs[p], 0)
  const failures: Record<string, number> = {}
  for (const r of runs) for (const [c, n] of Object.entries(r.failures)) failures[c] = (failures[c] ?? 0) + n
  return {
    size,
    mode,
    txPerSec: figures(
      totals.map((t) => size / (t / 1000)),
      size,
      'tx/s',
    ),
    phasesMs,
    executeCpuUsPerTx: round3(median(runs.map((r) => r.executeCpuUsPerTx))),
    outsideSignatures: round3(total > 0 ? (total - phasesMs.verify) / total : 0),
    failed: runs.reduce((s, r) => s + r.failed, 0),
    failures,
  }
}

/**
 * Blocks of realistic service transactions through the node's validate-and-commit path, on LevelDB:
 * "cold" (every signature checked during validation through the pool) and "warm" (the txs were
 * admitted through the mempool first, so validation finds them in the verified cache).
 */
export async function runBlock(opts: BlockOptions, command: string): Promise<BenchResult> {
  const poolSize = opts.poolSize ?? defaultPoolSize()
  const pool = await createVerifierPool({ size: poolSize })
  const variants: Record<string, SizeResult | Figures> = {}
  const notes: string[] = []
  try {
    checkSignerMatchesNoble('bench-block')
    const perChain = opts.warmup + opts.rounds
    for (const size of opts.sizes) {
      const chainId = `bench-block-${size}`
      const voteShare = (DEFAULT_MIX.vote ?? 0) / Object.values(DEFAULT_MIX).reduce((s, w) => s + (w ?? 0), 0)
      const polls = Math.max(1, Math.ceil((2 * perChain * size * voteShare) / Math.max(1, opts.signers)))
      progress(`block ${size}: keys for ${opts.signers} citizens, setup (${polls} polls)`)
      const workload = new Workload({ chainId, citizens: opts.signers, polls, pollOpenAt: 4 })
      const chain = await BenchChain.open({
        chainId,
        genesis: workload.serviceGenesis(),
        ...(opts.backend ? { backend: opts.backend } : {}),
        ...(opts.sandbox ? { sandbox: true } : {}),
      })
      try {
        await chain.setup(workload.setupWaves(), pool)

        // The ceiling of this run: the pool verifying this size's signatures, nothing else.
        if (!variants['pool-verify']) {
          // A separate set of signers, so the load's nonces stay untouched.
          const sampler = new Workload({ chainId, citizens: 2000, label: `${chainId}/ceiling` })
          const sample = sampler.next(Math.max(...opts.sizes)).map(txSignatureCheck)
          variants['pool-verify'] = await measure(
            'pool verify (ceiling)',
            opts,
            sample.length,
            'verify/s',
            async () => {
              await pool.verifyBatch(sample)
            },
          )
        }

        const cold: BlockRun[] = []
        for (let i = -opts.warmup; i < opts.rounds; i++) {
          const block = chain.propose(workload.next(size))
          const run = await chain.apply(block.bytes, pool, new VerifiedCache())
          progress(
            `block ${size} cold ${i < 0 ? 'warm-up' : `round ${i + 1}/${opts.rounds}`}: ${fmt(size / (sum(run.times) / 1000))} tx/s`,
          )
          if (i >= 0) cold.push(run)
        }
        variants[`cold-${size}`] = summarize(size, 'cold', cold)

        const mempool = createMempool({
          chainId,
          verifier: pool,
          verifiedCache: new VerifiedCache(),
          committedNonce: (signer) => chain.runtime.committedNonce(chain.state, signer),
          check: (tx) => chain.runtime.checkTx(chain.state, tx),
          height: () => chain.store.height(),
          limits: {
            maxTxs: 1_000_000,
            maxBytes: 1 << 30,
            maxTxBytes: LIMITS.maxTxBytes,
            maxPerSigner: 100_000,
          },
        })
        const warm: BlockRun[] = []
        const admission: number[] = []
        for (let i = -opts.warmup; i < opts.rounds; i++) {
          const txs = workload.next(size)
          const a0 = performance.now()
          const added = await mempool.addMany(txs.map((t) => t.bytes))
          const admitMs = performance.now() - a0
          const refused = added.filter((r) => !r.ok)
          if (refused.length)
            throw new Error(
              `mempool refused ${refused.length} txs: ${(refused[0] as { error: Error }).error.message}`,
            )
          const reaped = mempool.reap({ maxTxs: size, maxBytes: LIMITS.maxBlockBytes - 65_536 })
          if (reaped.length !== size) throw new Error(`invariant broken: reaped ${reaped.length} of ${size}`)
          const run = await chain.apply(chain.propose(reaped).bytes, pool, mempool.verifiedCache)
          mempool.update({ committed: reaped, height: chain.store.height() })
          progress(
            `block ${size} warm ${i < 0 ? 'warm-up' : `round ${i + 1}/${opts.rounds}`}: ${fmt(size / (sum(run.times) / 1000))} tx/s (admission ${fmt(size / (admitMs / 1000))} tx/s)`,
          )
          if (i >= 0) {
            warm.push(run)
            admission.push(size / (admitMs / 1000))
          }
        }
        variants[`warm-${size}`] = {
          ...summarize(size, 'warm', warm),
          admissionPerSec: figures(admission, size, 'tx/s'),
        }
      } finally {
        await chain.close()
      }
    }
  } finally {
    await pool.close()
  }

  const ceiling = (variants['pool-verify'] as Figures).median
  const ratios: Record<string, number> = {}
  for (const size of opts.sizes) {
    const c = variants[`cold-${size}`] as SizeResult
    const w = variants[`warm-${size}`] as SizeResult
    ratios[`pipelineVsVerifyCeiling_${size}`] = round3(c.txPerSec.median / ceiling)
    ratios[`warmPipelineVsVerifyCeiling_${size}`] = round3(w.txPerSec.median / ceiling)
    ratios[`outsideSignatureShare_${size}`] = c.outsideSignatures
  }
  const main = opts.sizes.includes(5000) ? 5000 : opts.sizes[Math.floor(opts.sizes.length / 2)]!
  ratios.pipelineVsVerifyCeiling = ratios[`pipelineVsVerifyCeiling_${main}`]!
  ratios.outsideSignatureShare = ratios[`outsideSignatureShare_${main}`]!
  const failed = opts.sizes.reduce(
    (s, n) => s + (variants[`cold-${n}`] as SizeResult).failed + (variants[`warm-${n}`] as SizeResult).failed,
    0,
  )
  if (failed) notes.push(`${failed} load txs failed during execution (see failures): the workload is wrong`)
  return {
    id: 'block',
    command,
    date: new Date().toISOString(),
    machine: machine(),
    params: { ...opts, poolSize, store: opts.backend ?? 'level', mix: DEFAULT_MIX, mainSize: main },
    variants: variants as unknown as Record<string, Record<string, unknown>>,
    ratios,
    targets: {
      pipelineVsVerifyCeiling: targetCheck(
        ratios.pipelineVsVerifyCeiling,
        '>=',
        0.7,
        `pipelineVsVerifyCeiling (${main}-tx blocks)`,
      ),
    },
    notes,
  }
}

function sum(t: PhaseTimes): number {
  return t.decode + t.verify + t.execute + t.commit
}

export function blockTable(r: BenchResult): string {
  const rows: (string | number)[][] = [
    [
      'variant',
      'median tx/s',
      'spread %',
      'decode ms',
      'verify ms',
      'execute ms',
      'execute cpu us/tx',
      'commit ms',
      'outside sig %',
      'failed',
    ],
  ]
  for (const [name, v] of Object.entries(r.variants)) {
    if (name === 'pool-verify') continue
    const s = v as unknown as SizeResult
    rows.push([
      name,
      s.txPerSec.median,
      fmt(s.txPerSec.spread * 100, 1),
      fmt(s.phasesMs.decode, 1),
      fmt(s.phasesMs.verify, 1),
      fmt(s.phasesMs.execute, 1),
      fmt(s.executeCpuUsPerTx, 1),
      fmt(s.phasesMs.commit, 1),
      fmt(s.outsideSignatures * 100, 1),
      s.failed,
    ])
  }
  const c = r.variants['pool-verify'] as unknown as Figures | undefined
  return `${table(rows)}\n\nverify ceiling (pool, same run): ${fmt(c?.median ?? Number.NaN)} verify/s`
}
