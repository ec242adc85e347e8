/** @cityledger/bench: the benchmark harness behind `cityledger bench`. */
import { type BenchResult, fmt, machine, progress } from './harness.ts'
import { BLOCK_DEFAULTS, blockTable, runBlock } from './block.ts'
import { DISK_DEFAULTS, diskTable, runDisk } from './disk.ts'
import { MEMPOOL_DEFAULTS, mempoolTable, runMempool } from './mempool.ts'
import { NETWORK_DEFAULTS, networkTable, runNetwork } from './network.ts'
import { STATESYNC_DEFAULTS, runStateSyncBench, stateSyncTable } from './stateSync.ts'
import { VERIFY_DEFAULTS, runVerify, verifyTable } from './verify.ts'

export * from './harness.ts'
export { runBlock, type BlockOptions, BLOCK_DEFAULTS } from './block.ts'
export { runDisk, type DiskOptions, DISK_DEFAULTS } from './disk.ts'
export { Workload, type WorkloadOptions, type Mix, type TxKind, DEFAULT_MIX } from './workload.ts'
export { runMempool, type MempoolOptions, MEMPOOL_DEFAULTS } from './mempool.ts'
export { runNetwork, type NetworkOptions, NETWORK_DEFAULTS } from './network.ts'
export { runVerify, type VerifyOptions, VERIFY_DEFAULTS } from './verify.ts'
export { runStateSyncBench, type StateSyncBenchOptions, STATESYNC_DEFAULTS } from './stateSync.ts'

/** Stable ids of the benchmarks. */
export const BENCHMARKS = ['verify', 'block', 'mempool', 'network', 'disk', 'statesync'] as const
export type BenchId = (typeof BENCHMARKS)[number]

/** Options as the CLI parses them (strings), all optional. */
export type CliValues = Record<string, string | boolean | undefined>

function int(v: string | boolean | undefined, name: string, fallback: number, min = 0): number {
  if (v === undefined || typeof v === 'boolean') return fallback
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < min)
    throw new Error(`--${name}: expected an integer >= ${min}, got ${v}`)
  return n
}

