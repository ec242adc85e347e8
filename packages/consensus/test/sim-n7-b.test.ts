import { test } from 'uvu'
import { testSeed } from '@cityledger/core/testing'
import { BIG_BLOCK_KINDS, SMALL_BLOCK_KINDS, assertCoverage, sweepAndCheck } from './sweepHelper.ts'

// n = 7 (f = 2): 120 seeded scenarios with every fault kind but big blocks, and 3 with big blocks; SEED
// moves the window of seeds.
const FIRST = testSeed(141)

test(`n=7: 120 scenarios from seed ${FIRST}, all fault kinds but big blocks, zero violations`, () => {
  const s = sweepAndCheck(7, FIRST, 120, SMALL_BLOCK_KINDS)
  assertCoverage(s, SMALL_BLOCK_KINDS)
})

test(`n=7: big blocks with crashes for good and lying replicas, 3 seeds from ${FIRST}`, () => {
  const s = sweepAndCheck(7, FIRST + 20_000, 3, BIG_BLOCK_KINDS, { allFaults: true })
  assertCoverage(s, ['bigBlocks'])
})

test.run()
