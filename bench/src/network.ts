import { type Tx, createVerifierPool, defaultPoolSize, toHex, txSignatureCheck } from '@cityledger/core'
import { DEFAULT_CONSENSUS, createClient } from '@cityledger/node'
import {
  type BenchResult,
  type Figures,
  type RoundOptions,
  fmt,
  machine,
  measure,
  progress,
  quantile,
  round3,
  table,
  targetCheck,
} from './harness.ts'
import { keyFromSeed } from './signer.ts'
import { BATCH_TXS, LANES_PER_NODE, Submitter } from './submitter.ts'
import { type BenchNetwork, procSample, startNetwork } from './testnet.ts'
import { type Mix, Workload } from './workload.ts'

export interface NetworkOptions extends RoundOptions {
  validators: number
  /** Offered load per stage, tx/s: one stage for --rate, several for --ramp. */
  rates: number[]
  /** Length of each stage. */
  seconds: number
  /** Citizens signing (plus 64 operators, 32 issuers). */
  signers: number
  /** Longest wait for the last txs to commit after a stage. */
  drainSeconds: number
  /** 'all' (default): each signer's txs to one node, spread over all; 'primary': everything to node 0. */
  submitTo?: 'all' | 'primary'
  consensus?: Record<string, number>
}

export const NETWORK_DEFAULTS: NetworkOptions = {
  warmup: 1,
  rounds: 3,
  validators: 4,
  rates: [3000],
  seconds: 20,
  signers: 10_000,
  drainSeconds: 15,
}

/** No ballots: poll phases follow heights, which a live network does not let us pin. */
const NETWORK_MIX: Mix = { award: 5, spend: 5, certificate: 3, subject: 7 }
/** Below the node's default mempool.maxPerSigner (64). */
const SETUP_CHUNK = 48

interface StageResult {
  offeredRate: number
  seconds: number
  submitted: number
  accepted: number
  rejected: Record<string, number>
  /** Offered txs never answered: the nodes did not keep up with the offered rate. */
  abandoned: number
  /** Accepted txs seen committed, by the end of the drain. */
  committed: number
  /** Accepted txs not seen committed by the end of the drain (still pending, or lost). */
  acceptedNotCommitted: number
  /** Committed within the stage's window, per second. */
  committedPerSec: number
  failedInBlock: number
  /** From the moment the schedule offered the tx to the block event carrying it. */
  latencyMs: { p50: number; p90: number; p99: number; max: number }
  /** From the node's 202 answer to the block event. */
  acceptToCommitMs: { p50: number; p99: number }
  blocksPerSec: number
  viewChanges: number
  /** Penalties the validators gave each other during the stage, by reason (from /metrics). */
  p2pPenalties: Record<string, number>
  minPeersAtEnd: number
  nodes: { cpuPercent: number; rssMiB: number; peakRssMiB: number }[]
  /** CPU of this process (signing is done before; this is HTTP submission and the event stream). */
  loadGeneratorCpuPercent: number
  /** `POST /v1/txs/batch` requests of the stage and their mean size (envelopes per request). */
  batches: { requests: number; meanTxs: number }
  /** Txs sent again after a back-pressure refusal (MEMPOOL_FULL, RATE_LIMITED, ...), by code. */
  retried: Record<string, number>
  /** Times the block event stream was opened again (the node cut it), over the whole run. */
  eventStreamReconnects: number
}

/** Which node a tx is submitted to: by signer over every node, or everything to node 0 (the first primary). */
let submitToPrimary = false
const nodeOf = (tx: Tx, n: number) => (submitToPrimary ? 0 : tx.body.signer[0]! % n)

/**
 * Watches committed blocks on one node's event stream: commit time of every tx hash. Blocks only (no
 * service events), and a stream the node cuts (a consumer behind its backlog bound) is opened again
 * from the next height, so a lost stream never reads as a chain that stopped committing (until
 * 2026-12-01 it did: an error ended the watch silently). `reconnects` says how often.
 */
function watchCommits(rpc: string) {
  const ac = new AbortController()
  const committedAt = new Map<string, number>()
  const blocks: { at: number; height: number; txs: number }[] = []
  const state = { reconnects: 0 }
  let resolveOpen: () => void
  const opened = new Promise<void>((r) => (resolveOpen = r))
  const done = (async () => {
    const client = createClient({ url: rpc })
    let next: number | undefined
    while (!ac.signal.aborted) {
      try {
        const events = client.events({
          signal: ac.signal,
          types: ['block'],
          ...(next !== undefined ? { fromHeight: next } : {}),
        })
        resolveOpen!()
        for await (const e of events) {
          if (e.type !== 'block') continue
          const at = performance.now()
          const b = e.data as { header: { height: number }; txs: string[] }
          if (next !== undefined && b.header.height < next) continue
          next = b.header.height + 1
          blocks.push({ at, height: b.header.height, txs: b.txs.length })
          for (const h of b.txs) committedAt.set(h, at)
        }
      } catch {}
      if (ac.signal.aborted) break
      state.reconnects++
      await new Promise((r) => setTimeout(r, 100))
    }
  })()
  return { committedAt, blocks, opened, state, stop: () => ac.abort(), done }
}

