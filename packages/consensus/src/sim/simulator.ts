import type { Input } from '../replica/types.ts'
import { injectGarbage, lie, replayMessage, scheduleFaults } from './faults.ts'
import { apply, crash, createNodes, proposeOnHead, startReplica } from './nodes.ts'
import { checkLiveness, checkLivenessAtDeadline, checkMemory, simResult, traceEvent } from './outcome.ts'
import { describeScenario } from './plan.ts'
import type { SimOptions, SimResult } from './types.ts'
import { type Event, SimWorld } from './world.ts'

export {
  FAULT_KINDS,
  BYZANTINE_KINDS,
  type FaultKind,
  type LinkFault,
  type PermanentCrash,
  type SimOptions,
  type SimResult,
  type Violation,
  type ViolationKind,
  livenessBound,
} from './types.ts'

// The run is split by side: world.ts holds its state, faults.ts the network and the adversary, nodes.ts
// the nodes around the replicas, outcome.ts the run-wide checks and the result. This file schedules the
// run and handles its events in time order.

/**
 * Runs one seeded scenario: n replicas, an in-memory network, a manual clock. Everything random comes
 * from `seed`, so a run replays identically from it. Safety properties are checked at every commit
 * output (agreement, integrity, certificates), sync and amplification at every output, memory every 64
 * steps, liveness after the heal.
 */
export function runSimulation(opts: SimOptions): SimResult {
  return new Simulation(opts).run()
}

class Simulation {
  private readonly w: SimWorld

  constructor(opts: SimOptions) {
    const w = new SimWorld(opts)
    this.w = w
    // The order of these steps is the order of the draws from the seed.
    createNodes(w)
    scheduleFaults(w)
    for (const node of w.nodes) startReplica(w, node, 0)
    w.scenario = describeScenario(w.o, opts.profile ?? 'sim', w.cast, w.network.links)
  }

  run(): SimResult {
    const w = this.w
    const deadline = w.healAt + w.livenessBoundMs
    while (!w.done) {
      const e = w.q.pop()
      if (!e) break
      if (e.time > deadline) {
        w.now = deadline
        checkLivenessAtDeadline(w)
        break
      }
      w.now = e.time
      if (++w.steps > w.o.maxSteps) break
      if (w.o.traceEvents) traceEvent(w, e.item)
      try {
        this.handle(e.item)
      } catch (err) {
        w.violation('exception', (err as Error).stack ?? String(err))
      }
      if ((w.steps & 63) === 0) checkMemory(w)
      if (w.violations.length && w.o.stopOnViolation) break
    }
    return simResult(w)
  }

  private handle(e: Event): void {
    const w = this.w
    switch (e.k) {
      case 'deliver': {
        const node = w.nodes[e.to]!
        if (!node.up || !node.replica) return
        node.byz?.observe(e.bytes)
        const from = e.from === 'adversary' ? 'adversary' : String(e.from)
        const outputs = node.replica.step({ type: 'message', bytes: e.bytes, from })
        if (node.honest) w.checks.answer(w.checked(node), e.bytes, outputs, w.now)
        apply(w, node, outputs)
        return
      }
      case 'input':
      case 'timer': {
        const node = w.nodes[e.node]!
        if (!node.up || !node.replica || node.inc !== e.inc) return
        const input: Input = e.k === 'timer' ? { type: 'timeout', timer: e.timer, token: e.token } : e.input
        apply(w, node, node.replica.step(input))
        return
      }
      case 'crash': {
        const node = w.nodes[e.node]!
        if (!node.up) return
        crash(w, node, e.loseTail, e.forever ?? false)
        return
      }
      case 'restart': {
        const node = w.nodes[e.node]!
        if (node.up || node.downForever) return
        w.count('restart')
        startReplica(w, node, w.now)
        return
      }
      case 'garbage':
        injectGarbage(w)
        return
      case 'replay':
        replayMessage(w)
        return
      case 'lie':
        lie(w, w.nodes[e.node]!)
        return
      case 'propose': {
        const node = w.nodes[e.node]!
        if (node.up && node.inc === e.inc) proposeOnHead(w, node)
        return
      }
      case 'heal': {
        w.network.healed = true
        w.heightAtHeal = Math.max(
          0,
          ...w.nodes.filter((x) => x.honest && !x.downForever).map((x) => x.store.length),
        )
        for (const node of w.nodes) if (!node.up) startReplica(w, node, w.now)
        checkLiveness(w)
        return
      }
    }
  }
}
