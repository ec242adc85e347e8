// The faults a scenario injects, and how each is healed. `inject` applies one fault, waits its
// duration, heals it and returns a violation message when a node misbehaved under it.
import { cpSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Rng } from '@cityledger/core/testing'
import { dataPath, loadConfig, writeConfig } from '@cityledger/node'
import { type Cluster, waitFor } from './cluster.ts'
import { type StoreDamage, corruptJournal, corruptStoreFile, ensureTables } from './corrupt.ts'
import { delay } from './load.ts'
import { fillUp, makeRoom, mountTmpfs } from './tmpfs.ts'

/** A node: by index, the current primary, or the primary of the view `primary` views ahead. */
export type NodeRef = number | 'primary' | { primary: number }

/** One fault; each heals itself after its duration (corruptions are repaired from a backup). */
export type Fault =
  | {
      kind: 'kill'
      node: NodeRef
      downMs: number
      /** Wait (up to 60 s) until the honest head is at least `rem` modulo `mod` (e.g. just before a checkpoint). */
      atHeight?: { mod: number; rem: number }
    }
  /**
   * Until an honest node has given a consensus penalty (the Byzantine primary `node` was caught), kills
   * the honest primary (SIGKILL, restarted after `downMs`) so the view moves round to `node`, at most
   * once per validator; nothing when it was caught already. How a scenario makes sure a Byzantine node
   * gets its turn as primary while the others are up (it may come up last, after they changed view).
   */
  | { kind: 'rotateUntilCaught'; node: number; downMs: number }
  /** SIGKILL and never restarted: the node is down for good and left out of the end checks. */
  | { kind: 'stop'; node: NodeRef }
  | { kind: 'pause'; node: NodeRef; ms: number }
  | { kind: 'partition'; groups: number[][]; ms: number }
  /** Cuts both directions of each listed link only (the others stay up). */
  | { kind: 'link'; pairs: [NodeRef, NodeRef][]; ms: number }
  | { kind: 'delay'; delayMs: number; ms: number }
  /** The JS wrapper's store fails writes with ENOSPC. */
  | { kind: 'diskFull'; node: number; ms: number }
  /** The node's data folder is on a small tmpfs that the harness fills up: LevelDB gets ENOSPC. */
  | { kind: 'fillDisk'; node: number; ms: number }
  | { kind: 'corruptJournal'; node: number }
  | { kind: 'corruptStore'; node: number; damage?: StoreDamage }

/** State the faults keep across a scenario. */
export interface FaultState {
  /** Nodes stopped for good. */
  stopped: Set<number>
  /** Per node on a tmpfs: the mount folder. */
  tmpfs: Map<number, string>
  /**
   * Penalties (by reason) counted by nodes just before the harness killed them: a restart starts the
   * node's counters from zero, and the penalties it gave still count.
   */
  penaltiesBeforeKills?: Record<string, number>
}

/** A node's penalty counters (`cityledger_p2p_penalties_total`) by reason; empty when it does not answer. */
export async function penaltyCounts(node: Cluster['nodes'][number]): Promise<Record<string, number>> {
  const reasons: Record<string, number> = {}
  const text = await node.client.metrics().catch(() => '')
  for (const line of text.split('\n')) {
    if (!line.startsWith('cityledger_p2p_penalties_total')) continue
    const reason = /reason="([^"]*)"/.exec(line)?.[1] ?? ''
    reasons[reason] = (reasons[reason] ?? 0) + (Number(line.split(' ').at(-1)) || 0)
  }
  return reasons
}

/** Adds `counts` into `into`. */
export function addCounts(into: Record<string, number>, counts: Record<string, number>): void {
  for (const [k, v] of Object.entries(counts)) into[k] = (into[k] ?? 0) + v
}

/**
 * Size of a node's tmpfs: room for twice the data of a short run (LevelDB needs about as much again
 * to reopen: it turns the log into a table before deleting it), small enough to fill at once.
 */
export const TMPFS_MIB = 32

/**
 * Moves a stopped node's data folder onto a fresh tmpfs (its config then points there). The caller
 * unmounts it once the node has stopped for the last time.
 */
