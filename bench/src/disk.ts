import { createVerifierPool, defaultPoolSize } from '@cityledger/core'
import { DEFAULT_CONFIG, DEFAULT_CONSENSUS } from '@cityledger/node'
import { BenchChain } from './chain.ts'
import { folderBytes } from './diskFolder.ts'
import { type NetworkIdleRun, networkIdleRun, realBytesPerBlock } from './diskNetwork.ts'
import { type BenchResult, fmt, machine, median, progress, round3, table } from './harness.ts'
import { Workload } from './workload.ts'

/**
 * `bench disk`: bytes of disk per block and per day of an idle chain (empty blocks) and a loaded one
 * (blocks of city txs), archive and pruned, on real LevelDB folders measured after a full compaction.
 */
export interface DiskOptions {
  /** Empty blocks committed by each idle chain. */
  idleBlocks: number
  /** Blocks committed by each loaded chain. */
  loadedBlocks: number
  /** Offered load of the loaded chain, tx/s: blocks of rate * blockIntervalMs txs, one per interval. */
  rate: number
  /** `store.retainBlocks` of the pruned chains. */
  retainBlocks: number
  /** `consensus.heartbeatMs` for the per-day figures with `emptyBlocks: false`. */
  heartbeatMs: number
  /** Distinct citizens of the loaded chain's workload. */
  signers: number
  /** Seconds each of the two real 4-validator idle runs lasts (emptyBlocks true, false); 0 skips them. */
  networkSeconds: number
  /** `consensus.heartbeatMs` of the real run with `emptyBlocks: false` (short, so the run sees several). */
  networkHeartbeatMs: number
  poolSize?: number
}

export const DISK_DEFAULTS: DiskOptions = {
  idleBlocks: 2000,
  loadedBlocks: 600,
  rate: 100,
  retainBlocks: 256,
  heartbeatMs: DEFAULT_CONFIG.consensus.heartbeatMs,
  signers: 2000,
  networkSeconds: 20,
  networkHeartbeatMs: 5000,
}

/** The node prunes at most once every this many blocks (packages/node/src/node/retention.ts). */
const PRUNE_EVERY_BLOCKS = 64
/** 2f+1 signatures of a 4-validator set in each certificate. */
const CERTIFICATE_SIGNERS = 3
const DAY_MS = 86_400_000

/** One chain's measurements. */
export interface DiskVariant {
  kind: 'idle' | 'loaded'
  pruned: boolean
  blocks: number
  txsPerBlock: number
  /** Folder after genesis and the workload's setup blocks, compacted. */
  startBytes: number
  /** Folder at the end, compacted. */
  endBytes: number
  endAllocatedBytes: number
  /** Blocks of history kept at the end (all for an archive). */
  blocksKept: number
  /**
   * Growth per block, bytes: archive, (end - start) / blocks; pruned, measured once the retention was
   * reached (from the first prune that kept `retainBlocks`, to the end): what stays for good (state).
   */
  bytesPerBlock: number
  /** Pruned only: (end - start) / blocks kept: what the retained history costs per block. */
  bytesPerKeptBlock?: number
  /**
   * Live bytes (key + value, before LevelDB's compression) added per block, by store namespace
   * (STORE_PREFIX), over the same span as `bytesPerBlock`.
   */
  rawBytesPerBlock: Record<string, number>
}

function perBlock(
  end: Record<string, number>,
  start: Record<string, number>,
  blocks: number,
): Record<string, number> {
  const out: Record<string, number> = {}
  for (const k of new Set([...Object.keys(end), ...Object.keys(start)])) {
    const d = ((end[k] ?? 0) - (start[k] ?? 0)) / blocks
    if (Math.abs(d) >= 0.5) out[k] = Math.round(d)
  }
  return out
}

