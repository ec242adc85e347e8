import { sha256 } from '@cityledger/core'
import type { ReplicaConfig } from '../config.ts'
import { compactJournal } from '../journal.ts'
import { Replica } from '../replica/replica.ts'
import type { Input, Output } from '../replica/types.ts'
import { type SimBlock, encodeSimBlock, simBlockDigest, simValidate } from './blocks.ts'
import { Byzantine, type ByzantineBehavior } from './byzantine.ts'
import { decodeForReplica } from './decodeCache.ts'
import { transmit } from './faults.ts'
import { checkLiveness } from './outcome.ts'
import { NODE_LIMITS } from './profile.ts'
import { CHAIN, type SimNode, type SimWorld } from './world.ts'

// The node side of a run: what a node around each replica does with its outputs (journal, send,
// timers, proposals, validation, commits, block sync), and its crashes and restarts. Draws come from
// `w.rng`, except block sync's choice of peer (from `w.net`).

/** One node per validator, two for the twin's key; a Byzantine node forks its own stream from `w.rng`. */
export function createNodes(w: SimWorld): void {
  const byz = new Map(w.cast.byzantine.map((b) => [b.validator, b]))
  const twinValidator = w.cast.twin
  for (let v = 0; v < w.o.n; v++) {
    const b = byz.get(v)
    addNode(w, v, !b && v !== twinValidator, b?.behaviors ?? [], b?.silentTo ?? [])
    if (v === twinValidator) {
      addNode(w, v, false, [], [])
      w.count('twins')
    }
  }
  for (const b of w.cast.byzantine) for (const k of b.behaviors) w.count(`byzantine:${k}`, 0)
}

function addNode(
  w: SimWorld,
  validator: number,
  honest: boolean,
  behaviors: ByzantineBehavior[],
  silentTo: number[],
): void {
  const id = w.nodes.length
  const node: SimNode = {
    id,
    validator,
    honest,
    up: true,
    downForever: false,
    inc: 0,
    durable: [],
    pending: [],
    store: [],
    stateDigest: new Uint8Array(32),
    execAt: 0,
    syncedTo: 0,
    lastCommitAt: 0,
    wanted: new Map(),
    validations: [],
  }
  if (behaviors.length) node.byz = new Byzantine(behaviors, w.keys[validator]!, w.rng.fork(), CHAIN, silentTo)
  w.nodes.push(node)
}

/** What the node passes to `createReplica` (the profile leaves out what the node leaves out). */
function replicaConfig(w: SimWorld, validator: number): ReplicaConfig {
  const key = w.keys[validator]!
  const o = w.o
  const inFlight = o.maxInFlight ?? w.profile.maxInFlight
  const exponent = o.maxBackoffExponent ?? w.profile.maxBackoffExponent
  return {
    chainId: CHAIN,
    validators: w.keys.map((k) => k.publicKey),
    publicKey: key.publicKey,
    sign: key.sign,
    verify: w.verify,
    blockDigest: simBlockDigest,
    decodeMessage: decodeForReplica,
    maxMessageBytes: o.frameBytes,
    checkpointInterval: o.checkpointInterval,
    windowSize: o.windowSize,
    viewTimeoutMs: o.viewTimeoutMs,
    ...(inFlight !== undefined ? { maxInFlight: inFlight } : {}),
    ...(exponent !== undefined ? { maxBackoffExponent: exponent } : {}),
    ...(w.profile.retransmitDivisor !== undefined ? { retransmitMs: w.retransmitMs } : {}),
    ...(w.o.bug ? { faultInjection: w.o.bug } : {}),
  }
}

/** A new replica on the node's durable journal and block store (a new incarnation: older events miss it). */
export function startReplica(w: SimWorld, node: SimNode, at: number): void {
  if (node.downForever && !node.up) return
  node.replica = new Replica(replicaConfig(w, node.validator))
  node.up = true
  node.inc++
  node.syncedTo = node.store.length
  node.execAt = at
  node.wanted.clear()
  node.validations = []
  const journal = node.durable.length ? [...node.durable] : undefined
  apply(
    w,
    node,
    node.replica.step({
      type: 'start',
      committedHeight: node.store.length,
      ...(journal ? { journal } : {}),
      ...(node.store.length ? { certificate: node.store.at(-1)!.certificate } : {}),
    }),
  )
}

