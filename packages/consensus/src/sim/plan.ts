import type { Rng } from '@cityledger/core/testing'
import type { ByzantineBehavior } from './byzantine.ts'
import { NODE_LIMITS } from './profile.ts'
import {
  BYZANTINE_KINDS,
  FAULT_KINDS,
  type FaultKind,
  type LinkFault,
  type PermanentCrash,
  type SimOptions,
} from './types.ts'

/** Chance that a run draws each kind (when not `allFaults`): big blocks cost time, so they are rarer. */
const DRAW_CHANCE: Partial<Record<FaultKind, number>> = { bigBlocks: 0.25 }

/** Who is faulty in a run: at most f validators, Byzantine (a twin counts as one) or crashed for good. */
export interface FaultCast {
  faults: Set<FaultKind>
  byzantine: { validator: number; behaviors: ByzantineBehavior[]; silentTo: number[] }[]
  twin: number
  downForever: PermanentCrash[]
  /** Size of each block: fixed, or drawn per block between half of it and all of it. */
  blockBytes: { size: number; fixed: boolean }
}

/** Draws the faults of one run from its seed (first part: who is faulty and how). */
export function castFaults(rng: Rng, o: SimOptions, f: number): FaultCast {
  const n = o.n
  const enabled = o.faults ?? FAULT_KINDS
  const faults = new Set(o.allFaults ? enabled : enabled.filter((k) => rng.chance(DRAW_CHANCE[k] ?? 0.6)))
  const byzKinds = BYZANTINE_KINDS.filter((k) => faults.has(k))
  const twins = faults.has('twins')
  // The budget of f faulty validators is shared by Byzantine ones and those crashed for good.
  const explicitDown = o.downForever ?? []
  let budget = o.allowOverFaulty ? n : Math.max(0, f - explicitDown.length)
  let nDown = 0
  if (faults.has('crashForever') && budget > 0 && (rng.chance(0.5) || (!byzKinds.length && !twins)))
    nDown = rng.range(1, budget)
  budget -= nDown
  const byzantine: FaultCast['byzantine'] = []
  let twin = -1
  if (o.byzantineSpec) {
    for (const b of o.byzantineSpec)
      byzantine.push({ ...b, silentTo: b.silentTo ?? silentTargets(rng, n, b.validator) })
  } else {
    const wanted = o.byzantine ?? (byzKinds.length || twins ? rng.range(1, Math.max(1, f)) : 0)
    const nByz = Math.min(wanted, budget)
    const down = new Set(explicitDown.map((d) => d.validator))
    const byzValidators = rng.shuffle([...Array(n).keys()].filter((v) => !down.has(v))).slice(0, nByz)
    // A faulty primary is where equivocation and invalid proposals bite: make view 0's primary faulty often.
    if (nByz > 0 && !byzValidators.includes(0) && !down.has(0) && rng.chance(0.5)) byzValidators[0] = 0
    twin = twins && nByz > 0 ? byzValidators[0]! : -1
    for (const v of byzValidators) {
      if (v === twin) continue
      let behaviors: ByzantineBehavior[] = byzKinds.filter(() => rng.chance(0.7))
      if (behaviors.length === 0 && byzKinds.length) behaviors.push(rng.pick(byzKinds))
      // A silent replica says nothing to its targets; lying to them as well would be moot.
      if (behaviors.includes('silent') && rng.chance(0.5)) behaviors = ['silent']
      byzantine.push({ validator: v, behaviors, silentTo: silentTargets(rng, n, v) })
    }
  }
  const taken = new Set([...byzantine.map((b) => b.validator), twin, ...explicitDown.map((d) => d.validator)])
  const downForever: PermanentCrash[] = [...explicitDown]
  const candidates = rng.shuffle([...Array(n).keys()].filter((v) => !taken.has(v)))
  for (const v of candidates.slice(0, nDown)) {
    // Down from the start, at a random time, or once its node committed a few heights.
    const at = rng.int(3)
    downForever.push(
      at === 0
        ? { validator: v, atMs: 0 }
        : at === 1
          ? { validator: v, atMs: rng.int(o.faultPhaseMs ?? 1500) }
          : { validator: v, atHeight: rng.range(1, 12) },
    )
  }
  const maxBlock = o.maxBlockBytes ?? NODE_LIMITS.maxBlockBytes
  let blockBytes = { size: o.blockBytes ?? 0, fixed: true }
  if (o.blockBytes === undefined && faults.has('bigBlocks')) {
    const sizes = [64 * 1024, 512 * 1024, 1.25 * 1024 * 1024, 4 * 1024 * 1024, maxBlock]
    blockBytes = { size: Math.min(maxBlock, Math.floor(rng.pick(sizes))), fixed: false }
  }
  return { faults, byzantine, twin, downForever, blockBytes }
}

/** Whom a silent replica ignores: everyone, a random subset, or nobody (then it withholds pre-prepares). */
function silentTargets(rng: Rng, n: number, self: number): number[] {
  const others = [...Array(n).keys()].filter((v) => v !== self)
  const mode = rng.int(3)
  if (mode === 0) return others
  if (mode === 1) return others.filter(() => rng.chance(0.5))
  return []
}

/** Single-link faults for `linkFault`: 1..3 links between nodes, down or lossy for a while. */
export function drawLinks(rng: Rng, nodes: number, healAt: number): LinkFault[] {
  const links: LinkFault[] = []
  const count = rng.range(1, 3)
  for (let i = 0; i < count; i++) {
    const a = rng.int(nodes)
    let b = rng.int(nodes - 1)
    if (b >= a) b++
    const fromMs = rng.int(healAt)
    const toMs = Math.min(healAt, fromMs + rng.range(100, healAt))
    links.push({ a, b, fromMs, toMs, loss: rng.pick([1, 1, 0.5, 0.9]) })
  }
  return links
}

/** One line that names everything a run injects, printed with its violations. */
export function describeScenario(
  o: SimOptions,
  profile: string,
  cast: FaultCast,
  links: readonly LinkFault[],
): string {
  const parts = [`n=${o.n}`, `profile=${profile}`, `faults=[${[...cast.faults].join(',')}]`]
  if (cast.byzantine.length)
    parts.push(
      `byzantine=[${cast.byzantine.map((b) => `${b.validator}:${b.behaviors.join('+')}`).join(' ')}]`,
    )
  if (cast.twin >= 0) parts.push(`twin=${cast.twin}`)
  if (cast.downForever.length)
    parts.push(
      `downForever=[${cast.downForever.map((d) => `${d.validator}@${d.atHeight !== undefined ? `h${d.atHeight}` : `${d.atMs}ms`}`).join(' ')}]`,
    )
  if (links.length)
    parts.push(
      `links=[${links.map((l) => `${l.a}-${l.b}:${l.fromMs}..${l.toMs}ms:loss${l.loss}`).join(' ')}]`,
    )
  if (cast.blockBytes.size)
    parts.push(`blockBytes=${cast.blockBytes.fixed ? '' : '<='}${cast.blockBytes.size}`)
  parts.push(`faultPhaseMs=${o.faultPhaseMs ?? 1500}`)
  return parts.join(' ')
}
