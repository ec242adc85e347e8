import { equalBytes, sha256 } from '@cityledger/core'
import { NULL_DIGEST } from '../config.ts'
import {
  type Epoch,
  activationHeight,
  epochAt,
  lastHeightOf,
  scheduleChange,
  verifyCertificateAt,
} from '../epochs.ts'
import { compactJournal } from '../journal.ts'
import { Replica } from '../replica/replica.ts'
import type { Input, Output } from '../replica/types.ts'
import { decodeForReplica } from './decodeCache.ts'
import { decodeEpochBlock, encodeEpochBlock, epochBlockDigest } from './reconfigBlocks.ts'
import {
  type EpochRun,
  RECONFIG_CHAIN,
  type ReconfigNode,
  type ReconfigWorld,
  type Stored,
} from './reconfigWorld.ts'

// The node side of a reconfiguration run, written as the node's driver must behave (README.md, "The
// node's contract"): one replica per epoch, `epochEnd` fed right after the change executes, the next
// epoch's replica started once the activation height is executed, messages of the epoch before routed
// to the retired replica, block sync verified against the schedule.

const SEEN_KEPT = 256

function membersOf(w: ReconfigWorld, validators: readonly Uint8Array[]): ReconfigNode[] {
  return w.keysOf(validators).map((i) => w.nodes[i]!)
}

function inSet(node: ReconfigNode, e: Epoch): boolean {
  return e.validators.some((v) => equalBytes(v, node.key.publicKey))
}

/** A replica for epoch `e` on the node's store: base = the height before the epoch, genesis = its state. */
function startRun(w: ReconfigWorld, node: ReconfigNode, e: Epoch, withJournal: boolean): void {
  const base = e.firstHeight - 1
  const last = lastHeightOf(node.schedule, e.epoch)
  const replica = new Replica({
    chainId: RECONFIG_CHAIN,
    epoch: e.epoch,
    baseHeight: base,
    ...(last !== undefined ? { lastHeight: last } : {}),
    genesisDigest: node.digests[base]!,
    validators: [...e.validators],
    publicKey: node.key.publicKey,
    sign: node.key.sign,
    verify: w.verify,
    blockDigest: epochBlockDigest,
    decodeMessage: decodeForReplica,
    checkpointInterval: w.o.checkpointInterval,
    windowSize: w.o.windowSize,
    viewTimeoutMs: w.o.viewTimeoutMs,
    retransmitMs: w.retransmitMs,
  })
  const run: EpochRun = { rid: w.nextRid++, epoch: e.epoch, replica, validators: e.validators }
  node.current = run
  if (!withJournal || node.journal.epoch !== e.epoch)
    node.journal = { epoch: e.epoch, durable: [], pending: [] }
  const journal = node.journal.durable.length ? [...node.journal.durable] : undefined
  const cert = node.store.at(-1)?.certificate
  stepRun(w, node, run, {
    type: 'start',
    committedHeight: node.store.length,
    ...(journal ? { journal } : {}),
    ...(cert ? { certificate: cert } : {}),
  })
}

/** The replica of the epoch of the next height if this node is in its set; else the node follows by block sync. */
function startForHead(w: ReconfigWorld, node: ReconfigNode): void {
  const e = epochAt(node.schedule, node.store.length + 1)
  node.current = undefined
  if (inSet(node, e)) startRun(w, node, e, true)
  else if (!node.turned) w.q.push(w.now + 1, { k: 'poll', node: node.id, inc: node.inc })
}

export function startNode(w: ReconfigWorld, node: ReconfigNode): void {
  node.started = node.up = true
  node.inc++
  startForHead(w, node)
}

export function crashNode(
  w: ReconfigWorld,
  node: ReconfigNode,
  loseTail: boolean,
  restartAfterMs: number,
): void {
  if (!node.up) return
  node.up = false
  node.current = node.retired = undefined
  if (!loseTail) node.journal.durable.push(...node.journal.pending)
  node.journal.pending = []
  node.wanted = []
  node.validations = []
  w.q.push(w.now + restartAfterMs, { k: 'restart', node: node.id })
}

/** Restart: the store (blocks, state, schedule) survived; the replica of the head's epoch restarts on its journal. */
export function restartNode(w: ReconfigWorld, node: ReconfigNode): void {
  if (node.up) return
  node.up = true
  node.inc++
  node.syncedTo = node.store.length
  node.executed = node.store.length
  startForHead(w, node)
}