/** The replica is gone; its unflushed journal entries survive unless the crash loses the tail. */
export function crash(w: SimWorld, node: SimNode, loseTail: boolean, forever: boolean): void {
  node.up = false
  node.replica = undefined
  if (forever) {
    node.downForever = true
    w.count('crashForever')
  }
  if (loseTail) {
    w.count('crashLoseTail')
    w.count('journalEntriesLost', node.pending.length)
  } else {
    if (!forever) w.count('crash')
    node.durable.push(...node.pending)
  }
  node.pending = []
}

function flush(w: SimWorld, node: SimNode): void {
  if (node.pending.length) {
    node.durable.push(...node.pending)
    node.pending = []
    w.maxJournal = Math.max(w.maxJournal, node.durable.length)
  }
}

function buildBlock(w: SimWorld, node: SimNode, height: number, view: number): Uint8Array {
  const { size, fixed } = w.cast.blockBytes
  const b: SimBlock = {
    height,
    view,
    proposer: node.validator,
    nonce: w.nonce++,
    valid: true,
    padding: fixed ? size : Math.floor(size * (0.5 + 0.5 * w.rng.next())),
  }
  if (node.byz?.behaviors.has('invalidBlocks') && w.rng.chance(0.5)) {
    b.valid = false
    w.count('invalidBlocks')
  }
  if (size) w.count('bigBlocks')
  return encodeSimBlock(b)
}

function propose(w: SimWorld, node: SimNode, height: number, view: number, delay: number): void {
  const block = buildBlock(w, node, height, view)
  const input: Input = { type: 'proposal', height, view, block, digest: simBlockDigest(block) }
  w.q.push(w.now + delay, { k: 'input', node: node.id, inc: node.inc, input })
}

/**
 * Node profile (`ConsensusDriver`): a block is built only on top of the head (it names its parent's
 * state root), `blockIntervalMs` after the last commit; proposals wanted for later heights wait.
 */
export function proposeOnHead(w: SimWorld, node: SimNode): void {
  const head = node.store.length
  for (const h of node.wanted.keys()) if (h <= head) node.wanted.delete(h)
  const view = node.wanted.get(head + 1)
  if (view === undefined) return
  const at = node.lastCommitAt + NODE_LIMITS.blockIntervalMs
  if (at > w.now) {
    w.q.push(at, { k: 'propose', node: node.id, inc: node.inc })
    return
  }
  node.wanted.delete(head + 1)
  propose(w, node, head + 1, view, w.rng.range(5, 20))
}

/** Validation takes time in proportion to the block (20 MB/s), and in the node profile waits for the parent. */
function validate(w: SimWorld, node: SimNode, o: Extract<Output, { type: 'validate' }>): void {
  const input: Input = {
    type: 'validated',
    height: o.height,
    view: o.view,
    digest: o.digest,
    ok: simValidate(o.block, o.height),
  }
  const delay = w.rng.range(0, 3) + Math.floor(o.block.length / 20_000)
  w.q.push(w.now + delay, { k: 'input', node: node.id, inc: node.inc, input })
}

function runValidations(w: SimWorld, node: SimNode): void {
  const head = node.store.length
  node.validations = node.validations.filter((v) => v.height > head)
  const ready = node.validations.filter((v) => v.height === head + 1)
  node.validations = node.validations.filter((v) => v.height !== head + 1)
  for (const v of ready) validate(w, node, v)
}

