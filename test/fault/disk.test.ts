// Storage faults: a disk that fills up (the node stops with a clear error, loses nothing, resumes once
// there is room), and a truncated or corrupted journal or store file (the node refuses to start and
// says why; the harness then restores the folder and the node catches up).
import { test } from 'uvu'
import { testSeed } from '@cityledger/core/testing'
import { assertClean } from './report.ts'
import { runScenario } from './scenario.ts'

const seed = testSeed(303)

test(`a full disk, a corrupt journal and corrupt store files: clean stops, clear refusals, nothing lost (SEED=${seed})`, async () => {
  const r = await runScenario(
    {
      name: 'disk',
      seed,
      validators: 4,
      rate: 20,
      loadMs: 25_000,
      schedule: [
        { at: 1_000, fault: { kind: 'diskFull', node: 1, ms: 2_000 } },
        { at: 6_000, fault: { kind: 'corruptJournal', node: 2 } },
        { at: 10_000, fault: { kind: 'corruptStore', node: 3 } },
        { at: 14_000, fault: { kind: 'corruptStore', node: 0 } },
        { at: 18_000, fault: { kind: 'diskFull', node: 1, ms: 500 } },
      ],
    },
    console.log,
  )
  assertClean(r)
})

test.run()
