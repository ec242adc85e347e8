// Storage faults: a disk that fills up, twice through the JS wrapper (every store write fails with
// ENOSPC) and once for real (the node's data folder is on an 8 MiB tmpfs that the harness fills, so
// LevelDB itself gets ENOSPC): the node stops with exit code 5 and says the disk is full, loses
// nothing, and resumes once there is room. Then a truncated or garbled journal entry, a truncated
// LevelDB table and a table with flipped bytes (tables made to exist first): the node refuses to
// start and says why; the harness then restores the folder and the node catches up.
import { test } from 'uvu'
import { testSeed } from '@cityledger/core/testing'
import { assertClean } from './report.ts'
import { type Scenario, runScenario } from './scenario.ts'
import { tmpfsUnavailable } from './tmpfs.ts'

const seed = testSeed(303)
const noTmpfs = tmpfsUnavailable()

test(`full disks (wrapper and real tmpfs), a corrupt journal and corrupt store tables: clean stops, clear refusals, nothing lost (SEED=${seed})`, async () => {
  const schedule: Scenario['schedule'] = [
    { at: 1_000, fault: { kind: 'diskFull', node: 1, ms: 2_000 } },
    { at: 6_000, fault: { kind: 'corruptJournal', node: 2 } },
    { at: 10_000, fault: { kind: 'corruptStore', node: 3, damage: 'truncateTable' } },
    { at: 14_000, fault: { kind: 'corruptStore', node: 0, damage: 'flipTable' } },
    { at: 18_000, fault: { kind: 'diskFull', node: 1, ms: 500 } },
  ]
  if (noTmpfs) console.log(`SKIPPED the real full disk (LevelDB ENOSPC on a tmpfs): ${noTmpfs}`)
  else schedule.push({ at: 21_000, fault: { kind: 'fillDisk', node: 2, ms: 1_000 } })
  const r = await runScenario(
    { name: 'disk', seed, validators: 4, rate: 20, loadMs: 27_000, schedule },
    console.log,
  )
  assertClean(r)
})

test.run()
