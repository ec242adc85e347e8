// A scenario: validators, load, and a schedule of faults. `runScenario` starts the cluster, drives the
// load, injects and heals each fault, then runs every end check and returns the figures.
import { cpSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair, sha256, signTx, utf8 } from '@cityledger/core'
import { Rng } from '@cityledger/core/testing'
import { dataPath, loadConfig } from '@cityledger/node'
import type { ByzantineKind } from './byzantine.ts'
import { checkChains, checkInvariants, measureRecovery } from './check.ts'
import { type Cluster, startCluster, waitFor } from './cluster.ts'
import { corruptJournal, corruptStoreFile } from './corrupt.ts'
import type { FaultNodeOptions } from './faultNode.ts'
import { type Ack, Load, delay, setupLoad } from './load.ts'

export type NodeRef = number | 'primary'

/** One fault; each heals itself after its duration (corruptions are repaired from a backup). */
export type Fault =
  | { kind: 'kill'; node: NodeRef; downMs: number }
  | { kind: 'pause'; node: NodeRef; ms: number }
  | { kind: 'partition'; groups: number[][]; ms: number }
  | { kind: 'delay'; delayMs: number; ms: number }
  | { kind: 'diskFull'; node: number; ms: number }
  | { kind: 'corruptJournal'; node: number }
  | { kind: 'corruptStore'; node: number }

