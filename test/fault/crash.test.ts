// Crashes and pauses of real validator processes under load: SIGKILL and restart (the primary,
// repeatedly, and a backup), SIGSTOP/SIGCONT longer than the view-change timeout.
import { test } from 'uvu'
import { testSeed } from '@cityledger/core/testing'
import { assertClean } from './report.ts'
import { runScenario } from './scenario.ts'

const seed = testSeed(101)

test(`SIGKILL of the primary three times, of a backup, and pauses of 4 s (> view-change timeout) lose no acknowledged tx (SEED=${seed})`, async () => {
  const r = await runScenario(
    {
      name: 'crash',
      seed,
      validators: 4,
      rate: 25,
      loadMs: 30_000,
      schedule: [
        { at: 1_000, fault: { kind: 'kill', node: 'primary', downMs: 1_500 } },
        { at: 5_000, fault: { kind: 'kill', node: 'primary', downMs: 500 } },
        { at: 8_000, fault: { kind: 'kill', node: 'primary', downMs: 3_000 } },
        { at: 14_000, fault: { kind: 'kill', node: 2, downMs: 1_000 } },
        { at: 17_000, fault: { kind: 'pause', node: 'primary', ms: 4_000 } },
        { at: 23_000, fault: { kind: 'pause', node: 3, ms: 4_000 } },
      ],
    },
    console.log,
  )
  assertClean(r)
})

test.run()
