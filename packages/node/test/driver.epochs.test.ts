// The driver across an epoch switch (the consensus README's node contract), with recording replicas, a
// real ledger and store, a manual clock: the change's block makes the schedule grow and `epochEnd` reach
// the old replica right after its `executed`; after the last height the new epoch's replica starts on
// the executed state with a journal tagged with its epoch; OTHER_EPOCH messages go to the retired
// replica (earlier epoch) or start a rate-limited block sync (later epoch); the two replicas' timers
// do not clobber each other; a restart starts the epoch of the stored height + 1.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  ChainStore,
  type CommitCertificate,
  VerifiedCache,
  createPureVerifier,
  createRuntime,
  defineService,
  generateKeyPair,
  openMemoryKv,
  s,
  signTx,
  toHex,
} from '@cityledger/core'
import { type Input, type Output, validatorsAt } from '@cityledger/consensus'
import { seedFor } from '@cityledger/core/testing'
import { Ledger } from '../src/chain/index.ts'
import { ledgerStore } from '../src/chain/storeAdapter.ts'
import { ConsensusDriver, checkpointDigest } from '../src/node/driver.ts'
import { EpochReplicas, type EpochReplicaParams } from '../src/node/epochReplicas.ts'
import { Journal } from '../src/node/journal.ts'

const CHAIN = 'epochs-test'
const T0 = 1_700_000_000_000
const K = 4
const v = [0, 1, 2, 3, 4].map((i) => generateKeyPair(seedFor(`epochs-validator-${i}`)))
const admin = generateKeyPair(seedFor('epochs-admin'))
const noop = () => {}
const logger = new Proxy({}, { get: (_t, k) => (k === 'child' ? () => logger : noop) }) as never
const gov = defineService({
  name: 'gov',
  version: '1.0.0',
  methods: {
    set: {
      args: s.object({ keys: s.array(s.key(), { min: 1, max: 8 }), height: s.uint() }),
      handler(ctx, a) {
        ctx.scheduleValidators!(a.keys, a.height)
      },
    },
  },
})

/** A replica that records its inputs and answers from a script. */
class FakeReplica {
  readonly inputs: Input[] = []
  readonly p: EpochReplicaParams
  private readonly answer: (input: Input, self: FakeReplica) => Output[]
  constructor(p: EpochReplicaParams, answer: (input: Input, self: FakeReplica) => Output[] = () => []) {
    this.p = p
    this.answer = answer
  }
  step(input: Input): Output[] {
    this.inputs.push(input)
    return this.answer(input, this)
  }
}