export function moveDataToTmpfs(cluster: Cluster, i: number, state: FaultState): void {
  const node = cluster.nodes[i]!
  const cfg = loadConfig(node.home)
  const from = dataPath(node.home, cfg)
  const mount = mountTmpfs(TMPFS_MIB)
  state.tmpfs.set(i, mount)
  const to = join(mount, 'data')
  mkdirSync(to)
  for (const f of readdirSync(from)) cpSync(join(from, f), join(to, f), { recursive: true })
  rmSync(from, { recursive: true, force: true })
  cfg.store.path = to
  writeConfig(node.home, cfg)
}

/**
 * The primary of the view most honest live nodes are in (ties: the later view). Not the first node's
 * view: a node just restarted reports an old view until it hears the current one.
 */
async function primaryIndex(cluster: Cluster, ahead = 0): Promise<number> {
  const views = (await honestStatuses(cluster)).map((s) => s?.view)
  const count = new Map<number, number>()
  for (const v of views) if (v !== undefined) count.set(v, (count.get(v) ?? 0) + 1)
  let view: number | undefined
  for (const [v, n] of count)
    if (view === undefined || n > count.get(view)! || (n === count.get(view) && v > view)) view = v
  return view === undefined ? 0 : (view + ahead) % cluster.nodes.length
}

const resolveNode = async (cluster: Cluster, ref: NodeRef) =>
  ref === 'primary'
    ? primaryIndex(cluster)
    : typeof ref === 'number'
      ? ref
      : primaryIndex(cluster, ref.primary)

async function height(cluster: Cluster, i: number): Promise<number> {
  return (await cluster.nodes[i]!.client.status()).height
}

/** The status of each honest live node (undefined for one that does not answer). */
async function honestStatuses(cluster: Cluster): Promise<({ view: number; height: number } | undefined)[]> {
  return Promise.all(
    cluster
      .live()
      .filter((x) => !x.byzantine)
      .map((x) => x.client.status().catch(() => undefined)),
  )
}

/** The highest head among honest live nodes (0 when none answers). */
export async function honestHead(cluster: Cluster): Promise<number> {
  return Math.max(0, ...(await honestStatuses(cluster)).map((s) => s?.height ?? 0))
}

/** What a fault waits for before it is injected (e.g. a kill just before a checkpoint). */
export async function awaitMoment(cluster: Cluster, f: Fault): Promise<void> {
  if (f.kind !== 'kill' || !f.atHeight) return
  const { mod, rem } = f.atHeight
  await waitFor(
    `honest head at >= ${rem} mod ${mod}`,
    async () => (await honestHead(cluster)) % mod >= rem,
    120_000,
  )
}