/** Sums of a few node metrics over the validators (Prometheus text from /metrics). */
async function scrape(
  rpc: string[],
): Promise<{ viewChanges: number; penalties: Record<string, number>; minPeers: number }> {
  let viewChanges = 0
  let minPeers = Number.POSITIVE_INFINITY
  const penalties: Record<string, number> = {}
  for (const url of rpc) {
    try {
      const text = await (await fetch(`${url}/metrics`)).text()
      for (const line of text.split('\n')) {
        const m = /^(cityledger_[a-z_]+)(?:\{([^}]*)\})?\s+([0-9.e+-]+)$/.exec(line)
        if (!m) continue
        const v = Number(m[3])
        if (m[1] === 'cityledger_consensus_view_changes_total') viewChanges += v
        else if (m[1] === 'cityledger_p2p_peers') minPeers = Math.min(minPeers, v)
        else if (m[1] === 'cityledger_p2p_penalties_total') {
          const reason = /reason="([^"]*)"/.exec(m[2] ?? '')?.[1] ?? 'other'
          penalties[reason] = (penalties[reason] ?? 0) + v
        }
      }
    } catch {}
  }
  return { viewChanges, penalties, minPeers: Number.isFinite(minPeers) ? minPeers : -1 }
}

/** Submits each setup wave (split so no signer exceeds the mempool's per-signer limit) and waits for its commits. */
async function runSetup(net: BenchNetwork, waves: Tx[][], rpc: string[]): Promise<void> {
  const clients = rpc.map((url) => createClient({ url }))
  for (const [w, wave] of waves.entries()) {
    const bySigner = new Map<string, Tx[]>()
    for (const tx of wave) {
      const k = toHex(tx.body.signer)
      bySigner.set(k, [...(bySigner.get(k) ?? []), tx])
    }
    for (let start = 0; ; start += SETUP_CHUNK) {
      const part = [...bySigner.values()].flatMap((txs) => txs.slice(start, start + SETUP_CHUNK))
      if (part.length === 0) break
      progress(`network setup: wave ${w + 1}, ${part.length} txs`)
      const sub = new Submitter(rpc, nodeOf)
      for (const tx of part) sub.submit(tx, () => {})
      await sub.idle()
      sub.close()
      if (Object.keys(sub.rejected).length)
        throw new Error(`setup wave ${w + 1} refused: ${JSON.stringify(sub.rejected)}\n${net.log(0)}`)
      const statuses = await Promise.all(
        part.map((tx) => clients[nodeOf(tx, rpc.length)]!.waitForTx(tx.hash, { timeoutMs: 60_000 })),
      )
      const i = statuses.findIndex((s) => s.status !== 'committed')
      if (i >= 0) {
        const { service, method, nonce } = part[i]!.body
        throw new Error(
          `setup wave ${w + 1}: ${service}.${method} (nonce ${nonce}) is ${statuses[i]!.status} ${statuses[i]!.code ?? ''}`,
        )
      }
    }
  }
}

/**
 * An n-validator network on loopback under an open-loop load: pre-signed txs offered at a fixed
 * rate (or a ramp of rates), commit latency from each tx's accepted submission to the block event
 * that carries it, blocks/s, view changes, CPU and memory per node.
 */