/**
 * A message for this node: to the current epoch's replica; one it refuses as OTHER_EPOCH goes to the
 * retired replica of the epoch before (which helps laggards finish it), if any.
 */
export function deliver(w: ReconfigWorld, node: ReconfigNode, from: number, bytes: Uint8Array): void {
  if (!node.up) return
  if (node.honest || !node.turned) {
    node.seen.push(bytes)
    if (node.seen.length > SEEN_KEPT) node.seen.splice(w.rng.int(node.seen.length), 1)
  }
  if (node.turned) return
  const input: Input = { type: 'message', bytes, from: String(from) }
  const cur = node.current
  if (!cur) {
    if (node.retired) stepRun(w, node, node.retired, input)
    return
  }
  const out = cur.replica.step(input)
  const other = out.find((o) => o.type === 'reject' && o.code === 'OTHER_EPOCH')
  const epoch = other?.type === 'reject' ? other.epoch : undefined
  apply(w, node, cur, out)
  if (epoch === undefined || node.current !== cur) return
  if (epoch === node.retired?.epoch) stepRun(w, node, node.retired, input)
  else if (epoch > cur.epoch && w.now - node.lastHintAt >= w.retransmitMs) {
    // A peer is in a later epoch: this node is behind, maybe by more than one epoch (nobody runs its
    // epoch any more). Block sync, at most once per retransmission period.
    node.lastHintAt = w.now
    const head = node.store.length
    node.syncedTo = Math.min(node.syncedTo, head)
    requestSync(w, node, head + 1, head + w.o.windowSize)
  }
}

export function stepRun(w: ReconfigWorld, node: ReconfigNode, run: EpochRun, input: Input): void {
  apply(w, node, run, run.replica.step(input))
}

function flush(node: ReconfigNode): void {
  node.journal.durable.push(...node.journal.pending)
  node.journal.pending = []
}

function transmit(w: ReconfigWorld, node: ReconfigNode, to: ReconfigNode, bytes: Uint8Array): void {
  if (to.id === node.id) return
  if (w.now < w.healAt && w.rng.chance(w.o.loss)) return
  w.q.push(w.now + w.rng.range(1, 10), { k: 'deliver', to: to.id, from: node.id, bytes })
}

/** The node's driver: carries out one replica's outputs in order. */
function apply(w: ReconfigWorld, node: ReconfigNode, run: EpochRun, outputs: Output[]): void {
  const live = node.current === run
  for (const o of outputs) {
    switch (o.type) {
      case 'journal':
        // The retired replica signs nothing new that a restart would need: it is not restored.
        if (live) node.journal.pending.push(o.entry)
        break
      case 'broadcast':
        if (live) flush(node)
        if (o.kind === 'commit') {
          const m = (w.commitVotes[run.epoch] ??= {})
          m[node.id] = (m[node.id] ?? 0) + 1
        }
        for (const to of membersOf(w, run.validators)) transmit(w, node, to, o.bytes)
        break
      case 'send': {
        if (live) flush(node)
        const to = membersOf(w, run.validators)[o.to]
        if (to) transmit(w, node, to, o.bytes)
        break
      }
      case 'setTimer':
        w.q.push(w.now + o.ms, { k: 'timer', node: node.id, rid: run.rid, timer: o.timer, token: o.token })
        break
      case 'requestProposal':
        node.wanted.push({ rid: run.rid, height: o.height, view: o.view })
        proposeOnHead(w, node)
        break
      case 'validate':
        node.validations.push({
          rid: run.rid,
          height: o.height,
          view: o.view,
          digest: o.digest,
          block: o.block,
        })
        runValidations(w, node)
        break
      case 'commit':
        commit(w, node, o.height, { digest: o.digest, block: o.block, certificate: o.certificate })
        break
      case 'requestSync':
        if (node.honest && o.toHeight > w.agreed.size)
          w.violation(`sync: node ${node.id} chases ${o.toHeight}, nobody committed above ${w.agreed.size}`)
        requestSync(w, node, o.fromHeight, o.toHeight)
        break
      case 'compactJournal':
        if (live) {
          flush(node)
          node.journal.durable = compactJournal(node.journal.durable, o.stableHeight)
        }
        break
      case 'reject':
        onReject(w, node, o)
        break
      default:
        break
    }
  }
}

