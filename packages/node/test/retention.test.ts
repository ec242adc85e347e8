// BlockRetention: with 10 blocks kept, the first prune is at height 11 (keeping 2..11); then it
// prunes block history every `every` blocks and sweeps state history after a prune at
// most every `sweepEvery` blocks; a failure is logged, never thrown, and the next due prune runs again.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createLogger } from '../src/log/index.ts'
import { BlockRetention } from '../src/node/retention.ts'

function fakeStore(failSweep = false) {
  const calls: string[] = []
  const store = {
    prunedBelow: 0,
    async prune(keepFrom: number) {
      calls.push(`prune ${keepFrom}`)
      const from = store.prunedBelow
      store.prunedBelow = keepFrom
      return { from, prunedBelow: keepFrom, blocks: keepFrom - Math.max(from, 1), deleted: 0 }
    },
    async pruneState() {
      calls.push('sweep')
      if (failSweep) throw new Error('disk')
      return { roots: 1, kept: 1, deleted: 0 }
    },
  }
  return { store, calls }
}

const logger = createLogger({ level: 'silent' })

test('prunes every `every` blocks and sweeps state at most every `sweepEvery` blocks', async () => {
  const { store, calls } = fakeStore()
  const r = new BlockRetention({ store, retainBlocks: 10, logger, every: 5, sweepEvery: 20 })
  for (let h = 1; h <= 40; h++) {
    r.committed(h)
    await r.running
  }
  assert.equal(calls, [
    'prune 2',
    'sweep',
    'prune 7',
    'prune 12',
    'prune 17',
    'prune 22',
    'sweep',
    'prune 27',
  ])
})

test('a failed sweep is logged, not thrown, and pruning goes on', async () => {
  const { store, calls } = fakeStore(true)
  const r = new BlockRetention({ store, retainBlocks: 10, logger, every: 5, sweepEvery: 10 })
  for (let h = 1; h <= 25; h++) {
    r.committed(h)
    await r.running
  }
  assert.equal(calls, ['prune 2', 'sweep', 'prune 7', 'prune 12', 'sweep'])
})

test.run()