export async function runNetwork(opts: NetworkOptions, command: string): Promise<BenchResult> {
  // The ceiling of this run: the pool on every core, before the network shares them.
  const sampler = new Workload({ chainId: 'bench-net', citizens: 1000, label: 'bench-net/ceiling' })
  const sample = sampler.next(5000).map(txSignatureCheck)
  const pool = await createVerifierPool({ size: defaultPoolSize() })
  let ceiling: Figures
  try {
    ceiling = await measure('pool verify (ceiling)', opts, sample.length, 'verify/s', async () => {
      await pool.verifyBatch(sample)
    })
  } finally {
    await pool.close()
  }

  const consensus = { ...DEFAULT_CONSENSUS, ...opts.consensus }
  submitToPrimary = opts.submitTo === 'primary'
  progress(`network: starting ${opts.validators} validators`)
  const net = await startNetwork({ validators: opts.validators, consensus })
  const stop = () => void net.close()
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  const stages: StageResult[] = []
  try {
    const { layout } = net
    const rpc = layout.rpc
    const workload = new Workload({
      chainId: layout.genesis.chainId,
      city: keyFromSeed(layout.cityKey.secretKey),
      citizens: opts.signers,
      operators: 64,
      issuers: 32,
      spenders: Math.min(opts.signers, 2000),
      mix: NETWORK_MIX,
      label: `bench-net-${Date.now()}`,
      genesisRoles: genesisRoles(layout.genesis.services),
    })
    await runSetup(net, workload.setupWaves(), rpc)
    const total = opts.rates.reduce((s, r) => s + Math.ceil(r * opts.seconds), 0)
    progress(`network: pre-signing ${total} load txs`)
    const load = workload.next(total)
    const pids = net.processes.map((p) => p.pid!)
    const watch = watchCommits(rpc[0]!)
    await watch.opened
    let offset = 0
    for (const rate of opts.rates) {
      const txs = load.slice(offset, offset + Math.ceil(rate * opts.seconds))
      offset += txs.length
      progress(`network: ${txs.length} txs at ${rate} tx/s for ${opts.seconds} s`)
      const sub = new Submitter(rpc, nodeOf)
      // Latency counts from the moment the schedule offered the tx (no coordinated omission).
      const submittedAt = new Map<string, number>()
      const acceptedAt = new Map<string, number>()
      const m0 = await scrape(rpc)
      const cpu0 = pids.map(procSample)
      const gen0 = process.cpuUsage()
      const t0 = performance.now()
      const end = t0 + opts.seconds * 1000
      let sent = 0
      let lastReport = t0
      // Open loop: every tick, send whatever the schedule says is due, whatever the answers.
      while (sent < txs.length) {
        const now = performance.now()
        const due = Math.min(txs.length, Math.floor(((now - t0) / 1000) * rate))
        for (; sent < due; sent++) {
          const tx = txs[sent]!
          const hex = toHex(tx.hash)
          const offeredAt = t0 + (sent / rate) * 1000
          sub.submit(tx, (at) => {
            submittedAt.set(hex, offeredAt)
            acceptedAt.set(hex, at)
          })
        }
        if (now - lastReport > 5000) {
          lastReport = now
          progress(
            `network: ${sent} sent, ${sub.accepted} accepted, ${sub.inFlight} in flight, ${watch.committedAt.size} committed`,
          )
        }
        await new Promise((r) => setTimeout(r, 5))
      }
      while (performance.now() < end) await new Promise((r) => setTimeout(r, 20))
      const cpu1 = pids.map(procSample)
      const gen = process.cpuUsage(gen0)
      const m1 = await scrape(rpc)
      const windowEnd = performance.now()
      // Drain: let queued submissions finish and wait (bounded) until every accepted tx is seen committed.
      const drainUntil = performance.now() + opts.drainSeconds * 1000
      while (performance.now() < drainUntil && sub.inFlight > 0) await new Promise((r) => setTimeout(r, 100))
      await sub.abort()
      // Then as long again for what was accepted to commit (a tx accepted at the end of the first part
      // needs a few rounds): what is still missing after that is reported, not waited for.
      const commitUntil = performance.now() + opts.drainSeconds * 1000
      while (
        performance.now() < commitUntil &&
        [...submittedAt.keys()].some((h) => !watch.committedAt.has(h))
      )
        await new Promise((r) => setTimeout(r, 100))
      const latencies: number[] = []
      const fromAccept: number[] = []
      let inWindow = 0
      for (const [h, at] of submittedAt) {
        const c = watch.committedAt.get(h)
        if (c === undefined) continue
        latencies.push(c - at)
        fromAccept.push(c - acceptedAt.get(h)!)
        if (c <= windowEnd) inWindow++
      }
      const blocks = watch.blocks.filter((b) => b.at >= t0 && b.at <= windowEnd).length
      const seconds = (windowEnd - t0) / 1000
      let failedInBlock = 0
      for (const tx of txs.slice(0, 50)) {
        const s = await createClient({ url: rpc[nodeOf(tx, rpc.length)]! })
          .tx(tx.hash)
          .catch(() => undefined)
        if (s?.status === 'failed') failedInBlock++
      }
      stages.push({
        offeredRate: rate,
        seconds: round3(seconds),
        submitted: txs.length,
        accepted: sub.accepted,
        rejected: sub.rejected,
        abandoned: sub.abandoned,
        committed: latencies.length,
        acceptedNotCommitted: submittedAt.size - latencies.length,
        committedPerSec: round3(inWindow / seconds),
        failedInBlock,
        latencyMs: {
          p50: round3(quantile(latencies, 0.5)),
          p90: round3(quantile(latencies, 0.9)),
          p99: round3(quantile(latencies, 0.99)),
          max: round3(latencies.reduce((a, b) => Math.max(a, b), 0)),
        },
        acceptToCommitMs: { p50: round3(quantile(fromAccept, 0.5)), p99: round3(quantile(fromAccept, 0.99)) },
        blocksPerSec: round3(blocks / seconds),
        viewChanges: m1.viewChanges - m0.viewChanges,
        p2pPenalties: Object.fromEntries(
          Object.entries(m1.penalties).map(([k, v]) => [k, v - (m0.penalties[k] ?? 0)]),
        ),
        minPeersAtEnd: m1.minPeers,
        loadGeneratorCpuPercent: round3(((gen.user + gen.system) / 1e6 / seconds) * 100),
        batches: { requests: sub.requests, meanTxs: round3(sub.envelopes / Math.max(1, sub.requests)) },
        retried: sub.retried,
        eventStreamReconnects: watch.state.reconnects,
        nodes: pids.map((_, i) => ({
          cpuPercent: round3(
            cpu0[i] && cpu1[i] ? ((cpu1[i].cpuSeconds - cpu0[i].cpuSeconds) / seconds) * 100 : Number.NaN,
          ),
          rssMiB: round3(cpu1[i]?.rssMiB ?? Number.NaN),
          peakRssMiB: round3(cpu1[i]?.peakRssMiB ?? Number.NaN),
        })),
      })
      progress(
        `network: ${rate} tx/s offered -> ${fmt(inWindow / seconds)} tx/s committed, p99 ${fmt(quantile(latencies, 0.99))} ms`,
      )
    }
    watch.stop()
    await watch.done
  } finally {
    process.removeListener('SIGINT', stop)
    process.removeListener('SIGTERM', stop)
    await net.close()
  }

  const best = stages.reduce((a, b) => (b.committedPerSec > a.committedPerSec ? b : a))
  const perNodeCeiling = ceiling.median / opts.validators
  const ratios = {
    committedVsCeiling: round3(best.committedPerSec / perNodeCeiling),
    committedVsOffered: round3(best.committedPerSec / best.offeredRate),
  }
  const variants: Record<string, Record<string, unknown>> = {
    'pool-verify': ceiling as unknown as Record<string, unknown>,
  }
  for (const s of stages) variants[`rate-${s.offeredRate}`] = s as unknown as Record<string, unknown>
  return {
    id: 'network',
    command,
    date: new Date().toISOString(),
    machine: machine(),
    params: {
      ...opts,
      consensus,
      mix: NETWORK_MIX,
      bestStage: `rate-${best.offeredRate}`,
      submit: { endpoint: '/v1/txs/batch', maxBatchTxs: BATCH_TXS, lanesPerNode: LANES_PER_NODE },
    },
    variants,
    ratios,
    targets:
      opts.validators === 4
        ? {
            committedPerSec: targetCheck(best.committedPerSec, '>=', 3000, 'committed tx/s'),
            p99: targetCheck(best.latencyMs.p99, '<', 2000, 'p99 ms'),
            committedVsCeiling: targetCheck(ratios.committedVsCeiling, '>=', 0.5, 'committedVsCeiling'),
          }
        : {},
    notes: [
      `ceiling per node = pool verify/s on all cores (${fmt(ceiling.median)}) / ${opts.validators} validators`,
    ],
  }
}

