import type { Output } from '../replica/types.ts'
import { garbageFrom } from './byzantine.ts'
import { makeLie } from './lies.ts'
import { drawLinks } from './plan.ts'
import type { SimNode, SimWorld } from './world.ts'

// The network side of a run: the faults scheduled before it starts, what the network and the adversary
// do with each message, and the Byzantine replicas' lies. Draws from `w.rng` happen only while scheduling
// and lying; everything else here draws from `w.net`.

/**
 * Draws this run's network faults (loss, duplicate, delay and reorder intensities, partitions, link
 * faults) and schedules its crashes, garbage, replays, lies and the heal. Call after the nodes exist and
 * before any replica starts: the draws come in this order from `w.rng`.
 */
export function scheduleFaults(w: SimWorld): void {
  const twinValidator = w.cast.twin
  const net = w.network
  if (w.faults.has('loss')) net.lossRate = w.rng.pick([0.02, 0.05, 0.1, 0.2, 0.3])
  if (w.faults.has('duplicate')) net.dupRate = w.rng.pick([0.02, 0.1, 0.3])
  if (w.faults.has('delay')) net.delayRate = w.rng.pick([0.02, 0.1, 0.3])
  if (w.faults.has('reorder')) net.jitter = w.rng.pick([5, 20, 60])
  const twins = w.faults.has('twins') && twinValidator >= 0
  if (w.faults.has('partition') || twins) {
    const count = w.rng.range(1, 3)
    for (let i = 0; i < count; i++) {
      const from = w.rng.int(w.healAt)
      const to = Math.min(w.healAt, from + w.rng.range(100, w.healAt))
      const side = new Set<number>()
      if (twins && i === 0) {
        // Twins: split the two instances of the shared key, each with part of the honest replicas.
        const tw = w.nodes.filter((x) => x.validator === twinValidator)
        side.add(tw[0]!.id)
        for (const x of w.nodes) if (x.validator !== twinValidator && w.rng.chance(0.5)) side.add(x.id)
      } else {
        for (const x of w.nodes) if (w.rng.chance(0.4)) side.add(x.id)
      }
      net.partitions.push({ from, to, side })
      w.count('partition')
    }
  }
  if (w.faults.has('linkFault')) net.links.push(...drawLinks(w.rng, w.nodes.length, w.healAt))
  net.links.push(...(w.o.links ?? []))
  for (const kind of ['crash', 'crashLoseTail'] as const) {
    if (!w.faults.has(kind)) continue
    const crashes = w.o.crashes ?? w.rng.range(1, w.f + 1)
    for (let i = 0; i < crashes; i++) {
      const node = w.rng.pick(w.nodes)
      const at = w.rng.int(w.healAt)
      w.q.push(at, { k: 'crash', node: node.id, loseTail: kind === 'crashLoseTail' })
      w.q.push(Math.min(w.healAt, at + w.rng.range(50, w.healAt)), {
        k: 'restart',
        node: node.id,
      })
    }
  }
  for (const d of w.cast.downForever) {
    const node = w.nodes.find((x) => x.validator === d.validator)!
    node.downForever = true
    if (d.atHeight !== undefined) node.crashAtHeight = d.atHeight
    else w.q.push(d.atMs ?? 0, { k: 'crash', node: node.id, loseTail: false, forever: true })
  }
  if (w.faults.has('garbage'))
    for (let t = w.rng.int(50); t < w.healAt; t += w.rng.range(5, 80)) w.q.push(t, { k: 'garbage' })
  if (w.faults.has('replay'))
    for (let t = w.rng.range(50, 100); t < w.healAt; t += w.rng.range(5, 80)) w.q.push(t, { k: 'replay' })
  for (const node of w.nodes)
    if (node.byz && lyingFamilies(node).length) w.q.push(w.rng.int(100), { k: 'lie', node: node.id })
  w.q.push(w.healAt, { k: 'heal' })
}

function lyingFamilies(node: SimNode): ('lyingViewChange' | 'lyingNewView' | 'lyingStatus')[] {
  return (['lyingViewChange', 'lyingNewView', 'lyingStatus'] as const).filter((k) =>
    node.byz?.behaviors.has(k),
  )
}

/** A Byzantine replica's lie on its own initiative; it keeps lying for the whole run. */
export function lie(w: SimWorld, node: SimNode): void {
  w.q.push(w.now + w.rng.range(40, 250), { k: 'lie', node: node.id })
  if (!node.up || !node.replica || !node.byz) return
  const st = node.replica.status()
  const family = w.rng.pick(lyingFamilies(node))
  const lies = makeLie(family, node.byz.memory, w.rng, {
    view: st.view,
    committedHeight: st.committedHeight,
    n: w.o.n,
    index: node.validator,
    frameBytes: w.o.frameBytes,
  })
  for (const l of lies) {
    w.count(family)
    w.count(`lie:${l.name}`)
    for (const to of w.nodes) {
      if (to.id === node.id || (l.to !== 'all' && to.validator !== l.to)) continue
      deliver(w, node, to, l.bytes)
    }
  }
}

/** The adversary sends garbage (noise, or a mangled sample of a message sent earlier) to a random node. */
export function injectGarbage(w: SimWorld): void {
  const to = w.net.int(w.nodes.length)
  const sample = w.replayBuffer.length ? w.net.pick(w.replayBuffer).bytes : new Uint8Array(0)
  w.count('garbage')
  w.q.push(w.now + 1, {
    k: 'deliver',
    to,
    from: 'adversary',
    bytes: garbageFrom(w.net, sample.length > 4096 ? sample.subarray(0, 4096) : sample),
  })
}

/** The adversary replays a message sent earlier in the run to a random node. */
export function replayMessage(w: SimWorld): void {
  if (!w.replayBuffer.length) return
  const m = w.net.pick(w.replayBuffer)
  w.count('replay')
  w.q.push(w.now + 1, {
    k: 'deliver',
    to: w.net.int(w.nodes.length),
    from: 'adversary',
    bytes: m.bytes,
  })
}

function deliver(w: SimWorld, from: SimNode, to: SimNode, bytes: Uint8Array): void {
  w.network.send(from.id, to.id, bytes)
}

/**
 * Sends a replica's message to every other node (or to the nodes of one validator): a Byzantine sender
 * may change, multiply or drop it per receiver. Keeps a sample for the replay fault.
 */
export function transmit(
  w: SimWorld,
  from: SimNode,
  kind: Extract<Output, { type: 'send' }>['kind'],
  bytes: Uint8Array,
  toValidator?: number,
): void {
  if (from.honest) w.maxMessage = Math.max(w.maxMessage, bytes.length)
  if (bytes.length <= 64 * 1024) {
    if (w.replayBuffer.length < 256) w.replayBuffer.push({ bytes, from: from.id })
    else w.replayBuffer[w.net.int(256)] = { bytes, from: from.id }
  }
  from.byz?.sent(kind, bytes)
  for (const to of w.nodes) {
    if (to.id === from.id) continue
    if (toValidator !== undefined && to.validator !== toValidator) continue
    if (from.byz) {
      const variants = from.byz.transform(kind, bytes, to.validator)
      if (variants.length !== 1 || variants[0] !== bytes) w.count(from.byz.lastAction)
      for (const b of variants) deliver(w, from, to, b)
    } else {
      deliver(w, from, to, bytes)
    }
  }
}