/** Runs benchmark `id` with CLI-style options and returns its result (nothing printed on stdout). */
export async function runBenchmark(
  id: BenchId,
  v: CliValues,
  command = `pnpm cityledger bench ${id}`,
): Promise<BenchResult> {
  const rounds = { warmup: int(v.warmup, 'warmup', 1), rounds: int(v.rounds, 'rounds', 5, 1) }
  switch (id) {
    case 'verify':
      return runVerify(
        {
          ...rounds,
          count: int(v.count, 'count', VERIFY_DEFAULTS.count, 1),
          signers: int(v.signers, 'signers', VERIFY_DEFAULTS.signers, 1),
          nobleCount: int(v.noble, 'noble', VERIFY_DEFAULTS.nobleCount, 1),
          ...(v['pool-size'] !== undefined ? { poolSize: int(v['pool-size'], 'pool-size', 1, 1) } : {}),
        },
        command,
      )
    case 'block':
      return runBlock(
        {
          ...rounds,
          rounds: int(v.rounds, 'rounds', BLOCK_DEFAULTS.rounds, 1),
          sizes:
            typeof v.sizes === 'string'
              ? v.sizes.split(',').map((x) => int(x, 'sizes', 0, 1))
              : BLOCK_DEFAULTS.sizes,
          signers: int(v.signers, 'signers', BLOCK_DEFAULTS.signers, 1),
          ...(v['pool-size'] !== undefined ? { poolSize: int(v['pool-size'], 'pool-size', 1, 1) } : {}),
          ...(v.sandbox === true ? { sandbox: true } : {}),
        },
        command,
      )
    case 'mempool':
      return runMempool(
        {
          ...rounds,
          rounds: int(v.rounds, 'rounds', MEMPOOL_DEFAULTS.rounds, 1),
          txs: int(v.txs, 'txs', MEMPOOL_DEFAULTS.txs, 1),
          signers: int(v.signers, 'signers', MEMPOOL_DEFAULTS.signers, 1),
          block: int(v.block, 'block', MEMPOOL_DEFAULTS.block, 1),
          batch: MEMPOOL_DEFAULTS.batch,
          ...(v['pool-size'] !== undefined ? { poolSize: int(v['pool-size'], 'pool-size', 1, 1) } : {}),
        },
        command,
      )
    case 'network': {
      let rates = [int(v.rate, 'rate', NETWORK_DEFAULTS.rates[0]!, 1)]
      if (typeof v.ramp === 'string') {
        const [from, to, step] = v.ramp.split(':').map((x) => int(x, 'ramp', 0, 1))
        if (from === undefined || to === undefined || to < from)
          throw new Error('--ramp: FROM:TO[:STEP] with FROM <= TO')
        const by = step ?? Math.max(1, Math.round((to - from) / 4))
        rates = []
        for (let r = from; r <= to; r += by) rates.push(r)
      }
      return runNetwork(
        {
          ...rounds,
          rounds: int(v.rounds, 'rounds', NETWORK_DEFAULTS.rounds, 1),
          validators: int(v.validators, 'validators', NETWORK_DEFAULTS.validators, 1),
          rates,
          seconds: int(v.seconds, 'seconds', NETWORK_DEFAULTS.seconds, 1),
          signers: int(v.signers, 'signers', NETWORK_DEFAULTS.signers, 1),
          drainSeconds: NETWORK_DEFAULTS.drainSeconds,
          submitTo: v['submit-to'] === 'primary' ? 'primary' : 'all',
        },
        command,
      )
    }
    case 'disk':
      return runDisk(
        {
          idleBlocks: int(v['idle-blocks'], 'idle-blocks', DISK_DEFAULTS.idleBlocks, 1),
          loadedBlocks: int(v['loaded-blocks'], 'loaded-blocks', DISK_DEFAULTS.loadedBlocks, 1),
          rate: int(v.rate, 'rate', DISK_DEFAULTS.rate, 1),
          retainBlocks: int(v.retain, 'retain', DISK_DEFAULTS.retainBlocks, 2),
          heartbeatMs: int(v['heartbeat-ms'], 'heartbeat-ms', DISK_DEFAULTS.heartbeatMs, 1),
          signers: int(v.signers, 'signers', DISK_DEFAULTS.signers, 1),
          networkSeconds: int(v['network-seconds'], 'network-seconds', DISK_DEFAULTS.networkSeconds, 0),
          networkHeartbeatMs: int(
            v['network-heartbeat-ms'],
            'network-heartbeat-ms',
            DISK_DEFAULTS.networkHeartbeatMs,
            100,
          ),
          ...(v['pool-size'] !== undefined ? { poolSize: int(v['pool-size'], 'pool-size', 1, 1) } : {}),
        },
        command,
      )
    case 'statesync':
      return runStateSyncBench(
        {
          keys: int(v.keys, 'keys', STATESYNC_DEFAULTS.keys, 1),
          blocks: int(v.blocks, 'blocks', STATESYNC_DEFAULTS.blocks, 1),
          log: progress,
        },
        command,
      )
    default:
      throw new Error(`benchmark ${id} is not implemented yet`)
  }
}

/** The readable form of a result: machine, a table of the variants, the ratios and targets. */
export function formatResult(r: BenchResult): string {
  const m = r.machine ?? machine()
  const lines = [`${r.id}: ${m.cores} cores, ${m.cpu}, Node ${m.node}, load average ${m.loadAverage}`, '']
  lines.push(
    r.id === 'verify'
      ? verifyTable(r)
      : r.id === 'block'
        ? blockTable(r)
        : r.id === 'mempool'
          ? mempoolTable(r)
          : r.id === 'disk'
            ? diskTable(r)
            : r.id === 'statesync'
              ? stateSyncTable(r)
              : networkTable(r),
  )
  lines.push('', 'ratios:')
  for (const [k, x] of Object.entries(r.ratios)) {
    const t = r.targets?.[k]
    lines.push(
      `  ${k.padEnd(28)} ${fmt(x, 3)}${t ? `  (target ${t.target}: ${t.met ? 'met' : 'MISSED'})` : ''}`,
    )
  }
  for (const n of r.notes ?? []) lines.push(`note: ${n}`)
  return lines.join('\n')
}
