import { epochAt } from '../epochs.ts'
import type { Input } from '../replica/types.ts'
import { attack } from './reconfigAttack.ts'
import {
  crashNode,
  deliver,
  execute,
  onSyncBlock,
  restartNode,
  startNode,
  stepRun,
  syncPoll,
} from './reconfigNodes.ts'
import {
  type ReconfigEvent,
  type ReconfigOptions,
  type ReconfigResult,
  ReconfigWorld,
} from './reconfigWorld.ts'
import { livenessBound } from './types.ts'

export type { PlannedChange, ReconfigOptions, ReconfigResult } from './reconfigWorld.ts'

// The reconfiguration simulator: validator-set changes carried by blocks, replicas swapped per node at
// the activation height exactly as a node must do it (README.md, "Reconfiguration: the node's contract"),
// with crashes around the switch, late joiners and leavers that turn Byzantine. Seeded and deterministic.

/** Runs one seeded reconfiguration scenario and checks agreement, certificates by height and liveness. */
export function runReconfiguration(opts: ReconfigOptions): ReconfigResult {
  const w = new ReconfigWorld(opts)
  const late = new Map((opts.late ?? []).map((l) => [l.node, l.atMs]))
  for (const node of w.nodes) w.q.push(late.get(node.id) ?? 0, { k: 'start', node: node.id })
  for (const c of opts.crashes ?? []) {
    if (c.atMs !== undefined)
      w.q.push(c.atMs, {
        k: 'crash',
        node: c.node,
        loseTail: c.loseTail ?? false,
        restartAfterMs: c.restartAfterMs,
      })
    else if (c.atHeight !== undefined)
      w.nodes[c.node]!.crashAtHeight = {
        height: c.atHeight,
        restartAfterMs: c.restartAfterMs,
        loseTail: c.loseTail ?? false,
      }
  }
  const bound = livenessBound(opts.genesis.length, w.o.viewTimeoutMs, 6)
  const deadline = w.healAt + bound
  let livenessMs: number | undefined
  let target: number | undefined
  while (w.steps < w.o.maxSteps) {
    const e = w.q.pop()
    if (!e) break
    if (e.time > deadline) {
      w.now = deadline
      break
    }
    w.now = e.time
    w.steps++
    handle(w, e.item)
    if (w.heightAtHeal < 0 && w.now >= w.healAt)
      w.heightAtHeal = Math.max(0, ...w.nodes.filter((n) => n.honest).map((n) => n.store.length))
    target = targetHeight(w)
    if (target !== undefined && w.now >= w.healAt && finalSetReached(w, target)) {
      livenessMs = w.now - w.healAt
      break
    }
    if (w.violations.length) break
  }
  if (livenessMs === undefined && !w.violations.length) {
    const lag = w.nodes.filter((n) => n.honest && n.up).map((n) => `${n.id}:${n.store.length}`)
    w.violation(
      `liveness: target ${target ?? 'not set (a change never executed)'} not reached within ${bound} ms of the heal (${lag.join(' ')})`,
    )
  }
  return {
    seed: opts.seed,
    violations: w.violations,
    stored: w.nodes.map((n) => n.store.length),
    epochs: w.schedule.epochs.map((e) => ({
      epoch: e.epoch,
      firstHeight: e.firstHeight,
      validators: w.keysOf(e.validators),
    })),
    ...(livenessMs !== undefined ? { livenessMs } : {}),
    livenessBoundMs: bound,
    ...(target !== undefined ? { targetHeight: target } : {}),
    certificatesChecked: w.certificatesChecked,
    commitVotes: Array.from(w.schedule.epochs, (_, i) => w.commitVotes[i] ?? {}),
    finalEpoch: w.nodes.map((n) => (n.up && n.current ? n.current.epoch : -1)),
    rejects: w.rejects,
    steps: w.steps,
    simTimeMs: w.now,
  }
}

/**
 * Once every planned change executed and the network healed: heightsAfterLastChange more heights than
 * both the final epoch's base and the highest height stored at the heal.
 */
function targetHeight(w: ReconfigWorld): number | undefined {
  const epochs = w.schedule.epochs
  if (epochs.length < w.o.changes.length + 1 || w.heightAtHeal < 0) return undefined
  return Math.max(epochs.at(-1)!.firstHeight - 1, w.heightAtHeal) + w.o.heightsAfterLastChange
}

function finalSetReached(w: ReconfigWorld, target: number): boolean {
  const final = epochAt(w.schedule, target).validators
  const members = new Set(w.keysOf(final))
  return w.nodes.every((n) => !members.has(n.id) || !n.honest || n.store.length >= target)
}

function handle(w: ReconfigWorld, e: ReconfigEvent): void {
  switch (e.k) {
    case 'deliver':
      return deliver(w, w.nodes[e.to]!, e.from, e.bytes)
    case 'timer':
    case 'input': {
      const node = w.nodes[e.node]!
      const run = [node.current, node.retired].find((r) => r?.rid === e.rid)
      if (!node.up || !run) return
      const input: Input = e.k === 'timer' ? { type: 'timeout', timer: e.timer, token: e.token } : e.input
      return stepRun(w, node, run, input)
    }
    case 'exec': {
      const node = w.nodes[e.node]!
      if (node.up && node.inc === e.inc) execute(w, node, e.height)
      return
    }
    case 'syncBlock': {
      const node = w.nodes[e.node]!
      if (node.up && node.inc === e.inc) onSyncBlock(w, node, e.height, e.entry)
      return
    }
    case 'crash':
      return crashNode(w, w.nodes[e.node]!, e.loseTail, e.restartAfterMs)
    case 'restart':
      return restartNode(w, w.nodes[e.node]!)
    case 'start':
      return startNode(w, w.nodes[e.node]!)
    case 'poll': {
      const node = w.nodes[e.node]!
      if (node.up && node.inc === e.inc) syncPoll(w, node)
      return
    }
    case 'attack':
      return attack(w, w.nodes[e.node]!)
  }
}
