// Issue #10, case 2 on real processes: n = 4, the primary of the next view down for good, and only
// the link between the current primary and the primary of the view after next cut (through the
// proxy) for about three view-change timeouts, then healed (the case with view 0: validator 1
// down, link 0<->2). Views 0 and 1 cannot make progress (0 cannot reach 2; 1 is gone), so the
// others must get through several view changes with one replica always a view behind. After the heal
// the three must commit again within 30 s and keep admitting txs.
import { test } from 'uvu'
import { testSeed } from '@cityledger/core/testing'
import { assertClean } from './report.ts'
import { runScenario } from './scenario.ts'

const seed = testSeed(808)
const TIMEOUT = 1500

test(`one validator down for good and the link 0<->2 cut for ~3 view timeouts: the three commit again within 30 s of the heal (SEED=${seed})`, async () => {
  const r = await runScenario(
    {
      name: 'view-change-link-fault',
      seed,
      validators: 4,
      rate: 20,
      loadMs: 20_000,
      consensus: { viewChangeTimeoutMs: TIMEOUT },
      schedule: [
        // With p the primary of the current view v: the primary of view v+1 goes down for good, then
        // the link between p and the primary of view v+2 fails (issue: v = 0, nodes 1, then 0<->2).
        { at: 1_000, fault: { kind: 'stop', node: { primary: 1 } } },
        {
          at: 4_000,
          fault: { kind: 'link', pairs: [[{ primary: 0 }, { primary: 2 }]], ms: 3 * TIMEOUT + 500 },
        },
      ],
    },
    console.log,
  )
  assertClean(r)
})

test.run()