export interface Scenario {
  name: string
  seed: number
  validators: number
  /** Load rate, txs per second, for `loadMs`. */
  rate: number
  loadMs: number
  accounts?: number
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
  lowestHead: number
  /** Per healed fault: ms until every honest live node passed the head it saw at the heal. */
  recoveries: { kind: string; ms: number }[]
  /** ms for a fresh tx submitted at the end (after the last heal) to commit. */
  finalRecoveryMs: number
  load: Load['stats']
  /** Penalties honest nodes gave (Prometheus counter, summed over honest nodes). */
  penalties: number
  violations: string[]
  /** Ballots acknowledged as accepted (the one-ballot-per-voter check is not vacuous). */
  ballots?: number
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
  const diskNodes = new Set(sc.schedule.flatMap((s) => (s.fault.kind === 'diskFull' ? [s.fault.node] : [])))
  const proxied = sc.schedule.some((s) => s.fault.kind === 'partition' || s.fault.kind === 'delay')
  const cluster = await startCluster({ validators: n, proxied, faults, consensus: sc.consensus })
  for (const i of diskNodes) {
    // The flag lives outside the node's folder; the node must be restarted to pick up the wrapper.
    cluster.nodes[i]!.fault = {
      ...cluster.nodes[i]!.fault,
      diskFullFlag: join(cluster.dir, `disk-full-${i}`),
    }
    await cluster.kill(i, 'SIGTERM')
    await cluster.start(i)
  }
  const counts: Record<string, number> = {}
  for (const k of Object.values(sc.byzantine ?? {}))
    counts[`byzantine:${k}`] = (counts[`byzantine:${k}`] ?? 0) + 1
  for (const _ of Object.keys(sc.clockSkew ?? {})) counts.clockSkew = (counts.clockSkew ?? 0) + 1
  const violations: string[] = []
  const recoveries: { kind: string; ms: number }[] = []
  let load: Load | undefined
  let setupAcks: Ack[] = []
  try {
    const setup = await setupLoad(cluster, { accounts: sc.accounts ?? 8 })
    setupAcks = setup.acks
    load = new Load(cluster, setup.world, rng.fork(), { rate: sc.rate })
    load.start()
    const loadStart = Date.now()
    for (const step of sc.schedule) {
      const wait = loadStart + step.at - Date.now()
      if (wait > 0) await delay(wait)
      log(`  fault ${JSON.stringify(step.fault)}`)
      const problem = await inject(cluster, step.fault, rng)
      if (problem) violations.push(`${step.fault.kind}: ${problem}`)
      counts[step.fault.kind] = (counts[step.fault.kind] ?? 0) + 1
      const r = await recovery(cluster, sc.recoveryBoundMs ?? 30_000)
      if (r.violation) violations.push(`${step.fault.kind}: ${r.violation}`)
      recoveries.push({ kind: step.fault.kind, ms: r.ms })
    }
    const left = loadStart + sc.loadMs - Date.now()
    if (left > 0) await delay(left)
    const probe = new Load(cluster, setup.world, rng.fork(), { rate: 0 })
    const final = await measureRecovery(
      () => probe.drive(probeTx(cluster), 'probe'),
      Date.now(),
      sc.recoveryBoundMs ?? 30_000,
    )
    if (final.violation) violations.push(final.violation)
    // A node that died on its own (not by the harness) is a finding in itself: say so with its log.
    for (const node of cluster.honest())
      if (!node.process || node.process.exitCode !== null || node.process.signalCode !== null)
        violations.push(
          `node ${node.index} is not running (exit ${node.process?.exitCode ?? node.process?.signalCode}):\n${cluster.log(node.index, 30)}`,
        )
    const stats = await load.stop()
    await probe.stop(0)
    const acks = [...setupAcks, ...load.acks.values(), ...probe.acks.values()]
    const chains = await checkChains(cluster, acks)
    violations.push(...chains.violations)
    violations.push(...(await checkInvariants(cluster, setup.world, acks)))
    const penalties = await penaltiesOf(cluster)
    return {
      name: sc.name,
      seed: sc.seed,
      faults: counts,
      acked: chains.acked,
      found: chains.found,
      lowestHead: chains.lowestHead,
      recoveries,
      finalRecoveryMs: final.ms,
      load: stats,
      penalties,
      ballots: acks.filter((a) => a.kind === 'ballot' && a.status === 'committed').length,
      violations,
      durationMs: Date.now() - t0,
    }
  } catch (err) {
    violations.push(`harness: ${(err as Error).stack ?? err}`)
    await load?.stop(0).catch(() => {})
    return {
      name: sc.name,
      seed: sc.seed,
      faults: counts,
      acked: 0,
      found: 0,
      lowestHead: 0,
      recoveries,
      finalRecoveryMs: -1,
      load: load?.stats ?? { issued: 0, shed: 0, acked: 0, unresolved: 0, refused: {} },
      penalties: 0,
      violations,
      durationMs: Date.now() - t0,
    }
  } finally {
    if (violations.length)
      for (const node of cluster.nodes) log(`--- node ${node.index}\n${cluster.log(node.index, 25)}`)
    await cluster.close()
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

async function primaryIndex(cluster: Cluster): Promise<number> {
  for (const node of cluster.live().filter((x) => !x.byzantine)) {
    try {
      return (await node.client.status()).view % cluster.nodes.length
    } catch {}
  }
  return 0
}

const resolveNode = async (cluster: Cluster, ref: NodeRef) =>
  ref === 'primary' ? primaryIndex(cluster) : ref

async function height(cluster: Cluster, i: number): Promise<number> {
  return (await cluster.nodes[i]!.client.status()).height
}

/** Injects one fault, waits its duration, heals it. Returns a violation message when the node misbehaved. */
async function inject(cluster: Cluster, f: Fault, rng: Rng): Promise<string | undefined> {
  switch (f.kind) {
    case 'kill': {
      const i = await resolveNode(cluster, f.node)
      await cluster.kill(i, 'SIGKILL')
      await delay(f.downMs)
      await cluster.start(i)
      return
    }
    case 'pause': {
      const i = await resolveNode(cluster, f.node)
      cluster.pause(i)
      await delay(f.ms)
      cluster.resume(i)
      return
    }
    case 'partition':
      cluster.partition(f.groups)
      await delay(f.ms)
      cluster.heal()
      return
    case 'delay':
      cluster.setAll({ kind: 'delay', ms: f.delayMs })
      await delay(f.ms)
      cluster.heal()
      return
    case 'diskFull': {
      const node = cluster.nodes[f.node]!
      const flag = node.fault?.diskFullFlag
      if (!flag) return 'node does not run with a disk-full flag'
      const before = await height(cluster, f.node).catch(() => 0)
      writeFileSync(flag, '')
      const code = await Promise.race([node.exited, delay(30_000).then(() => 'timeout' as const)])
      rmSync(flag, { force: true })
      if (code === 'timeout') {
        await cluster.kill(f.node)
        await cluster.start(f.node)
        return 'the node kept running for 30 s with a full disk'
      }
      const log = cluster.log(f.node, 200)
      let problem: string | undefined
      if (code !== 2) problem = `exit code ${code}, expected 2 (fatal, clean stop)`
      else if (!log.includes('ENOSPC')) problem = 'the node did not say the disk was full'
      await delay(f.ms)
      await cluster.start(f.node)
      const after = await height(cluster, f.node)
      if (after < before) problem = `height went back from ${before} to ${after} after the disk filled up`
      return problem
    }
    case 'corruptJournal':
    case 'corruptStore': {
      const node = cluster.nodes[f.node]!
      await cluster.kill(f.node, 'SIGTERM')
      const data = dataPath(node.home, loadConfig(node.home))
      const backup = `${data}.backup`
      cpSync(data, backup, { recursive: true })
      let problem: string | undefined
      try {
        const what =
          f.kind === 'corruptJournal' ? await corruptJournal(data, rng) : corruptStoreFile(data, rng)
        const r = await cluster.startExpectingFailure(f.node)
        if (r.code === -1) problem = `started on a ${what}`
        else if (r.code === 0 || r.code === null) problem = `exit ${r.code} on a ${what}`
        else if (!/cannot start/.test(r.output))
          problem = `no reason given for refusing a ${what}:\n${r.output}`
        if (r.code === -1) await cluster.kill(f.node)
      } finally {
        rmSync(data, { recursive: true, force: true })
        cpSync(backup, data, { recursive: true })
        rmSync(backup, { recursive: true, force: true })
      }
      await cluster.start(f.node)
      return problem
    }
  }
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

async function penaltiesOf(cluster: Cluster): Promise<number> {
  let total = 0
  for (const node of cluster.honest()) {
    const text = await node.client.metrics().catch(() => '')
    for (const line of text.split('\n'))
      if (line.startsWith('cityledger_p2p_penalties_total')) total += Number(line.split(' ').at(-1)) || 0
  }
  return total
}
