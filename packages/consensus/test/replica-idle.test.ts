import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { encode, sha256 } from '@cityledger/core'
import { ReplicaNet } from './replicaNet.ts'

// Heartbeat mode (issue 13, item 5): a node without pending txs proposes an empty block only once per
// heartbeat, and its replica's progress timer then allows heartbeat + view timeout. ReplicaNet answers no
// proposal itself here (maxHeight 0): `Pacer` plays the node's driver, proposing head + 1 `batchMs` after
// the last commit when it holds txs and `heartbeatMs` after it when idle. Virtual time only.

const T = 1000 // viewTimeoutMs
const H = 10_000 // heartbeatMs
const TICK = 10

class Pacer {
  readonly net: ReplicaNet
  /** What each node's mempool holds (as reported to its replica with `pending`). */
  readonly busy: boolean[]
  readonly crashed = new Set<number>()
  private readonly seen: number[]
  private readonly wanted: Map<number, number>[]
  private readonly lastCommitAt: number[]
  readonly heartbeatMs: number
  readonly batchMs: number

  /** `heartbeatConfig`: the replicas' `heartbeatMs` (the pacing's by default; 0 = a replica not told). */
  constructor(heartbeatMs: number, batchMs = 50, heartbeatConfig = heartbeatMs) {
    this.heartbeatMs = heartbeatMs
    this.batchMs = batchMs
    this.net = new ReplicaNet({
      n: 4,
      maxHeight: 0,
      config: { viewTimeoutMs: T, heartbeatMs: heartbeatConfig, checkpointInterval: 4, windowSize: 16 },
    })
    this.busy = this.net.replicas.map(() => false)
    this.seen = this.net.replicas.map(() => 0)
    this.wanted = this.net.replicas.map(() => new Map())
    this.lastCommitAt = this.net.replicas.map(() => 0)
    this.net.drop = (from, to) => this.crashed.has(from) || this.crashed.has(to)
    this.net.start()
  }

  head(i: number): number {
    return this.net.committed[i]!.at(-1) ?? 0
  }

  /** The node's mempool of validator `i` changes; the driver reports edges only, as the node does. */
  setBusy(i: number, busy: boolean): void {
    this.busy[i] = busy
    this.net.step(i, { type: 'pending', pending: busy })
    this.net.deliver()
  }

  /** Crash: a crashed node sends and receives nothing and proposes nothing from now on. */
  crash(i: number): void {
    this.crashed.add(i)
  }

  run(ms: number, each?: (now: number) => void): void {
    const end = this.net.now + ms
    while (this.net.now < end) {
      this.net.advance(TICK)
      each?.(this.net.now)
      for (let i = 0; i < this.net.n; i++) this.pace(i)
    }
  }

  private pace(i: number): void {
    const outs = this.net.outputs[i]!
    for (; this.seen[i]! < outs.length; this.seen[i]!++) {
      const o = outs[this.seen[i]!]!
      if (o.type === 'requestProposal') this.wanted[i]!.set(o.height, o.view)
      if (o.type === 'commit') this.lastCommitAt[i] = this.net.now
    }
    if (this.crashed.has(i)) return
    const h = this.head(i) + 1
    const view = this.wanted[i]!.get(h)
    if (view === undefined) return
    if (this.net.now < this.lastCommitAt[i]! + (this.busy[i] ? this.batchMs : this.heartbeatMs)) return
    this.wanted[i]!.delete(h)
    const block = encode(['block', h, view, this.busy[i]!])
    this.net.step(i, { type: 'proposal', height: h, view, block, digest: sha256(block) })
    this.net.deliver()
  }

  /** Virtual times at which validator `i` sent its first VIEW-CHANGE of each view. */
  viewChangesSent(i: number): number[] {
    return this.net.sent
      .filter((s) => s.from === i && s.kind === 'viewChange' && s.to === (i + 1) % 4)
      .map((s) => s.at)
  }

  /** Virtual time of the last COMMIT vote a live validator sent (every replica commits at that instant). */
  lastCommitVote(): number {
    return this.net.sent.filter((s) => s.kind === 'commit' && !this.crashed.has(s.from)).at(-1)?.at ?? 0
  }
}

test('idle with a heartbeat: about one block per heartbeat and no view change', () => {
  const p = new Pacer(H)
  p.run(60_000)
  for (let i = 0; i < 4; i++) {
    const s = p.net.replicas[i]!.status()
    assert.is(s.view, 0, `validator ${i} changed view`)
    assert.ok(
      p.head(i) >= 5 && p.head(i) <= 6,
      `validator ${i}: ${p.head(i)} blocks in 60 s, expected one per 10 s heartbeat`,
    )
  }
  assert.equal(p.viewChangesSent(1), [])
})

test('without heartbeatMs the same pacing makes backups change view (why the replica must know)', () => {
  const p = new Pacer(H, 50, 0)
  p.run(20_000)
  assert.ok(p.net.replicas[1]!.status().view > 0, 'a backup should have left view 0')
  assert.ok(p.viewChangesSent(1)[0]! <= T + TICK, `first VIEW-CHANGE at ${p.viewChangesSent(1)[0]} ms`)
})

test('default config: pending inputs change nothing (same outputs, the normal timeout)', () => {
  const p = new Pacer(H, 50, 0)
  const r = p.net.replicas[2]!
  assert.equal(r.step({ type: 'pending', pending: true }), [])
  assert.equal(r.step({ type: 'pending', pending: false }), [])
  const timers = p.net.outputs[2]!.filter((o) => o.type === 'setTimer' && o.timer === 'progress')
  for (const t of timers) assert.is(t.type === 'setTimer' && t.ms, T)
})

