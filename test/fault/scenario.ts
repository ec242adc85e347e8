// A scenario: validators, load, and a schedule of faults. `runScenario` starts the cluster, drives the
// load, injects and heals each fault, then runs every end check and returns the figures.
import { generateKeyPair, sha256, signTx, utf8 } from '@cityledger/core'
import { Rng } from '@cityledger/core/testing'
import type { ByzantineKind } from './byzantine.ts'
import {
  checkBlockTimes,
  checkChains,
  checkInvariants,
  checkPhases,
  LOAD_KINDS,
  measureRecovery,
} from './check.ts'
import { CatchingUpRuns } from './catchingUp.ts'
import { type CatchUp, type Cluster, startCluster, waitFor } from './cluster.ts'
import {
  type Fault,
  type FaultState,
  addCounts,
  awaitMoment,
  honestHead,
  inject,
  moveDataToTmpfs,
  penaltyCounts,
} from './faults.ts'
import type { FaultNodeOptions } from './faultNode.ts'
import { type Ack, Load, delay, setupLoad } from './load.ts'
import { unmount } from './tmpfs.ts'

export type { Fault, NodeRef } from './faults.ts'

/**
 * How far ahead of real time a committed block's time may be (the block-time rule: a block time is
 * never more than the drift bound ahead of the honest validators' clocks; the harness's clock is real).
 */
export const BLOCK_TIME_DRIFT_MS = 10_000

export interface Scenario {
  name: string
  seed: number
  validators: number
  /** Load rate, txs per second, for `loadMs`. */
  rate: number
  loadMs: number
  accounts?: number
  /** The load sends ~31 KB txs (and ballots) instead of small ones; this many are signed before it starts. */
  largeTxs?: number
  /** Most txs the load has in flight at once (default 64; the rest is shed). */
  maxInFlight?: number
  /** Faults in order; `at` is ms after the load started (a step starts no earlier than the last ended). */
  schedule: { at: number; fault: Fault }[]
  /** Nodes with a skewed clock (ms). */
  clockSkew?: Record<number, number>
  /** Byzantine nodes (at most f for the checks to be meaningful). */
  byzantine?: Record<number, ByzantineKind>
  /** The network must commit again within this long after the last fault healed. Default 30 s. */
  recoveryBoundMs?: number
  consensus?: Record<string, number>
}

export interface ScenarioReport {
  name: string
  seed: number
  faults: Record<string, number>
  acked: number
  found: number
  /** Load txs (not setup, not probe) acknowledged. */
  loadAcked: number
  lowestHead: number
  /** Per healed fault: ms until every honest live node passed the head it saw at the heal. */
  recoveries: { kind: string; ms: number }[]
  /** ms for a fresh tx submitted at the end (after the last heal) to commit. */
  finalRecoveryMs: number
  load: Load['stats']
  /** Penalties honest nodes gave (Prometheus counter, summed over honest nodes). */
  penalties: number
  /** The same, by reason. */
  penaltyReasons: Record<string, number>
  violations: string[]
  /** Ballots acknowledged as accepted (the one-ballot-per-voter check is not vacuous). */
  ballots?: number
  /** Blocks whose txs add up to more than 1 MB. */
  bigBlocks: number
  /** Bytes of the load's txs in each block, by height (index 0 unused). */
  blockBytes: number[]
  /** Where each phase started: the highest honest head at the load's start and at each fault. */
  phases: { name: string; from: number }[]
  /** What each liar (liar.ts) says it did, from the last line it printed. */
  byzantineStats: Record<number, Record<string, unknown>>
  /** Per restart of a node: ms from its `ready` until it reached the height the others had then. */
  catchUps: CatchUp[]
  durationMs: number
}

