import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { testSeed } from '@cityledger/core/testing'
import { FAULT_KINDS, runSimulation } from '@cityledger/consensus'
import { BIG_BLOCK_KINDS, SMALL_BLOCK_KINDS, assertCoverage, sweepAndCheck } from './sweepHelper.ts'

// n = 4 (f = 1): 250 seeded scenarios with every fault kind but big blocks enabled, each kind alone, big
// blocks with crashes for good and lying replicas; SEED moves the window of seeds.
const FIRST = testSeed(1)

test(`n=4: 250 scenarios from seed ${FIRST}, all fault kinds but big blocks, zero violations`, () => {
  const s = sweepAndCheck(4, FIRST, 250, SMALL_BLOCK_KINDS)
  assertCoverage(s, SMALL_BLOCK_KINDS)
})

test(`n=4: each fault kind alone, 8 seeds each from ${FIRST}`, () => {
  for (const kind of FAULT_KINDS) {
    const s = sweepAndCheck(4, FIRST + 10_000, 8, [kind])
    assert.ok(Object.keys(s.faultsInjected).length > 0 || kind === 'twins', `${kind} injected nothing`)
  }
})

test(`n=4: big blocks (up to 8 MiB) with ${BIG_BLOCK_KINDS.length - 1} other kinds in every run, 6 seeds from ${FIRST}`, () => {
  const s = sweepAndCheck(4, FIRST + 20_000, 6, BIG_BLOCK_KINDS, { allFaults: true })
  assertCoverage(s, ['bigBlocks'])
})

test(`a run replays identically from its seed (${FIRST})`, () => {
  const a = runSimulation({ seed: FIRST, n: 4, allFaults: true })
  const b = runSimulation({ seed: FIRST, n: 4, allFaults: true })
  assert.equal(JSON.stringify(a), JSON.stringify(b))
  assert.ok(a.steps > 1000)
})
test.run()
