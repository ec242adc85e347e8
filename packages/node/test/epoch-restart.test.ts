// A restart inside validator epoch >= 1 starts that epoch's replica from its base checkpoint digest: the
// one the consensus journal kept at the switch, so a node whose store has pruned the base block and
// state root since (`store.retainBlocks`) still starts (before, it failed to read them). Without a kept
// digest it reads it from the store and keeps it in the journal.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CityError, openMemoryKv } from '@cityledger/core'
import { createLogger } from '../src/log/index.ts'
import { type EpochReplicaParams, EpochReplicas } from '../src/node/epochReplicas.ts'
import { Journal } from '../src/node/journal.ts'

const key = (n: number) => new Uint8Array(32).fill(n)
const me = key(9)
const genesis = [key(1), key(2), key(3), key(4)]
// Executed at height 3 with K = 4: the new set (me instead of key 4) signs from height 5, base 4.
const changes = [{ seq: 1, height: 3, executedAt: 3, keys: [key(1), key(2), key(3), me] }]
const kept = new Uint8Array(32).fill(7)
const inStore = new Uint8Array(32).fill(8)

async function setup(tag: { epoch: number; digest?: Uint8Array } | undefined, storeHasBase: boolean) {
  const journal = await Journal.open(openMemoryKv())
  if (tag) await journal.reset(tag.epoch, tag.digest)
  const built: EpochReplicaParams[] = []
  const reads: number[] = []
  const replicas = new EpochReplicas({
    publicKey: me,
    genesisValidators: genesis,
    checkpointInterval: 4,
    readChanges: (after) => changes.filter((c) => c.seq > after),
    makeReplica: (p) => {
      built.push(p)
      return { step: () => [] } as never
    },
    digestAt: async (h) => {
      reads.push(h)
      if (!storeHasBase) throw new CityError('PRUNED', `block of height ${h} was pruned`)
      return inStore
    },
    journal,
    logger: createLogger({ level: 'silent' }),
  })
  return { journal, built, reads, replicas }
}

test("a journal tagged with the epoch and its base digest: the store's base is not needed", async () => {
  const s = await setup({ epoch: 1, digest: kept }, false)
  assert.ok(await s.replicas.start({ type: 'start', committedHeight: 6 }))
  assert.equal(
    s.built.map((p) => [p.epoch, p.baseHeight, p.genesisDigest]),
    [[1, 4, kept]],
  )
  assert.equal(s.reads, [])
})

test('a journal of another epoch: the digest is read from the store and kept with the new tag', async () => {
  const s = await setup(undefined, true)
  assert.ok(await s.replicas.start({ type: 'start', committedHeight: 6 }))
  assert.equal(s.built[0]!.genesisDigest, inStore)
  assert.equal(s.reads, [4])
  const reopened = await Journal.open((s.journal as unknown as { kv: never }).kv)
  assert.equal([reopened.epoch, reopened.baseDigest], [1, inStore])
})

test('neither kept nor stored: the start fails with the store error, nothing started', async () => {
  const s = await setup(undefined, false)
  const err = await s.replicas.start({ type: 'start', committedHeight: 6 }).catch((e) => e)
  assert.match(String(err), /pruned/)
  assert.equal(s.built, [])
})

test.run()