export function networkTable(r: BenchResult): string {
  const rows: (string | number)[][] = [
    [
      'stage',
      'offered',
      'committed tx/s',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'blocks/s',
      'view chg',
      'rejected',
      'CPU % (per node)',
      'RSS MiB',
    ],
  ]
  for (const [name, v] of Object.entries(r.variants)) {
    if (name === 'pool-verify') continue
    const s = v as unknown as StageResult
    const rejected = Object.values(s.rejected).reduce((a, b) => a + b, 0)
    rows.push([
      name,
      s.offeredRate,
      s.committedPerSec,
      s.latencyMs.p50,
      s.latencyMs.p90,
      s.latencyMs.p99,
      s.blocksPerSec,
      s.viewChanges,
      rejected,
      s.nodes.map((n) => fmt(n.cpuPercent)).join('/'),
      s.nodes.map((n) => fmt(n.rssMiB)).join('/'),
    ])
  }
  const c = r.variants['pool-verify'] as unknown as Figures
  return `${table(rows)}\n\nverify ceiling (pool on all cores, same run): ${fmt(c.median)} verify/s`
}

/** `scope/role/keyHex` of the roles the testnet genesis grants (its identity config). */
function genesisRoles(services: Record<string, unknown>): string[] {
  const roles =
    (services.identity as { roles?: { scope: string; role: string; key: string }[] } | undefined)?.roles ?? []
  return roles.map((r) => `${r.scope}/${r.role}/${r.key.replace(/^0x/, '').toLowerCase()}`)
}
