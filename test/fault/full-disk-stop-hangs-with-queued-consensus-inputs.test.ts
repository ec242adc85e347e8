// Regression: a validator whose disk filled up while consensus inputs were queued never exited.
// The journal append failed inside the driver's drain loop, the node stopped itself (fatal), and
// `driver.idle()` then waited forever for a queue that a stopped driver no longer drains: the process
// hung with a full disk instead of stopping cleanly (found by the soak, seed 7, scenario soak-2).
import { test } from 'uvu'
import { testSeed } from '@cityledger/core/testing'
import { assertClean } from './report.ts'
import { runScenario } from './scenario.ts'

const seed = testSeed(606)

test(`a node whose disk fills up under consensus traffic stops within 30 s, every time (SEED=${seed})`, async () => {
  const r = await runScenario(
    {
      name: 'full-disk-queued-inputs',
      seed,
      validators: 4,
      rate: 40,
      loadMs: 14_000,
      // The flood keeps the victim's consensus queue busy when its journal write fails.
      byzantine: { 3: 'flood' },
      schedule: Array.from({ length: 4 }, (_, k) => ({
        at: 500 + k * 3000,
        fault: { kind: 'diskFull' as const, node: 1 + (k % 2), ms: 200 },
      })),
    },
    console.log,
  )
  assertClean(r)
})

test.run()