async function world(me: number) {
  const kv = openMemoryKv()
  const runtime = createRuntime({ services: [gov] })
  const store = await ChainStore.open(kv)
  const g = runtime.genesis({ get: () => undefined }, { _sys: { validatorAuthority: 'gov' } }, T0)
  await store.initGenesis({ chainId: CHAIN, stateWrites: g.writes })
  const journal = await Journal.open(openMemoryKv())
  const made: FakeReplica[] = []
  let answer: (input: Input, self: FakeReplica) => Output[] = () => []
  let now = 0
  const timers: { at: number; fn: () => void; id: number }[] = []
  let nextTimer = 1
  const clock = {
    now: () => now,
    setTimeout: (fn: () => void, ms: number) => {
      const id = nextTimer++
      timers.push({ at: now + ms, fn, id })
      return id
    },
    clearTimeout: (id: unknown) => {
      const i = timers.findIndex((t) => t.id === id)
      if (i >= 0) timers.splice(i, 1)
    },
  }
  const stateReader = { get: (k: Uint8Array) => store.state.get(k) }
  const replicas = new EpochReplicas({
    publicKey: v[me]!.publicKey,
    genesisValidators: v.slice(0, 4).map((k) => k.publicKey),
    checkpointInterval: K,
    readChanges: (after) => runtime.validatorChanges(stateReader, after),
    makeReplica: (p) => {
      const r = new FakeReplica(p, (i, self) => answer(i, self))
      made.push(r)
      return r
    },
    digestAt: async (h) => checkpointDigest((await store.getBlock(h))!.hash, (await store.stateRoot(h))!),
    journal,
    logger,
  })
  const ledger = await Ledger.open({
    chainId: CHAIN,
    validators: v.slice(0, 4).map((k) => k.publicKey),
    validatorsAt: (h) => validatorsAt(replicas.schedule, h),
    store: await ledgerStore(store),
    runtime,
    verifier: createPureVerifier(),
    verifiedCache: new VerifiedCache(),
    genesisTime: T0,
    maxBlockTxs: 100,
    maxBlockBytes: 1 << 20,
    wallClock: () => T0 + 1_000_000,
  })
  const syncs: number[] = []
  const sent: string[] = []
  const driver = new ConsensusDriver({
    chainId: CHAIN,
    publicKey: v[me]!.publicKey,
    replicas,
    journal,
    ledger,
    mempool: { update: noop, get: () => undefined, size: () => 0, reap: () => [] } as never,
    net: { broadcast: noop, send: noop, sendKey: (k) => sent.push(k), penalize: noop },
    clock,
    logger,
    wallClock: () => T0 + 1_000_000,
    maxBlockTxs: 100,
    maxBlockBytes: 1 << 20,
    blockIntervalMs: 100,
    emptyBlockIntervalMs: 100,
    onCommitted: noop,
    onSyncNeeded: (from) => syncs.push(from),
    onFatal: (err) => {
      throw err
    },
  })
  let nonce = 1
  /** Commits the next block (as block sync would) with these txs, proposed by the set's primary of view 0. */
  const commitNext = async (txs: ReturnType<typeof signTx>[] = []) => {
    const height = ledger.head.height + 1
    const block = ledger.propose(0, txs, T0 + height * 1000, ledger.primaryOf(0, height))
    const certificate: CommitCertificate = {
      chainId: CHAIN,
      view: 0,
      height,
      blockHash: block.hash,
      signatures: [],
    }
    await driver.commitSynced({
      type: 'commit',
      height,
      view: 0,
      digest: block.hash,
      block: block.bytes,
      isNull: false,
      certificate,
    })
    await driver.idle()
  }
  const setTx = (keys: number[], height: number) =>
    signTx(
      {
        chainId: CHAIN,
        service: 'gov',
        method: 'set',
        args: { keys: keys.map((i) => v[i]!.publicKey), height },
        signer: admin.publicKey,
        nonce: nonce++,
        expiry: 0,
      },
      admin.secretKey,
    )
  return {
    kv,
    store,
    journal,
    ledger,
    driver,
    replicas,
    made,
    syncs,
    sent,
    timers,
    commitNext,
    setTx,
    setAnswer: (a: typeof answer) => {
      answer = a
    },
    advance: (ms: number) => {
      now += ms
    },
  }
}

const kinds = (r: FakeReplica) =>
  r.inputs.map((i) =>
    i.type === 'executed' ? `executed:${i.height}` : i.type === 'epochEnd' ? `epochEnd:${i.height}` : i.type,
  )

