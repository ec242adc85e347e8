// One Byzantine validator out of four (f = 1), run as a real process through test hooks: an
// equivocating primary, conflicting votes, replays of old messages, a flood of garbage and oversized
// frames. Safety and liveness hold, and the honest nodes penalise the offender where it is detectable.
import { test } from 'uvu'
// test lane: long
import * as assert from 'uvu/assert'
import { testSeed } from '@cityledger/core/testing'
import { BYZANTINE_KINDS } from './byzantine.ts'
import { assertClean } from './report.ts'
import { runScenario } from './scenario.ts'

const seed = testSeed(404)

for (const [k, kind] of BYZANTINE_KINDS.entries()) {
  if (process.env.BYZ && process.env.BYZ !== kind) continue
  test(`a ${kind} validator (1 of 4) causes no fork, no lost tx, no stall (SEED=${seed + k})`, async () => {
    const r = await runScenario(
      {
        name: `byzantine-${kind}`,
        seed: seed + k,
        validators: 4,
        rate: 20,
        loadMs: 12_000,
        // Node 0 is the first primary: the equivocator proposes from the start; a kill of the honest
        // primary later forces view changes with the Byzantine node taking part. Node 0 may come up
        // last, after the others changed view for want of it: then the honest primaries are killed
        // until it has had its turn and was caught (`rotateUntilCaught`, nothing when it was already).
        byzantine: { 0: kind },
        schedule: [
          ...(kind === 'equivocate'
            ? [{ at: 1_000, fault: { kind: 'rotateUntilCaught' as const, node: 0, downMs: 500 } }]
            : []),
          { at: 6_000, fault: { kind: 'kill', node: 2, downMs: 1_000 } },
        ],
      },
      console.log,
    )
    assertClean(r)
    // Equivocation and garbage are detectable and attributable: the offender must be penalised.
    // Replays are indistinguishable from retransmissions and are ignored, not punished.
    // Bad votes are consensus penalties (a sync penalty of a restarted node is no proof of them).
    if (kind === 'equivocate' || kind === 'conflictingVotes')
      assert.ok(
        (r.penaltyReasons.consensus ?? 0) > 0,
        `honest nodes penalised the ${kind} validator: ${JSON.stringify(r.penaltyReasons)}`,
      )
    else if (kind !== 'replay') assert.ok(r.penalties > 0, `honest nodes penalised the ${kind} validator`)
  })
}

test.run()