test('a primary that crashes while idle is replaced after heartbeat + timeout', () => {
  const p = new Pacer(H)
  p.run(25_000)
  const before = p.head(1)
  assert.is(before, 2)
  p.crash(0)
  const last = p.lastCommitVote()
  p.run(H + 3 * T)
  for (const i of [1, 2, 3]) {
    const first = p.viewChangesSent(i)[0]
    assert.ok(first !== undefined, `validator ${i} never asked for a view change`)
    assert.is(first, last + H + T, `validator ${i}: VIEW-CHANGE at ${first}, last commit at ${last}`)
    assert.is(p.net.replicas[i]!.status().view, 1)
  }
  // The new primary (1) goes on idling at one block per heartbeat, without more view changes.
  p.run(40_000)
  for (const i of [1, 2, 3]) {
    assert.is(p.net.replicas[i]!.status().view, 1, `validator ${i} left view 1`)
    assert.ok(p.head(i) >= before + 4, `validator ${i} at ${p.head(i)} after 40 s in view 1`)
  }
})

test('with pending txs a crashed primary is replaced within the normal timeout', () => {
  const p = new Pacer(H)
  p.run(12_000)
  p.crash(0)
  p.run(3_000)
  const arrived = p.net.now
  for (const i of [1, 2, 3]) p.setBusy(i, true)
  p.run(2 * T)
  for (const i of [1, 2, 3]) {
    const first = p.viewChangesSent(i)[0]
    assert.is(first, arrived + T, `validator ${i}: VIEW-CHANGE at ${first}, txs arrived at ${arrived}`)
  }
  // View 1's primary holds txs too: it proposes after the batching delay.
  p.run(T)
  for (const i of [1, 2, 3]) assert.ok(p.head(i) > 1, `validator ${i} committed nothing in view 1`)
})

test('a stream of txs cannot postpone the view change (repeats and empty/non-empty flips)', () => {
  const p = new Pacer(H)
  p.run(12_000)
  p.crash(0)
  p.run(3_000)
  const arrived = p.net.now
  for (const i of [1, 2, 3]) p.setBusy(i, true)
  let flip = 0
  p.run(2 * T, (now) => {
    // Every 10 ms a tx arrives (a repeated `pending: true`), and every 50 ms the mempool empties and
    // fills again without a commit (txs evicted, new ones admitted).
    for (const i of [1, 2, 3]) {
      p.net.step(i, { type: 'pending', pending: true })
      if (now % 50 === 0) {
        p.setBusy(i, false)
        p.setBusy(i, true)
        flip++
      }
    }
  })
  assert.ok(flip > 50)
  for (const i of [1, 2, 3]) {
    const first = p.viewChangesSent(i)[0]
    assert.is(first, arrived + T, `validator ${i}: VIEW-CHANGE at ${first}, txs since ${arrived}`)
  }
})

test('a mempool that empties and fills without a commit delays a view change by a bounded time only', () => {
  const p = new Pacer(H)
  for (let i = 0; i < 4; i++) p.setBusy(i, true)
  p.run(500)
  p.crash(0)
  const last = p.lastCommitVote()
  // Worst case for the replicas: "empty" just before the short timer fires (the idle one is armed),
  // "non-empty" just before that one fires (the short one is armed), then flips and repeats for ever.
  let t = 0
  p.run(last + T - TICK - p.net.now)
  for (const i of [1, 2, 3]) p.setBusy(i, false)
  p.run(H + T - TICK)
  assert.equal(p.viewChangesSent(1), [], 'the idle timer was not armed')
  for (const i of [1, 2, 3]) p.setBusy(i, true)
  p.run(3 * T, () => {
    if (++t % 5) return
    for (const i of [1, 2, 3]) {
      p.setBusy(i, false)
      p.setBusy(i, true)
    }
  })
  for (const i of [1, 2, 3]) {
    const first = p.viewChangesSent(i)[0]
    assert.ok(first !== undefined, `validator ${i} never asked for a view change`)
    assert.ok(first <= last + H + 3 * T, `validator ${i}: VIEW-CHANGE at ${first}, last commit ${last}`)
  }
})

test('busy then idle again: blocks at the batching pace, then one per heartbeat, never a view change', () => {
  const p = new Pacer(H)
  p.run(11_000)
  for (let i = 0; i < 4; i++) p.setBusy(i, true)
  p.run(1_000)
  const busyHeight = p.head(1)
  assert.ok(busyHeight >= 10, `only ${busyHeight} blocks after 1 s with txs`)
  for (let i = 0; i < 4; i++) p.setBusy(i, false)
  p.run(30_000)
  assert.ok(p.head(1) - busyHeight <= 3, `${p.head(1) - busyHeight} blocks in 30 s idle`)
  assert.ok(p.head(1) - busyHeight >= 2, `${p.head(1) - busyHeight} blocks in 30 s idle`)
  for (let i = 0; i < 4; i++) assert.is(p.net.replicas[i]!.status().view, 0)
})

test('heartbeatMs is checked', () => {
  assert.throws(() => new Pacer(H, 50, -1), /heartbeatMs/)
  assert.throws(() => new Pacer(H, 50, 1.5), /heartbeatMs/)
  assert.throws(() => new Pacer(H, 50, 86_400_001), /heartbeatMs/)
})

test.run()