export async function runScenario(
  sc: Scenario,
  log: (s: string) => void = () => {},
): Promise<ScenarioReport> {
  const t0 = Date.now()
  const rng = new Rng(sc.seed)
  const n = sc.validators
  const faults: Record<number, FaultNodeOptions> = {}
  for (const [i, ms] of Object.entries(sc.clockSkew ?? {})) faults[+i] = { ...faults[+i], clockSkewMs: ms }
  for (const [i, kind] of Object.entries(sc.byzantine ?? {}))
    faults[+i] = { ...faults[+i], byzantine: kind, seed: sc.seed + +i }
  const nodesOf = (kind: 'diskFull' | 'fillDisk') =>
    new Set(sc.schedule.flatMap(({ fault: f }) => (f.kind === kind ? [f.node] : [])))
  const diskNodes = nodesOf('diskFull')
  const tmpfsNodes = nodesOf('fillDisk')
  const proxied = sc.schedule.some((s) => ['partition', 'delay', 'link'].includes(s.fault.kind))
  const state: FaultState = { stopped: new Set(), tmpfs: new Map() }
  // Nodes whose disk fills run under the full-disk wrapper from the start (its flag file in the
  // cluster's folder); nodes on a tmpfs are moved there after the cluster is up.
  for (const i of diskNodes) faults[i] = { ...faults[i], diskFullFlag: `disk-full-${i}` }
  const cluster = await startCluster({ validators: n, proxied, faults, consensus: sc.consensus })
  // The end checks leave out nodes stopped for good, and nodes that died on their own (reported).
  const dead = new Set<number>()
  const checked: Cluster = {
    ...cluster,
    honest: () => cluster.honest().filter((x) => !state.stopped.has(x.index) && !dead.has(x.index)),
  }
  const counts: Record<string, number> = {}
  for (const k of Object.values(sc.byzantine ?? {}))
    counts[`byzantine:${k}`] = (counts[`byzantine:${k}`] ?? 0) + 1
  for (const _ of Object.keys(sc.clockSkew ?? {})) counts.clockSkew = (counts.clockSkew ?? 0) + 1
  const violations: string[] = []
  const recoveries: { kind: string; ms: number }[] = []
  let load: Load | undefined
  let setupAcks: Ack[] = []
  let phases: { name: string; from: number }[] = []
  let monitor: { stop(): Map<number, number> } | undefined
  const byzantineStats: Record<number, Record<string, unknown>> = {}
  try {
    for (const i of tmpfsNodes) {
      // The node must be restarted to use the new data folder.
      await cluster.kill(i, 'SIGTERM')
      moveDataToTmpfs(cluster, i, state)
      await cluster.start(i)
    }
    log(`  cluster up at ${Date.now() - t0} ms`)
    const setup = await setupLoad(cluster, { accounts: sc.accounts ?? 8 })
    setupAcks = setup.acks
    log(`  accounts set up at ${Date.now() - t0} ms`)
    load = new Load(cluster, setup.world, rng.fork(), {
      rate: sc.rate,
      large: sc.largeTxs !== undefined,
      maxInFlight: sc.maxInFlight,
    })
    if (sc.largeTxs) load.presignLarge(sc.largeTxs)
    phases = [{ name: 'before the first fault', from: await honestHead(cluster) }]
    load.start()
    monitor = watchCatchingUp(checked)
    const loadStart = Date.now()
    for (const [k, step] of sc.schedule.entries()) {
      const wait = loadStart + step.at - Date.now()
      if (wait > 0) await delay(wait)
      await awaitMoment(cluster, step.fault)
      log(`  fault ${JSON.stringify(step.fault)} at ${((Date.now() - loadStart) / 1000).toFixed(1)} s`)
      phases.push({
        name: `${k + 1} (${step.fault.kind}, then until the next fault)`,
        from: await honestHead(cluster),
      })
      const problem = await inject(cluster, step.fault, rng, state, log)
      if (problem) violations.push(`${step.fault.kind}: ${problem}`)
      counts[step.fault.kind] = (counts[step.fault.kind] ?? 0) + 1
      const r = await recovery(cluster, sc.recoveryBoundMs ?? 30_000)
      if (r.violation) violations.push(`${step.fault.kind}: ${r.violation}`)
      recoveries.push({ kind: step.fault.kind, ms: r.ms })
      log(`  recovered in ${r.ms} ms${r.violation ? ` (${r.violation.split('\n')[0]})` : ''}`)
    }
    const left = loadStart + sc.loadMs - Date.now()
    if (left > 0) await delay(left)
    log(`  load ended at ${Date.now() - t0} ms`)
    const probe = new Load(cluster, setup.world, rng.fork(), { rate: 0 })
    const final = await measureRecovery(
      () => probe.drive(probeTx(cluster), 'probe'),
      Date.now(),
      sc.recoveryBoundMs ?? 30_000,
    )
    if (final.violation) violations.push(final.violation)
    // A node that died on its own (not by the harness) is a finding in itself: say so with its log.
    for (const node of checked.honest())
      if (!node.process || node.process.exitCode !== null || node.process.signalCode !== null) {
        dead.add(node.index)
        violations.push(
          `node ${node.index} is not running (exit ${node.process?.exitCode ?? node.process?.signalCode}):\n${cluster.log(node.index, 30)}`,
        )
      }
    // A restarted validator must catch up with the others (an operator restarts for every upgrade).
    const catchUps = await cluster.catchUps()
    for (const c of catchUps.filter((x) => !x.interrupted))
      if (!c.caughtUp || c.ms > (sc.recoveryBoundMs ?? 30_000))
        violations.push(
          `node ${c.node} restarted and ${c.caughtUp ? `took ${c.ms} ms` : `was still at height ${c.height} after ${c.ms} ms`} to reach height ${c.target}${c.why ? `:\n${c.why}` : ''}`,
        )
    const stats = await load.stop()
    const catching = monitor.stop()
    for (const [i, ms] of catching)
      if (ms > (sc.recoveryBoundMs ?? 30_000))
        violations.push(`node ${i} reported catching up (refusing txs) for ${ms} ms in a row`)
    for (const node of cluster.nodes.filter((x) => x.byzantine)) {
      const line = cluster
        .log(node.index, 2000)
        .split('\n')
        .findLast((l) => l.startsWith('{"liar"'))
      if (line) byzantineStats[node.index] = JSON.parse(line).liar
    }
    await probe.stop(0)
    if (stats.unresolved + probe.stats.unresolved > 0)
      violations.push(
        `${stats.unresolved + probe.stats.unresolved} txs left unresolved (no node acknowledged them within 30 s of the end)`,
      )
    log(`  probe and catch-ups done at ${Date.now() - t0} ms`)
    const acks = [...setupAcks, ...load.acks.values(), ...probe.acks.values()]
    const chains = await checkChains(checked, acks)
    violations.push(...chains.violations)
    violations.push(...checkPhases(phases, chains.lowestHead, acks))
    violations.push(...checkBlockTimes(chains.blocks, acks, BLOCK_TIME_DRIFT_MS))
    violations.push(...(await checkInvariants(checked, setup.world, acks)))
    const penalties = await penaltiesOf(checked, state)
    const sizes = load.sizes
    const blockBytes = [0]
    for (const b of chains.blocks) blockBytes[b.height] = b.txs.reduce((a, t) => a + (sizes.get(t) ?? 0), 0)
    const bigBlocks = blockBytes.filter((x) => x > 1e6).length
    return {
      name: sc.name,
      seed: sc.seed,
      faults: counts,
      acked: chains.acked,
      found: chains.found,
      loadAcked: acks.filter((a) => LOAD_KINDS.has(a.kind)).length,
      lowestHead: chains.lowestHead,
      recoveries,
      finalRecoveryMs: final.ms,
      load: stats,
      penalties: penalties.total,
      penaltyReasons: penalties.reasons,
      ballots: acks.filter((a) => a.kind === 'ballot' && a.status === 'committed').length,
      bigBlocks,
      blockBytes,
      phases,
      byzantineStats,
      catchUps,
      violations,
      durationMs: Date.now() - t0,
    }
  } catch (err) {
    violations.push(`harness: ${(err as Error).stack ?? err}`)
    monitor?.stop()
    await load?.stop(0).catch(() => {})
    return {
      name: sc.name,
      seed: sc.seed,
      faults: counts,
      acked: 0,
      found: 0,
      loadAcked: 0,
      lowestHead: 0,
      recoveries,
      finalRecoveryMs: -1,
      load: load?.stats ?? { issued: 0, shed: 0, acked: 0, unresolved: 0, refused: {} },
      penalties: 0,
      penaltyReasons: {},
      bigBlocks: 0,
      blockBytes: [],
      phases,
      byzantineStats,
      catchUps: [],
      violations,
      durationMs: Date.now() - t0,
    }
  } finally {
    if (violations.length)
      for (const node of cluster.nodes) log(`--- node ${node.index}\n${cluster.log(node.index, 25)}`)
    await cluster.close()
    for (const dir of state.tmpfs.values()) unmount(dir)
  }
}