function onReject(w: ReconfigWorld, node: ReconfigNode, o: Extract<Output, { type: 'reject' }>): void {
  w.rejects[o.code] = (w.rejects[o.code] ?? 0) + 1
  if (!o.penalize || !node.honest) return
  const blamed =
    o.offender !== undefined ? undefined : o.from !== undefined ? w.nodes[Number(o.from)] : undefined
  if (blamed?.honest)
    w.violation(`penalizedHonest: node ${node.id} penalised honest node ${blamed.id}: ${o.code} ${o.reason}`)
}

/** Builds blocks only on the executed head (the node names its parent's state), the plan's next change included. */
function proposeOnHead(w: ReconfigWorld, node: ReconfigNode): void {
  const head = node.executed
  node.wanted = node.wanted.filter((x) => x.height > head)
  const want = node.wanted.find((x) => x.height === head + 1)
  if (!want) return
  node.wanted = node.wanted.filter((x) => x !== want)
  const run = [node.current, node.retired].find((r) => r?.rid === want.rid)
  if (!run) return
  const height = head + 1
  const done = node.schedule.epochs.length - 1
  const next = w.o.changes[done]
  const pending = node.schedule.epochs.at(-1)!.firstHeight > height
  const change =
    next && next.atHeight <= height && !pending
      ? { index: done, validators: next.validators.map((i) => w.nodes[i]!.key.publicKey) }
      : undefined
  const block = encodeEpochBlock({
    height,
    view: want.view,
    proposer: node.id,
    nonce: w.nonce++,
    ...(change ? { change } : {}),
  })
  const input: Input = { type: 'proposal', height, view: want.view, block, digest: epochBlockDigest(block) }
  w.q.push(w.now + w.rng.range(2, 8), { k: 'input', node: node.id, rid: run.rid, input })
}

/** Validation of height x waits until x-1 is executed: a change is valid only as the next one, with none pending. */
function runValidations(w: ReconfigWorld, node: ReconfigNode): void {
  const head = node.executed
  node.validations = node.validations.filter((v) => v.height > head)
  const ready = node.validations.filter((v) => v.height === head + 1)
  node.validations = node.validations.filter((v) => v.height !== head + 1)
  for (const v of ready) {
    const b = decodeEpochBlock(v.block)
    let ok = b !== undefined && b.height === v.height
    if (ok && b!.change) {
      const last = node.schedule.epochs.at(-1)!
      ok = b!.change.index === node.schedule.epochs.length - 1 && last.firstHeight <= v.height
      try {
        scheduleChange(node.schedule, v.height, b!.change.validators)
      } catch {
        ok = false
      }
    }
    const input: Input = { type: 'validated', height: v.height, view: v.view, digest: v.digest, ok }
    w.q.push(w.now + w.rng.range(0, 3), { k: 'input', node: node.id, rid: v.rid, input })
  }
}

/** Stores and executes one block (one atomic batch in the node): state digest, and the schedule if it carries a change. */
function commit(w: ReconfigWorld, node: ReconfigNode, height: number, s: Stored): void {
  if (height !== node.store.length + 1) {
    if (node.honest && height > node.store.length + 1)
      w.violation(`integrity: node ${node.id} got ${height} at ${node.store.length}`)
    return
  }
  node.store.push(s)
  w.checkStored(node, height, s)
  const b = s.block.length ? decodeEpochBlock(s.block) : undefined
  if (b?.change) {
    try {
      node.schedule = scheduleChange(node.schedule, height, b.change.validators)
    } catch (err) {
      w.violation(
        `integrity: node ${node.id} committed an invalid change at ${height}: ${(err as Error).message}`,
      )
    }
    w.checkSchedule(node)
  }
  node.digests[height] = sha256(
    node.digests[height - 1]!,
    equalBytes(s.digest, NULL_DIGEST) ? NULL_DIGEST : s.digest,
  )
  w.q.push(w.now + 1, { k: 'exec', node: node.id, inc: node.inc, height })
  const c = node.crashAtHeight
  if (c && node.store.length >= c.height) {
    node.crashAtHeight = undefined
    w.q.push(w.now, { k: 'crash', node: node.id, loseTail: c.loseTail, restartAfterMs: c.restartAfterMs })
  }
}

