import { test } from 'uvu'
import { testSeed } from '@cityledger/core/testing'
import { assertCoverage, sweepAndCheck } from './sweepHelper.ts'

// n = 7 (f = 2): 140 seeded scenarios with every fault kind enabled; SEED moves the window of seeds.
const FIRST = testSeed(141)

test(`n=7: 140 scenarios from seed ${FIRST}, all fault kinds, zero violations`, () => {
  const s = sweepAndCheck(7, FIRST, 140)
  assertCoverage(s)
})

test.run()
