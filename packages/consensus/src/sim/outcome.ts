import { toHex } from '@cityledger/core'
import type { Replica } from '../replica/replica.ts'
import { VOTED_BLOCKS_PER_HEIGHT } from '../replica/state.ts'
import type { SimResult } from './types.ts'
import type { Event, SimWorld } from './world.ts'

// The run-wide properties (liveness after the heal, memory bounds), the event trace and the result. The
// per-output properties (agreement, integrity, certificates, ...) are in checks.ts. Nothing here draws a
// random number.

/** Ends the run once every live honest replica is `heightsAfterHeal` heights past the height at the heal. */
export function checkLiveness(w: SimWorld): void {
  if (w.heightAtHeal < 0) return
  const target = w.heightAtHeal + w.o.heightsAfterHeal
  if (w.nodes.every((x) => !x.honest || x.downForever || x.store.length >= target)) {
    w.livenessMs = w.now - w.healAt
    w.done = true
  }
}

export function checkLivenessAtDeadline(w: SimWorld): void {
  const target = w.heightAtHeal + w.o.heightsAfterHeal
  const behind = w.nodes
    .filter((x) => x.honest && !x.downForever && x.store.length < target)
    .map((x) => {
      const st = x.replica?.status()
      return `${x.id}@${x.store.length}/v${st?.view}${st?.changingView ? '(changing)' : ''}`
    })
  w.violation(
    'liveness',
    `not every live honest replica reached height ${target} within ${w.livenessBoundMs} ms of the heal (heal at ${w.healAt} ms, height ${w.heightAtHeal} then): ${behind.join(' ')}; scenario: ${w.scenario}`,
  )
}

/** Bounds of `Replica.footprint()` (see ReplicaFootprint): a replica's memory is O(L·n) however long the run. */
export function checkMemory(w: SimWorld): void {
  const L = w.o.windowSize
  const n = w.o.n
  for (const node of w.nodes) {
    if (!node.honest || !node.replica) continue
    const fp = node.replica.footprint() as ReturnType<Replica['footprint']> & {
      viewChangeEntries?: number
      missingBlocks?: number
    }
    if (
      fp.slots > L ||
      fp.viewChanges > n ||
      (fp.viewChangeEntries ?? 0) > 4 * n ||
      (fp.missingBlocks ?? 0) > L ||
      fp.checkpointVoteHeights > 4 * n + 1 ||
      // Per height: proposals of two views, the prepared and committed blocks, blocks named by commits
      // of two views (one per voter), and the voted-for blocks (VOTED_BLOCKS_PER_HEIGHT).
      fp.blocks > L * (2 + 2 + 2 * n + VOTED_BLOCKS_PER_HEIGHT) ||
      fp.votes > 2 * L * 3 * n
    ) {
      w.violation('memory', `node ${node.id}: ${JSON.stringify(fp)}`)
    }
  }
}

/** Folds one handled event into `w.eventHash` (with `traceEvents`): two runs that differ in any step differ here. */
export function traceEvent(w: SimWorld, e: Event): void {
  const node = e.k === 'deliver' ? e.to : 'node' in e ? e.node : -1
  const len = e.k === 'deliver' ? e.bytes.length : e.k === 'input' ? e.input.type.length : 0
  const fields = [w.now, e.k.length * 31 + e.k.charCodeAt(0), node, len]
  // A sample of the message bytes (both ends), cheap even for megabyte blocks.
  if (e.k === 'deliver')
    for (let i = 0; i < 8 && i < len; i++) fields.push(e.bytes[i]!, e.bytes[len - 1 - i]!)
  let h = w.eventHash
  for (const x of fields) h = Math.imul(h ^ (x & 0xffffffff), 16777619) >>> 0
  w.eventHash = h
}

/** The run's result. Its key order is part of a seed's digest (the CLI hashes its JSON): keep it. */
export function simResult(w: SimWorld): SimResult {
  const live = w.nodes.filter((x) => x.honest && !x.downForever)
  const heights = live.map((x) => x.store.length)
  return {
    seed: w.o.seed,
    n: w.o.n,
    f: w.f,
    scenario: w.scenario,
    violations: w.violations,
    committedHeights: { min: Math.min(...heights), max: Math.max(...heights) },
    viewChanges: w.viewChanges,
    maxView: w.maxView,
    faultsInjected: { ...w.counts },
    byzantine: w.nodes
      .filter((x) => !x.honest)
      .map((x) => ({ validator: x.validator, behaviors: x.byz ? [...x.byz.behaviors] : ['twin'] })),
    downForever: w.nodes.filter((x) => x.downForever).map((x) => x.validator),
    steps: w.steps,
    simTimeMs: w.now,
    healAtMs: w.healAt,
    ...(w.livenessMs !== undefined ? { livenessMs: w.livenessMs } : {}),
    livenessBoundMs: w.livenessBoundMs,
    incomplete: !w.done && w.violations.length === 0 && w.steps > w.o.maxSteps,
    rejects: { ...w.rejects },
    maxJournal: w.maxJournal,
    maxMessageBytes: w.maxMessage,
    commitLogs: w.nodes.map((x) => toHex(x.stateDigest)),
    ...(w.o.traceEvents ? { eventDigest: w.eventHash.toString(16).padStart(8, '0') } : {}),
    finalStatus: w.nodes.map((x) => ({
      node: x.id,
      honest: x.honest,
      up: x.up,
      stored: x.store.length,
      ...(x.replica?.status() ?? {}),
    })),
  }
}