/** Carries out a replica step's outputs in order, as the node's driver does. */
export function apply(w: SimWorld, node: SimNode, outputs: Output[]): void {
  for (const o of outputs) {
    switch (o.type) {
      case 'journal':
        node.pending.push(o.entry)
        break
      case 'broadcast':
        flush(w, node)
        transmit(w, node, o.kind, o.bytes)
        break
      case 'send':
        flush(w, node)
        transmit(w, node, o.kind, o.bytes, o.to)
        break
      case 'setTimer':
        w.q.push(w.now + o.ms, {
          k: 'timer',
          node: node.id,
          inc: node.inc,
          timer: o.timer,
          token: o.token,
        })
        break
      case 'cancelTimer':
        break
      case 'requestProposal':
        if (w.profile.proposeOnHead) {
          node.wanted.set(o.height, o.view)
          proposeOnHead(w, node)
        } else propose(w, node, o.height, o.view, w.rng.range(20, 60))
        break
      case 'validate':
        if (w.profile.proposeOnHead) {
          node.validations.push(o)
          runValidations(w, node)
        } else validate(w, node, o)
        break
      case 'commit':
        onCommit(w, node, o)
        break
      case 'requestSync':
        if (node.honest && o.toHeight > w.maxCommitted)
          w.violation(
            'sync',
            `node ${node.id} asked to sync to height ${o.toHeight}, but no replica committed above ${w.maxCommitted} (${w.scenario})`,
          )
        onRequestSync(w, node, o.fromHeight, o.toHeight)
        break
      case 'compactJournal':
        flush(w, node)
        node.durable = compactJournal(node.durable, o.stableHeight)
        break
      case 'reject':
        onReject(w, node, o)
        break
      case 'viewChanged':
        if (node.honest && o.changing) w.viewChanges++
        if (node.honest) w.maxView = Math.max(w.maxView, o.view)
        break
      case 'stableCheckpoint':
        break
    }
  }
}

function onReject(w: SimWorld, node: SimNode, o: Extract<Output, { type: 'reject' }>): void {
  w.rejects[o.code] = (w.rejects[o.code] ?? 0) + 1
  // Evidence convicts its signer; other refusals blame the peer that sent the bytes.
  const blamed =
    o.offender !== undefined
      ? w.nodes.filter((x) => x.validator === o.offender)
      : o.from !== undefined && o.from !== 'adversary'
        ? [w.nodes[Number(o.from)]!]
        : []
  w.checks.reject(
    w.checked(node),
    o,
    blamed.map((x) => w.checked(x)),
  )
}

function onCommit(w: SimWorld, node: SimNode, o: Extract<Output, { type: 'commit' }>): void {
  const h = o.height
  if (node.honest) {
    if (!w.checks.commit(w.checked(node), o)) return
  } else if (h !== node.store.length + 1) {
    return
  }
  node.store.push({ digest: o.digest, block: o.block, certificate: o.certificate })
  w.maxCommitted = Math.max(w.maxCommitted, h)
  node.lastCommitAt = w.now
  node.stateDigest = sha256(node.stateDigest, o.digest)
  node.execAt = Math.max(node.execAt, w.now) + 1
  w.q.push(node.execAt, {
    k: 'input',
    node: node.id,
    inc: node.inc,
    input: { type: 'executed', height: h, stateDigest: node.stateDigest },
  })
  if (node.crashAtHeight !== undefined && node.store.length >= node.crashAtHeight && node.up) {
    node.crashAtHeight = undefined
    // After this step's outputs: the crash is an event of its own, right now.
    w.q.push(w.now, { k: 'crash', node: node.id, loseTail: false, forever: true })
  }
  if (w.profile.proposeOnHead) {
    proposeOnHead(w, node)
    runValidations(w, node)
  }
  if (w.network.healed) checkLiveness(w)
}

/** Block sync as a node does it: fetch committed blocks with certificates from a reachable peer. */
function onRequestSync(w: SimWorld, node: SimNode, from: number, to: number): void {
  if (node.syncedTo >= to) return
  const peers = w.nodes.filter(
    (p) => p.id !== node.id && p.up && p.store.length >= from && !w.network.partitioned(p.id, node.id),
  )
  if (!peers.length) return
  const peer = w.net.pick(peers)
  const last = Math.min(to, peer.store.length)
  w.count('syncedBlocks', last - from + 1)
  let t = w.now
  for (let h = from; h <= last; h++) {
    const b = peer.store[h - 1]!
    t += 2 + Math.floor(b.block.length / 100_000)
    w.q.push(t, {
      k: 'input',
      node: node.id,
      inc: node.inc,
      input: { type: 'syncBlock', height: h, block: b.block, digest: b.digest, certificate: b.certificate },
    })
  }
  node.syncedTo = last
}