async function runChain(
  kind: 'idle' | 'loaded',
  pruned: boolean,
  o: DiskOptions,
  pool: Awaited<ReturnType<typeof createVerifierPool>>,
): Promise<DiskVariant> {
  const name = `${kind}-${pruned ? 'pruned' : 'archive'}`
  const blocks = kind === 'idle' ? o.idleBlocks : o.loadedBlocks
  const txsPerBlock =
    kind === 'idle' ? 0 : Math.max(1, Math.round((o.rate * DEFAULT_CONSENSUS.blockIntervalMs) / 1000))
  const chainId = `bench-disk-${name}`
  const workload = new Workload({ chainId, citizens: kind === 'idle' ? 10 : o.signers, pollOpenAt: 4 })
  const chain = await BenchChain.open({ chainId, genesis: workload.serviceGenesis() })
  try {
    chain.certificateSigners = CERTIFICATE_SIGNERS
    await chain.setup(workload.setupWaves(), pool)
    await chain.compactAll()
    const dir = chain.dir!
    const startBytes = folderBytes(dir).apparent
    const startRaw = await chain.bytesByNamespace()
    let steady: { height: number; bytes: number; raw: Record<string, number> } | undefined
    const t0 = performance.now()
    for (let i = 1; i <= blocks; i++) {
      const run = await chain.apply(chain.propose(workload.next(txsPerBlock)).bytes, pool)
      if (run.failed) throw new Error(`${name}: failed txs ${JSON.stringify(run.failures)}`)
      const height = chain.store.height()
      // As BlockRetention does: keep the last retainBlocks, at most once every 64 blocks.
      if (pruned && i % PRUNE_EVERY_BLOCKS === 0) {
        const keepFrom = Math.min(height - o.retainBlocks + 1, height - 1)
        if (keepFrom > Math.max(1, chain.store.prunedBelow)) await chain.store.prune(keepFrom)
        if (!steady && i >= o.retainBlocks + PRUNE_EVERY_BLOCKS) {
          // The state history of the pruned heights goes too (a node sweeps at most every 1024 blocks;
          // here at the two measuring points, so the figure is what stays for good).
          await chain.store.pruneState()
          await chain.compactAll()
          steady = { height, bytes: folderBytes(dir).apparent, raw: await chain.bytesByNamespace() }
        }
      }
      if (i % 500 === 0) progress(`disk ${name}: ${i}/${blocks} blocks`)
    }
    if (pruned) {
      const height = chain.store.height()
      await chain.store.prune(Math.min(height - o.retainBlocks + 1, height - 1))
      await chain.store.pruneState()
    }
    await chain.compactAll()
    const end = folderBytes(dir)
    const endRaw = await chain.bytesByNamespace()
    const height = chain.store.height()
    const blocksKept = pruned ? height - chain.store.prunedBelow + 1 : blocks
    progress(
      `disk ${name}: ${fmt(blocks)} blocks in ${fmt((performance.now() - t0) / 1000, 1)} s, folder ${fmt(end.apparent)} bytes`,
    )
    if (pruned && !steady)
      throw new Error(`${name}: --${kind}-blocks must be at least retainBlocks + ${2 * PRUNE_EVERY_BLOCKS}`)
    const bytesPerBlock = pruned
      ? (end.apparent - steady!.bytes) / (height - steady!.height)
      : (end.apparent - startBytes) / blocks
    return {
      kind,
      pruned,
      blocks,
      txsPerBlock,
      startBytes,
      endBytes: end.apparent,
      endAllocatedBytes: end.allocated,
      blocksKept,
      bytesPerBlock: round3(bytesPerBlock),
      ...(pruned ? { bytesPerKeptBlock: round3((end.apparent - startBytes) / blocksKept) } : {}),
      rawBytesPerBlock: pruned
        ? perBlock(endRaw, steady!.raw, height - steady!.height)
        : perBlock(endRaw, startRaw, blocks),
    }
  } finally {
    await chain.close()
  }
}

/** Blocks a day of each chain, from the node's pacing rules (the round's own time not counted). */
export function blocksPerDay(heartbeatMs: number): Record<string, number> {
  const c = DEFAULT_CONSENSUS
  const emptyIntervalMs = Math.max(c.blockIntervalMs, Math.floor(c.viewChangeTimeoutMs / 3))
  return {
    'idle, emptyBlocks true': DAY_MS / emptyIntervalMs,
    'idle, emptyBlocks false': DAY_MS / Math.max(c.blockIntervalMs, heartbeatMs),
    loaded: DAY_MS / c.blockIntervalMs,
  }
}