/** Injects one fault, waits its duration, heals it. Returns a violation message when the node misbehaved. */
export async function inject(
  cluster: Cluster,
  f: Fault,
  rng: Rng,
  state: FaultState,
  log: (s: string) => void = () => {},
): Promise<string | undefined> {
  switch (f.kind) {
    case 'kill': {
      const i = await resolveNode(cluster, f.node)
      // Killing the primary is how a scenario rotates the view round to a Byzantine node: once it is
      // the primary, it is left to misbehave (and the others to move on).
      if (f.node === 'primary' && cluster.nodes[i]!.byzantine) {
        log(`  node ${i} (Byzantine) is the primary: not killed`)
        await delay(f.downMs)
        return
      }
      if (!cluster.nodes[i]!.byzantine)
        addCounts((state.penaltiesBeforeKills ??= {}), await penaltyCounts(cluster.nodes[i]!))
      await cluster.kill(i, 'SIGKILL')
      await delay(f.downMs)
      await cluster.start(i)
      return
    }
    case 'rotateUntilCaught': {
      const caught = async () => {
        const counts = { ...state.penaltiesBeforeKills }
        for (const x of cluster.live().filter((y) => !y.byzantine)) addCounts(counts, await penaltyCounts(x))
        return (counts.consensus ?? 0) > 0
      }
      for (let k = 0; k < cluster.nodes.length; k++) {
        if (await caught()) return
        const i = await primaryIndex(cluster)
        if (i === f.node) {
          // Its turn: the others catch it, or change view for want of its blocks.
          await waitFor(
            `node ${i} caught or its view over`,
            async () => (await caught()) || (await primaryIndex(cluster)) !== i,
            30_000,
          )
          continue
        }
        log(`  node ${f.node} not caught yet: killing the primary, node ${i}`)
        addCounts((state.penaltiesBeforeKills ??= {}), await penaltyCounts(cluster.nodes[i]!))
        await cluster.kill(i, 'SIGKILL')
        await delay(f.downMs)
        await cluster.start(i)
        await waitFor(`a view after node ${i}'s`, async () => (await primaryIndex(cluster)) !== i, 60_000)
      }
      return (await caught())
        ? undefined
        : `no honest node penalised node ${f.node} after a turn of every primary`
    }
    case 'stop': {
      const i = await resolveNode(cluster, f.node)
      log(`  stopping node ${i} for good`)
      state.stopped.add(i)
      await cluster.kill(i, 'SIGKILL')
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
    case 'link':
      for (const pair of f.pairs) {
        const [a, b] = [await resolveNode(cluster, pair[0]), await resolveNode(cluster, pair[1])]
        log(`  cutting ${a}<->${b}`)
        cluster.setLink(a, b, { kind: 'drop' })
        cluster.setLink(b, a, { kind: 'drop' })
      }
      await delay(f.ms)
      cluster.heal()
      return
    case 'delay':
      cluster.setAll({ kind: 'delay', ms: f.delayMs })
      await delay(f.ms)
      cluster.heal()
      return
    case 'diskFull':
    case 'fillDisk':
      return diskFull(cluster, f, state, log)
    case 'corruptJournal':
    case 'corruptStore': {
      const node = cluster.nodes[f.node]!
      await cluster.kill(f.node, 'SIGTERM')
      const data = dataPath(node.home, loadConfig(node.home))
      const backup = `${data}.backup`
      cpSync(data, backup, { recursive: true })
      let problem: string | undefined
      try {
        let what: string
        if (f.kind === 'corruptJournal') what = await corruptJournal(data, rng)
        else {
          // Table files exist only once LevelDB has flushed a memtable: reopening the store does it.
          const tables = await ensureTables(data)
          if (!tables) return 'harness: no LevelDB table file to damage after reopening the store'
          what = corruptStoreFile(data, rng, f.damage)
        }
        // A refusal comes within seconds; a node that started on the damage is stopped after 20 s
        // (not left running while the others move on: it must catch up within the recovery bound).
        const r = await cluster.startExpectingFailure(f.node, 20_000)
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

/** A full disk: the node must stop with exit code 5 (EXIT.FATAL) and say so, then resume from where it was. */
async function diskFull(
  cluster: Cluster,
  f: { kind: 'diskFull' | 'fillDisk'; node: number; ms: number },
  state: FaultState,
  log: (s: string) => void,
): Promise<string | undefined> {
  const node = cluster.nodes[f.node]!
  const mount = state.tmpfs.get(f.node)
  const flag = node.fault?.diskFullFlag
  if (f.kind === 'fillDisk' && !mount) return 'harness: the node is not on a tmpfs'
  if (f.kind === 'diskFull' && !flag) return 'harness: the node does not run with a disk-full flag'
  const before = await height(cluster, f.node).catch(() => 0)
  const filler = mount ? join(mount, 'filler') : ''
  if (f.kind === 'fillDisk') {
    const data = dataPath(node.home, loadConfig(node.home))
    const used = readdirSync(data).reduce((a, x) => a + statSync(join(data, x)).size, 0)
    const filled = fillUp(filler)
    log(
      `  filled the tmpfs with ${(filled / 2 ** 20).toFixed(1)} MiB (data ${(used / 2 ** 20).toFixed(1)} MiB)`,
    )
  } else writeFileSync(flag!, '')
  // An unref'd timer: a ref'd one kept the test process alive for up to 30 s after its last fault.
  const code = await Promise.race([
    node.exited,
    new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 30_000).unref()),
  ])
  if (f.kind === 'fillDisk') makeRoom(filler)
  else rmSync(flag!, { force: true })
  if (code === 'timeout') {
    await cluster.kill(f.node)
    await cluster.start(f.node)
    return 'the node kept running for 30 s with a full disk'
  }
  const tail = cluster.log(f.node, 200)
  let problem: string | undefined
  if (code !== 5) problem = `exit code ${code}, expected 5 (fatal, clean stop)`
  else if (!/ENOSPC|no space left on device/i.test(tail)) problem = 'the node did not say the disk was full'
  await delay(f.ms)
  try {
    await cluster.start(f.node)
  } catch (err) {
    return `did not start again once there was room: ${(err as Error).message}`
  }
  const after = await height(cluster, f.node)
  if (after < before) problem = `height went back from ${before} to ${after} after the disk filled up`
  return problem
}