test('epochEnd right after the change executes; the switch after the last height; a restart', async () => {
  // Node 1 is in both sets: [0,1,2,3] then [1,2,3,4] from 5 (the change asks for 3, executed at 2).
  const w = await world(1)
  w.driver.push({ type: 'start', committedHeight: 0, journal: [] })
  await w.driver.idle()
  assert.is(w.made.length, 1)
  const e0 = w.made[0]!
  assert.is(e0.p.epoch, 0)
  await w.commitNext()
  await w.commitNext([w.setTx([1, 2, 3, 4], 3)])
  assert.equal(
    kinds(e0),
    ['start', 'executed:1', 'executed:2', 'epochEnd:4'],
    'epochEnd right after executed(2)',
  )
  assert.is(w.replicas.schedule.epochs[1]!.firstHeight, 5)
  await w.commitNext()
  await w.commitNext()
  assert.is(w.made.length, 2, 'the new epoch replica is built after executed(4)')
  const e1 = w.made[1]!
  assert.is(e1.p.epoch, 1)
  assert.is(e1.p.baseHeight, 4)
  assert.equal(
    e1.p.validators.map(toHex),
    [1, 2, 3, 4].map((i) => toHex(v[i]!.publicKey)),
  )
  const digest4 = checkpointDigest((await w.store.getBlock(4))!.hash, (await w.store.stateRoot(4))!)
  assert.equal(e1.p.genesisDigest, digest4, 'genesis digest: the executed state of the base height')
  assert.equal(e1.inputs[0], { type: 'start', committedHeight: 4 })
  assert.is(w.journal.epoch, 1, 'the journal is the new epoch’s')
  assert.equal(kinds(e0).slice(-2), ['executed:3', 'executed:4'])
  assert.is(w.replicas.retired(), w.replicas.run(0))
  // Height 5 is proposed by epoch 1's primary of view 0 (key 1), not genesis's (key 0).
  assert.equal(toHex(w.ledger.primaryOf(0, 5)), toHex(v[1]!.publicKey))
  await w.commitNext()
  assert.equal(kinds(e1), ['start', 'executed:5'], 'executions above the end go to the new replica')

  // A restart on the same store: the schedule comes from state, the epoch of 6 (1) starts, with its journal.
  await w.journal.append({ type: 'view', view: 0 } as never)
  const journal = await Journal.open(openMemoryKv())
  assert.is(journal.epoch, 0, 'an untagged journal is epoch 0')
  const made: FakeReplica[] = []
  const again = new EpochReplicas({
    publicKey: v[1]!.publicKey,
    genesisValidators: v.slice(0, 4).map((k) => k.publicKey),
    checkpointInterval: K,
    readChanges: (after) =>
      createRuntime({ services: [gov] }).validatorChanges({ get: (k) => w.store.state.get(k) }, after),
    makeReplica: (p) => {
      const r = new FakeReplica(p)
      made.push(r)
      return r
    },
    digestAt: async (h) => checkpointDigest((await w.store.getBlock(h))!.hash, (await w.store.stateRoot(h))!),
    journal,
    logger,
  })
  const start = await again.start({
    type: 'start',
    committedHeight: 5,
    journal: [{ type: 'view', view: 3 } as never],
  })
  assert.is(made[0]!.p.epoch, 1)
  assert.equal(made[0]!.p.genesisDigest, digest4)
  assert.equal(start?.journal, [], 'a journal of another epoch is not given to this epoch’s replica')
  assert.is(journal.epoch, 1)
})

test('OTHER_EPOCH: the earlier epoch to the retired replica, a later one to block sync (rate-limited); timers by epoch', async () => {
  const w = await world(1)
  w.setAnswer((input, self) => {
    if (self.p.epoch === 1 && input.type === 'message') {
      const epoch = input.bytes[0]!
      return epoch === 1
        ? []
        : [{ type: 'reject', code: 'OTHER_EPOCH', reason: 'x', penalize: false, epoch } as Output]
    }
    if (input.type === 'start') return [{ type: 'setTimer', timer: 'progress', ms: 100, token: self.p.epoch }]
    if (self.p.epoch === 0 && input.type === 'message')
      return [{ type: 'send', to: 0, kind: 'status', bytes: input.bytes }]
    return []
  })
  w.driver.push({ type: 'start', committedHeight: 0, journal: [] })
  await w.driver.idle()
  await w.commitNext()
  await w.commitNext([w.setTx([1, 2, 3, 4], 3)])
  await w.commitNext()
  await w.commitNext()
  const [e0, e1] = w.made
  assert.ok(e0 && e1)
  assert.is(w.timers.length, 2, 'each epoch keeps its own progress timer')
  w.driver.push({ type: 'message', bytes: Uint8Array.of(0), from: 'peer' })
  await w.driver.idle()
  assert.is(
    e0.inputs.filter((i) => i.type === 'message').length,
    1,
    'an epoch-0 message reaches the retired replica',
  )
  assert.equal(
    w.sent,
    [toHex(v[0]!.publicKey)],
    'its answer goes to the epoch-0 validator by key (0 left the set)',
  )
  w.driver.push({ type: 'message', bytes: Uint8Array.of(2), from: 'peer' })
  w.driver.push({ type: 'message', bytes: Uint8Array.of(2), from: 'peer' })
  await w.driver.idle()
  assert.equal(w.syncs, [5], 'a later epoch: one block sync from the head')
  assert.is(e0.inputs.filter((i) => i.type === 'message').length, 1, 'not to the retired replica')
  w.advance(1000)
  w.driver.push({ type: 'message', bytes: Uint8Array.of(2), from: 'peer' })
  await w.driver.idle()
  assert.equal(w.syncs, [5, 5], 'again after the rate limit')
  w.driver.stop()
})

test.run()