export async function runDisk(o: DiskOptions, command: string): Promise<BenchResult> {
  for (const [k, min] of [
    ['idleBlocks', o.retainBlocks + 2 * PRUNE_EVERY_BLOCKS],
    ['loadedBlocks', o.retainBlocks + 2 * PRUNE_EVERY_BLOCKS],
  ] as const)
    if (o[k] < min) throw new Error(`${k}: at least retainBlocks + ${2 * PRUNE_EVERY_BLOCKS} (${min})`)
  const poolSize = o.poolSize ?? defaultPoolSize()
  const pool = await createVerifierPool({ size: poolSize })
  const variants: Record<string, DiskVariant> = {}
  try {
    for (const kind of ['idle', 'loaded'] as const)
      for (const pruned of [false, true])
        variants[`${kind}-${pruned ? 'pruned' : 'archive'}`] = await runChain(kind, pruned, o, pool)
  } finally {
    await pool.close()
  }
  const network: Record<string, NetworkIdleRun | number> = {}
  if (o.networkSeconds > 0) {
    const on = await networkIdleRun(true, o.networkHeartbeatMs, o.networkSeconds)
    const off = await networkIdleRun(false, o.networkHeartbeatMs, o.networkSeconds)
    network['network-emptyBlocks-true'] = on
    network['network-emptyBlocks-false'] = off
    network.realBytesPerBlock = realBytesPerBlock(on, off)
  }
  const perDay = blocksPerDay(o.heartbeatMs)
  const day: Record<string, Record<string, number>> = {}
  for (const [chain, n] of Object.entries(perDay)) {
    const kind = chain === 'loaded' ? 'loaded' : 'idle'
    const a = variants[`${kind}-archive`]!
    const p = variants[`${kind}-pruned`]!
    day[chain] = {
      blocksPerDay: round3(n),
      archiveBytesPerDay: Math.round(a.bytesPerBlock * n),
      prunedBytesPerDay: Math.round(Math.max(0, p.bytesPerBlock) * n),
      /** Pruned: the retained history is bounded: retainBlocks blocks at the archive's cost per block. */
      prunedHistoryBytes: Math.round(a.bytesPerBlock * o.retainBlocks),
    }
  }
  const idleOn = day['idle, emptyBlocks true']!.archiveBytesPerDay
  const idleOff = day['idle, emptyBlocks false']!.archiveBytesPerDay
  return {
    id: 'disk',
    command,
    date: new Date().toISOString(),
    machine: machine(),
    params: {
      ...o,
      poolSize,
      certificateSigners: CERTIFICATE_SIGNERS,
      pruneEveryBlocks: PRUNE_EVERY_BLOCKS,
      genesis: DEFAULT_CONSENSUS,
    },
    variants: {
      ...(variants as unknown as Record<string, Record<string, unknown>>),
      perDay: day,
      ...(o.networkSeconds > 0 ? { network: network as unknown as Record<string, unknown> } : {}),
    },
    ratios: {
      idleEmptyBlocksOffVsOn: round3(idleOff / idleOn),
      loadedVsIdleBytesPerBlock: round3(
        variants['loaded-archive']!.bytesPerBlock / variants['idle-archive']!.bytesPerBlock,
      ),
    },
    notes: [
      'folders are LevelDB (core ChainStore, the node path of bench block) measured after a full compaction; the consensus journal (bounded by the watermark window) is not included',
      'per day = bytes per block * blocks per day from the pacing rules (genesis defaults; the round time is not counted, so real chains make slightly fewer blocks)',
    ],
  }
}

export function diskTable(r: BenchResult): string {
  const v = r.variants as unknown as Record<string, DiskVariant>
  const rows: (string | number)[][] = [
    ['chain', 'blocks', 'txs/block', 'kept', 'start bytes', 'end bytes', 'bytes/block', 'bytes/kept block'],
  ]
  for (const name of ['idle-archive', 'idle-pruned', 'loaded-archive', 'loaded-pruned']) {
    const x = v[name]!
    rows.push([
      name,
      fmt(x.blocks),
      fmt(x.txsPerBlock),
      fmt(x.blocksKept),
      x.startBytes,
      x.endBytes,
      fmt(x.bytesPerBlock),
      x.bytesPerKeptBlock === undefined ? '-' : fmt(x.bytesPerKeptBlock),
    ])
  }
  const day = (r.variants as unknown as { perDay: Record<string, Record<string, number>> }).perDay
  const rows2: (string | number)[][] = [
    ['per day', 'blocks/day', 'archive MB/day', 'pruned MB/day (state)', 'pruned history MB'],
  ]
  const mb = (b: number) => fmt(b / 1e6, 2)
  for (const [chain, d] of Object.entries(day))
    rows2.push([
      chain,
      fmt(d.blocksPerDay!),
      mb(d.archiveBytesPerDay!),
      mb(d.prunedBytesPerDay!),
      mb(d.prunedHistoryBytes!),
    ])
  const raw = Object.entries(v)
    .filter(([k]) => k !== 'perDay' && k !== 'network')
    .map(
      ([k, x]) =>
        `  ${k}: ${Object.entries(x.rawBytesPerBlock)
          .map(([ns, b]) => `${ns} ${fmt(b)}`)
          .join(', ')}`,
    )
  const net = (r.variants as unknown as { network?: Record<string, NetworkIdleRun | number> }).network
  let netText = ''
  if (net) {
    const rows3: (string | number)[][] = [
      ['4 validators, idle', 'seconds', 'blocks', 'blocks/day', 'views', 'folder bytes (median)'],
    ]
    for (const k of ['network-emptyBlocks-true', 'network-emptyBlocks-false']) {
      const x = net[k] as NetworkIdleRun
      rows3.push([
        `emptyBlocks ${x.emptyBlocks}${x.emptyBlocks ? '' : `, heartbeat ${x.heartbeatMs} ms`}`,
        fmt(x.seconds, 1),
        fmt(x.blocks),
        fmt(x.blocksPerDay),
        x.views.join(','),
        fmt(median(x.folderBytes)),
      ])
    }
    netText = `\n\n${table(rows3)}\nreal node, bytes per block (difference of the two folders over the difference of heights): ${fmt(net.realBytesPerBlock as number)}`
  }
  return `${table(rows)}\n\n${table(rows2)}${netText}\n\nraw bytes (key + value) added per block by store namespace:\n${raw.join('\n')}`
}