function probeTx(cluster: Cluster): Uint8Array {
  const key = generateKeyPair()
  return signTx(
    {
      chainId: cluster.layout.genesis.chainId,
      service: 'identity',
      method: 'registerSubject',
      args: { subject: sha256(utf8.encode(`probe-${Date.now()}-${Math.random()}`)) },
      signer: key.publicKey,
      nonce: 1,
      expiry: 0,
    },
    key.secretKey,
  ).bytes
}

/** After a heal: until every honest live node passes the highest head seen at the heal. */
async function recovery(cluster: Cluster, boundMs: number): Promise<{ ms: number; violation?: string }> {
  const t = Date.now()
  const nodes = cluster.live().filter((x) => !x.byzantine)
  const hs = await Promise.all(
    nodes.map((x) =>
      x.client
        .status()
        .then((s) => s.height)
        .catch(() => 0),
    ),
  )
  const target = Math.max(...hs) + 1
  try {
    await waitFor(
      `every honest node past height ${target - 1}`,
      async () => {
        const now = await Promise.all(nodes.map((x) => x.client.status().then((s) => s.height)))
        return now.every((h) => h >= target)
      },
      boundMs,
    )
    return { ms: Date.now() - t }
  } catch (err) {
    return { ms: Date.now() - t, violation: (err as Error).message }
  }
}

