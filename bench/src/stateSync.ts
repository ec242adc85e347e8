// `cityledger bench statesync`: the time and bytes for a node to get the state of a chain holding
// `keys` state keys by state sync, against replaying the same chain block by block. The chain is built
// in a LevelDB store (one state key written per tx, `keys / blocks` txs a block); state sync runs
// the node's own client and server (runStateSync over serveStateSync, answers passed in memory, not
// over libp2p) into a fresh LevelDB folder; replay commits the same blocks into another one.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import {
  ChainStore,
  type KvStore,
  encode,
  encodeCertificate,
  makeBlock,
  merkleRoot,
  openLevelKv,
  sha256,
  toHex,
  utf8,
} from '@cityledger/core'
import { createLogger, runStateSync, serveStateSync } from '@cityledger/node'
import { type BenchResult, machine } from './harness.ts'

export interface StateSyncBenchOptions {
  /** State keys of the chain (one per tx). */
  keys: number
  /** Blocks that write them (at most 20,000 txs a block). */
  blocks: number
  /** Progress lines on stderr. */
  log?: (line: string) => void
}

export const STATESYNC_DEFAULTS = { keys: 1_000_000, blocks: 100 }

const CHAIN_ID = 'bench-statesync'
const validators = [0, 1, 2, 3].map((v) => sha256(utf8.encode(`bench-validator-${v}`)))

/** Block `height`'s txs (~120-byte stand-ins for envelopes) and their writes: key i -> a 40-byte value. */
function blockContent(height: number, from: number, count: number) {
  const txs: Uint8Array[] = []
  const writes = new Map<string, Uint8Array | null>()
  for (let i = from; i < from + count; i++) {
    const key = utf8.encode(`token/balance/${i.toString(16).padStart(12, '0')}`)
    const value = sha256(utf8.encode(`value-${i}`))
    txs.push(encode([CHAIN_ID, 'token', 'mint', key, value, height, new Uint8Array(64)]))
    writes.set(toHex(key), encode([i, value]))
  }
  return { txs, writes }
}

/** Commits block `height` of the bench chain onto `store`; returns its bytes and certificate's. */
async function commitNext(store: ChainStore, height: number, from: number, count: number): Promise<number> {
  const { txs, writes } = blockContent(height, from, count)
  const hashes = txs.map((t) => sha256(t))
  const block = makeBlock(
    {
      chainId: CHAIN_ID,
      height,
      view: 0,
      time: 1_700_000_000_000 + height * 1000,
      parentHash: store.tipHash(),
      txRoot: merkleRoot(hashes),
      prevStateRoot: store.state.root(),
      proposer: validators[0]!,
    },
    txs,
  )
  const certificate = encodeCertificate({
    chainId: CHAIN_ID,
    view: 0,
    height,
    blockHash: block.hash,
    signatures: validators.slice(0, 3).map((validator) => ({ validator, signature: new Uint8Array(64) })),
  })
  await store.commitBlock({
    block,
    certificate,
    results: hashes.map((hash) => ({ hash, code: null, events: [] })),
    stateWrites: writes,
  })
  return block.bytes.length + certificate.length
}

/**
 * The sync's own log lines (pino JSON), as progress lines: `state sync: progress` every `logEvery`
 * pages, and its target and end. A line that is not JSON is passed on as it is.
 */
function progressLines(log: ((line: string) => void) | undefined): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) {
        if (!line) continue
        let l: Record<string, unknown>
        try {
          l = JSON.parse(line) as Record<string, unknown>
        } catch {
          log?.(`  ${line}`)
          continue
        }
        const { msg, level: _l, time: _t, ...fields } = l
        log?.(
          `  ${String(msg)}: ${Object.entries(fields)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}`,
        )
      }
      done()
    },
  })
}

