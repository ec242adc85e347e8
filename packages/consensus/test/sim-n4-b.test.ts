import { test } from 'uvu'
import { testSeed } from '@cityledger/core/testing'
import { BIG_BLOCK_KINDS, SMALL_BLOCK_KINDS, assertCoverage, sweepAndCheck } from './sweepHelper.ts'

// n = 4 (f = 1): 250 seeded scenarios with every fault kind but big blocks, and 6 with big blocks; SEED
// moves the window of seeds.
const FIRST = testSeed(301)

test(`n=4: 250 scenarios from seed ${FIRST}, all fault kinds but big blocks, zero violations`, () => {
  const s = sweepAndCheck(4, FIRST, 250, SMALL_BLOCK_KINDS)
  assertCoverage(s, SMALL_BLOCK_KINDS)
})

test(`n=4: big blocks with crashes for good and lying replicas, 6 seeds from ${FIRST}`, () => {
  const s = sweepAndCheck(4, FIRST + 20_000, 6, BIG_BLOCK_KINDS, { allFaults: true })
  assertCoverage(s, ['bigBlocks'])
})
test.run()