/**
 * The replicas hear that `height` executed; right after a change's block, the epoch's replica gets
 * `epochEnd`; once the end itself executed, the next epoch's replica starts (or the node follows, or a
 * leaver turns Byzantine).
 */
export function execute(w: ReconfigWorld, node: ReconfigNode, height: number): void {
  if (height <= node.executed || height > node.store.length) return
  node.executed = height
  const e = epochAt(node.schedule, height)
  const run = [node.current, node.retired].find((r) => r?.epoch === e.epoch)
  if (run) {
    stepRun(w, node, run, { type: 'executed', height, stateDigest: node.digests[height]! })
    const b = node.store[height - 1]!.block
    if (!w.o.skipEpochEnd && b.length && decodeEpochBlock(b)?.change)
      stepRun(w, node, run, { type: 'epochEnd', height: activationHeight(height, w.o.checkpointInterval) })
  }
  if (height === lastHeightOf(node.schedule, e.epoch)) switchEpoch(w, node, height)
  proposeOnHead(w, node)
  runValidations(w, node)
}

function switchEpoch(w: ReconfigWorld, node: ReconfigNode, end: number): void {
  const next = epochAt(node.schedule, end + 1)
  node.retired = node.current?.epoch === next.epoch - 1 ? node.current : undefined
  node.current = undefined
  if (inSet(node, next)) startRun(w, node, next, false)
  else if (node.byzantineLeaver) {
    node.turned = true
    node.retired = undefined
    w.q.push(w.now + 1, { k: 'attack', node: node.id })
  } else w.q.push(w.now + 1, { k: 'poll', node: node.id, inc: node.inc })
}

/** Block sync: committed blocks with certificates from a peer that has them. */
function requestSync(w: ReconfigWorld, node: ReconfigNode, from: number, to: number): void {
  if (node.syncedTo >= to) return
  const peers = w.nodes.filter((p) => p.id !== node.id && p.up && p.honest && p.store.length >= from)
  if (!peers.length) return
  const peer = w.rng.pick(peers)
  const last = Math.min(to, peer.store.length)
  let t = w.now
  for (let h = from; h <= last; h++)
    w.q.push((t += 2), { k: 'syncBlock', node: node.id, inc: node.inc, height: h, entry: peer.store[h - 1]! })
  node.syncedTo = Math.max(node.syncedTo, last)
}

/**
 * A block from sync, verified against the schedule as this node executed it (the certificate by the set of
 * its height, the block by its digest); fed to the replica of its epoch if there is one, else stored as is.
 */
export function onSyncBlock(w: ReconfigWorld, node: ReconfigNode, height: number, s: Stored): void {
  if (height !== node.store.length + 1) return
  const v = verifyCertificateAt(s.certificate, node.schedule, RECONFIG_CHAIN, w.verify)
  const isNull = equalBytes(s.digest, NULL_DIGEST)
  const digestOk = isNull ? s.block.length === 0 : equalBytes(decodedDigest(s.block), s.digest)
  if (!v.ok || !digestOk || !equalBytes(s.certificate.blockHash, s.digest)) {
    w.rejects.SYNC_REFUSED = (w.rejects.SYNC_REFUSED ?? 0) + 1
    return
  }
  const e = epochAt(node.schedule, height)
  const run = node.current?.epoch === e.epoch ? node.current : undefined
  if (run)
    stepRun(w, node, run, {
      type: 'syncBlock',
      height,
      block: s.block,
      digest: s.digest,
      certificate: s.certificate,
    })
  else commit(w, node, height, s)
}

/** A node outside the current set follows the chain by block sync, a window at a time. */
export function syncPoll(w: ReconfigWorld, node: ReconfigNode): void {
  if (node.current || node.turned) return
  const head = node.store.length
  node.syncedTo = Math.min(node.syncedTo, head)
  requestSync(w, node, head + 1, head + w.o.windowSize)
  w.q.push(w.now + 4 * w.retransmitMs, { k: 'poll', node: node.id, inc: node.inc })
}

/** The digest of block bytes, or the null digest for bytes that are not a block. */
function decodedDigest(block: Uint8Array): Uint8Array {
  try {
    return epochBlockDigest(block)
  } catch {
    return NULL_DIGEST
  }
}
