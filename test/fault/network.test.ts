// Network faults through a proxy on every validator link: a minority cut off, an even split (no
// quorum anywhere: the chain stops, then resumes), 150 ms delays, and clocks skewed on two nodes.
import { test } from 'uvu'
import { testSeed } from '@cityledger/core/testing'
import { assertClean } from './report.ts'
import { runScenario } from './scenario.ts'

const seed = testSeed(202)

test(`partitions (1|3, 2|2), link delays and skewed clocks lose no acknowledged tx and fork nothing (SEED=${seed})`, async () => {
  const r = await runScenario(
    {
      name: 'network',
      seed,
      validators: 4,
      rate: 25,
      loadMs: 30_000,
      clockSkew: { 1: 45_000, 2: -45_000 },
      schedule: [
        { at: 1_000, fault: { kind: 'partition', groups: [[0], [1, 2, 3]], ms: 4_000 } },
        {
          at: 7_000,
          fault: {
            kind: 'partition',
            groups: [
              [0, 1],
              [2, 3],
            ],
            ms: 4_000,
          },
        },
        { at: 14_000, fault: { kind: 'delay', delayMs: 150, ms: 5_000 } },
        { at: 21_000, fault: { kind: 'partition', groups: [[3], [0, 1, 2]], ms: 3_000 } },
      ],
    },
    console.log,
  )
  assertClean(r)
})

test.run()
