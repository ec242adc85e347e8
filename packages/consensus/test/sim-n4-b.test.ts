import { test } from 'uvu'
import { testSeed } from '@cityledger/core/testing'
import { assertCoverage, sweepAndCheck } from './sweepHelper.ts'

// n = 4 (f = 1): 300 seeded scenarios with every fault kind enabled; SEED moves the window of seeds.
const FIRST = testSeed(301)

test(`n=4: 300 scenarios from seed ${FIRST}, all fault kinds, zero violations`, () => {
  const s = sweepAndCheck(4, FIRST, 300)
  assertCoverage(s)
})
test.run()
