// Restarts under load, as an operator does for every upgrade (here the harsh way: SIGKILL): a validator
// stays down while the others commit, and is started again. Each restarted node
// must catch up with the others within 30 s of its `ready` (the scenario checks every restart and
// reports the times), and nothing acknowledged is lost.
// test lane: long
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { testSeed } from '@cityledger/core/testing'
import { assertClean } from './report.ts'
import { runScenario } from './scenario.ts'

const seed = testSeed(161)

test(`eight restarts under load (primary and backups, down 1-4 s) each catch up within 30 s (SEED=${seed})`, async () => {
  const r = await runScenario(
    {
      name: 'restart',
      seed,
      validators: 4,
      rate: 40,
      loadMs: 32_000,
      schedule: [
        { at: 1_000, fault: { kind: 'kill', node: 3, downMs: 2_000 } },
        { at: 4_000, fault: { kind: 'kill', node: 'primary', downMs: 1_000 } },
        { at: 7_000, fault: { kind: 'kill', node: 1, downMs: 4_000 } },
        { at: 12_000, fault: { kind: 'kill', node: 'primary', downMs: 3_000 } },
        { at: 16_000, fault: { kind: 'kill', node: 2, downMs: 1_500 } },
        { at: 19_000, fault: { kind: 'kill', node: 'primary', downMs: 2_500 } },
        { at: 23_000, fault: { kind: 'kill', node: 0, downMs: 4_000 } },
        { at: 28_000, fault: { kind: 'kill', node: 3, downMs: 1_000 } },
      ],
    },
    console.log,
  )
  assertClean(r)
  assert.is(r.catchUps.length, 8, 'every restart measured')
  const done = r.catchUps.filter((c) => !c.interrupted)
  assert.ok(
    done.length >= 4,
    `at least half the catch-ups ran to the end (${done.length} of 8; the rest were killed again first)`,
  )
  const ms = done.map((c) => c.ms).sort((a, b) => a - b)
  console.log(
    `catch-up after restart (ms): median ${ms[Math.floor(ms.length / 2)]}, max ${ms.at(-1)} (${done.length} of 8 measured to the end)`,
  )
})

test.run()