/** Penalties the honest nodes gave, now and (`state`) before the harness killed them. */
async function penaltiesOf(
  cluster: Cluster,
  state: FaultState,
): Promise<{ total: number; reasons: Record<string, number> }> {
  const reasons: Record<string, number> = { ...state.penaltiesBeforeKills }
  for (const node of cluster.honest()) addCounts(reasons, await penaltyCounts(node))
  return { total: Object.values(reasons).reduce((a, b) => a + b, 0), reasons }
}

/**
 * Polls every honest live node's status twice a second; `stop()` returns, per node, the longest run
 * of consecutive answers saying it is catching up (refusing txs with NOT_READY), in ms, within one
 * process of the node (CatchingUpRuns).
 */
function watchCatchingUp(cluster: Cluster): { stop(): Map<number, number> } {
  const runs = new CatchingUpRuns()
  let busy = false
  const timer = setInterval(() => {
    if (busy) return
    busy = true
    const nodes = cluster.live().filter((x) => !x.byzantine)
    void Promise.all(
      nodes.map(async (x) => {
        const proc = x.process
        const s = await x.client.status().catch(() => undefined)
        if (s) runs.observe(x.index, proc, s.catchingUp, Date.now())
      }),
    ).finally(() => {
      busy = false
    })
  }, 500)
  return {
    stop() {
      clearInterval(timer)
      return runs.longest()
    },
  }
}
