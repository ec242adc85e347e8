import { join } from 'node:path'
import { openLevelKv } from '@cityledger/core'
import { createClient } from '@cityledger/node'
import { folderBytes } from './diskFolder.ts'
import { median, progress, round3 } from './harness.ts'
import { startNetwork } from './testnet.ts'

/** One idle run of a real 4-validator network (processes on loopback, LevelDB stores). */
export interface NetworkIdleRun {
  emptyBlocks: boolean
  heartbeatMs: number
  seconds: number
  /** Blocks committed during the measured window (after block 1). */
  blocks: number
  blocksPerDay: number
  /** Height at the end and view of each validator (a view above 0: a view change happened). */
  heights: number[]
  views: number[]
  /** Each validator's data folder after stop and a full compaction, bytes. */
  folderBytes: number[]
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Starts 4 validators with the genesis defaults and `consensus.emptyBlocks`, leaves them idle for
 * `seconds` (wall clock: this measures real pacing), stops them and measures each data folder.
 */
export async function networkIdleRun(
  emptyBlocks: boolean,
  heartbeatMs: number,
  seconds: number,
): Promise<NetworkIdleRun> {
  const label = `disk network emptyBlocks=${emptyBlocks}`
  progress(`${label}: starting 4 validators`)
  const net = await startNetwork({ validators: 4, nodeConfig: { consensus: { emptyBlocks, heartbeatMs } } })
  try {
    const clients = net.layout.rpc.map((url) => createClient({ url }))
    const started = performance.now()
    let h0 = 0
    // The first block comes one interval (or heartbeat) after start; the window starts once every
    // validator has it (a busy machine may leave one behind the others for a while).
    for (;;) {
      const heights = (await Promise.all(clients.map((c) => c.status()))).map((s) => s.height)
      h0 = heights[0]!
      if (Math.min(...heights) >= 1) break
      if (performance.now() - started > 120_000)
        throw new Error(`${label}: no block 1 on every validator in 120 s`)
      await sleep(50)
    }
    const t0 = performance.now()
    progress(`${label}: idle for ${seconds} s`)
    await sleep(seconds * 1000)
    const statuses = await Promise.all(clients.map((c) => c.status()))
    const elapsed = (performance.now() - t0) / 1000
    await net.stop()
    const sizes: number[] = []
    for (const home of net.layout.homes) {
      const kv = await openLevelKv(join(home, 'data'))
      await kv.compact?.({ gte: new Uint8Array(0), lt: new Uint8Array(64).fill(0xff) })
      await kv.close()
      sizes.push(folderBytes(join(home, 'data')).apparent)
    }
    const blocks = statuses[0]!.height - h0
    return {
      emptyBlocks,
      heartbeatMs,
      seconds: round3(elapsed),
      blocks,
      blocksPerDay: Math.round((blocks / elapsed) * 86_400),
      heights: statuses.map((s) => s.height),
      views: statuses.map((s) => s.view),
      folderBytes: sizes,
    }
  } finally {
    await net.close()
  }
}

/**
 * Disk per block of the real node, from two runs on the same genesis: the difference of their
 * compacted folders over the difference of their heights (the genesis state cancels out; the journal,
 * compacted at each stable checkpoint, is within one checkpoint interval in both).
 */
export function realBytesPerBlock(on: NetworkIdleRun, off: NetworkIdleRun): number {
  const dh = median(on.heights) - median(off.heights)
  return dh > 0 ? Math.round((median(on.folderBytes) - median(off.folderBytes)) / dh) : Number.NaN
}