/** Builds (or replays) the chain: `blocks` blocks writing `keys` keys, then 2 empty blocks on top. */
async function buildChain(kv: KvStore, o: StateSyncBenchOptions): Promise<{ bytes: number; ms: number }> {
  const started = performance.now()
  const store = await ChainStore.open(kv)
  await store.initGenesis({ chainId: CHAIN_ID, stateWrites: new Map() })
  const per = Math.ceil(o.keys / o.blocks)
  let bytes = 0
  let written = 0
  for (let h = 1; h <= o.blocks + 2; h++) {
    const count = Math.min(per, o.keys - written)
    bytes += await commitNext(store, h, written, Math.max(0, count))
    written += Math.max(0, count)
    if (h % 10 === 0) o.log?.(`  block ${h}: ${written} keys`)
  }
  await store.close()
  return { bytes, ms: performance.now() - started }
}

export async function runStateSyncBench(o: StateSyncBenchOptions, command: string): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'cityledger-bench-statesync-'))
  try {
    o.log?.(`building the chain: ${o.keys} keys in ${o.blocks} blocks`)
    const built = await buildChain(await openLevelKv(join(dir, 'source')), o)
    // Replay: the same blocks committed into a new store (no tx execution, no signature checks).
    o.log?.('replaying it into a new store')
    const replay = await buildChain(await openLevelKv(join(dir, 'replay')), o)
    o.log?.('state sync into a new store')
    const srcKv = await openLevelKv(join(dir, 'source'))
    const src = { store: await ChainStore.open(srcKv), kv: srcKv }
    const dstKv = await openLevelKv(join(dir, 'synced'))
    const t0 = performance.now()
    const r = await runStateSync(
      {
        chainId: CHAIN_ID,
        genesisHash: new Uint8Array(32),
        genesisValidators: validators,
        checkpointInterval: 16,
        verify: () => true,
        net: {
          peers: () => ['source'],
          request: (_peer, bytes) => serveStateSync(src, bytes),
          penalize: () => {},
        },
        logger: createLogger({ level: o.log ? 'info' : 'silent', destination: progressLines(o.log) }),
        logEvery: Math.max(1000, Math.round(o.keys / 20)),
      },
      dstKv,
    )
    const syncMs = performance.now() - t0
    // Opening the synced store rebuilds the tree from its values and checks the root: part of the join.
    const t1 = performance.now()
    const synced = await ChainStore.open(dstKv)
    const openMs = performance.now() - t1
    const ok = toHex(synced.state.root()) === r.stateRoot && synced.state.size === o.keys
    await synced.close()
    await src.store.close()
    if (!ok) throw new Error('state sync bench: the synced store does not hold the source state')
    const syncTotal = syncMs + openMs
    return {
      id: 'statesync',
      command,
      date: new Date().toISOString(),
      machine: machine(),
      params: { keys: o.keys, blocks: o.blocks, txsPerBlock: Math.ceil(o.keys / o.blocks) },
      variants: {
        stateSync: {
          ms: Math.round(syncTotal),
          fetchMs: Math.round(syncMs),
          openMs: Math.round(openMs),
          bytes: r.bytes,
          pages: r.pages,
          pageBytes: r.pageBytes,
          keyBytes: r.keyBytes,
          requests: r.requests,
          height: r.height,
        },
        replay: { ms: Math.round(replay.ms), bytes: built.bytes, blocks: o.blocks + 2 },
      },
      ratios: {
        replayOverStateSyncTime: replay.ms / syncTotal,
        replayOverStateSyncBytes: built.bytes / r.bytes,
      },
      notes: [
        'replay = commitBlock of the same blocks only: a real replay also executes every tx and checks every signature (see `bench block` and `bench verify`), so it is a lower bound',
        'state sync answers pass in memory (serveStateSync called directly), not over libp2p; bytes are the answers a peer would send',
      ],
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export function stateSyncTable(r: BenchResult): string {
  const s = r.variants.stateSync as Record<string, number>
  const p = r.variants.replay as Record<string, number>
  const mib = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`
  return [
    `keys ${r.params.keys}, blocks ${r.params.blocks}`,
    `state sync  ${String(s.ms).padStart(8)} ms  ${mib(s.bytes!).padStart(10)}  (${s.pages} pages, ${s.requests} requests; fetch ${s.fetchMs} ms, open ${s.openMs} ms)`,
    `replay      ${String(p.ms).padStart(8)} ms  ${mib(p.bytes!).padStart(10)}  (${p.blocks} blocks, commit only)`,
  ].join('\n')
}
