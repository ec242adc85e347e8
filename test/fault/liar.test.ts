// Issue #10, cases 3-5 on real processes: one Byzantine validator of four (node 0, the first primary)
// replays one signed STATUS claiming height 0 to every peer 20 times a second, sends STATUS messages
// claiming height 2^53-1, and, whenever it is primary, proposes blocks with far-future times or with
// txs committed at earlier heights (see liar.ts). Kills of the honest primaries bring the view back
// round to it. The honest nodes must keep committing and admitting txs (every phase commits load txs;
// a fresh tx commits within 30 s after the last fault), lose nothing, keep each acknowledged tx's
// status, keep block times within the drift bound of real time, and penalise the liar.
// BYZ=statusReplay|hugeHeight|futureTime|reinclude runs one behaviour alone.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { testSeed } from '@cityledger/core/testing'
import type { ByzantineKind } from './byzantine.ts'
import { assertClean } from './report.ts'
import { runScenario } from './scenario.ts'

const seed = testSeed(909)
const kind = (process.env.BYZ ?? 'liar') as ByzantineKind

test(`a ${kind} validator (1 of 4: STATUS replays, huge heights, far-future times, re-included txs): honest nodes stay live, admit txs and penalise it (SEED=${seed})`, async () => {
  const r = await runScenario(
    {
      name: `byzantine-${kind}`,
      seed,
      validators: 4,
      rate: 20,
      loadMs: 36_000,
      byzantine: { 0: kind },
      // Killing each honest primary in turn brings the view round to node 0 (a kill that finds the
      // liar primary leaves it be: see faults.ts), whatever view the start-up ended in.
      schedule: [6_000, 12_000, 18_000, 24_000, 30_000].map((at) => ({
        at,
        fault: { kind: 'kill' as const, node: 'primary' as const, downMs: 1_000 },
      })),
    },
    console.log,
  )
  const did = r.byzantineStats[0] ?? {}
  console.log(`the liar says it did: ${JSON.stringify(did)}`)
  // The run proves something only if the liar lied.
  const expect: Record<string, string[]> = {
    statusReplay: ['statusSent'],
    hugeHeight: ['hugeHeightSent'],
    futureTime: ['futureTimeProposals'],
    reinclude: ['reincludedTxs'],
  }
  for (const k of kind === 'liar' ? Object.values(expect).flat() : (expect[kind] ?? []))
    assert.ok(Number(did[k]) > 0, `the liar did ${k} (${JSON.stringify(did)})`)
  assertClean(r)
  assert.ok(r.penalties > 0, `honest nodes penalised the ${kind} validator`)
})

test.run()
