import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { testSeed } from '@cityledger/core/testing'
import { FAULT_KINDS, runSimulation } from '@cityledger/consensus'
import { assertCoverage, sweepAndCheck } from './sweepHelper.ts'

// n = 4 (f = 1): 300 seeded scenarios with every fault kind enabled; SEED moves the window of seeds.
const FIRST = testSeed(1)

test(`n=4: 300 scenarios from seed ${FIRST}, all fault kinds, zero violations`, () => {
  const s = sweepAndCheck(4, FIRST, 300)
  assertCoverage(s)
})

test(`n=4: each fault kind alone, 12 seeds each from ${FIRST}`, () => {
  for (const kind of FAULT_KINDS) {
    const s = sweepAndCheck(4, FIRST + 10_000, 12, [kind])
    assert.ok(Object.keys(s.faultsInjected).length > 0 || kind === 'twins', `${kind} injected nothing`)
  }
})

test(`a run replays identically from its seed (${FIRST})`, () => {
  const a = runSimulation({ seed: FIRST, n: 4, allFaults: true })
  const b = runSimulation({ seed: FIRST, n: 4, allFaults: true })
  assert.equal(JSON.stringify(a), JSON.stringify(b))
  assert.ok(a.steps > 1000)
})
test.run()
