// Issue #10, case 1 on real processes: the primary is killed while blocks over 1 MB are in flight.
// With the node's consensus defaults (K=16, L=64, 3 s view-change timeout) and ~1.3 MB blocks, the
// kill comes just before a checkpoint, so a VIEW-CHANGE must account for a dozen large prepared
// blocks. The three others must change view and commit again within 30 s of the restart, keep
// admitting txs, and lose nothing.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { testSeed } from '@cityledger/core/testing'
import { assertClean } from './report.ts'
import { runScenario } from './scenario.ts'

const seed = testSeed(707)
const K = 16

test(`SIGKILL of the primary with a dozen blocks over 1 MB above the stable checkpoint: the others change view and commit again within 30 s (SEED=${seed})`, async () => {
  const r = await runScenario(
    {
      name: 'primary-crash-large-blocks',
      seed,
      validators: 4,
      // ~51 agreement drafts of 31.6 KB a second (and ballots): a block a second holds ~1.6 MB.
      rate: 60,
      largeTxs: true,
      maxInFlight: 256,
      loadMs: 30_000,
      consensus: {
        checkpointInterval: K,
        watermarkWindow: 64,
        viewChangeTimeoutMs: 3000,
        blockIntervalMs: 1000,
      },
      // Down for longer than the view-change timeout: the three others must change view without it.
      schedule: [
        { at: 2_000, fault: { kind: 'kill', node: 'primary', downMs: 6_000, atHeight: { mod: K, rem: 13 } } },
      ],
    },
    console.log,
  )
  const killedAt = r.phases[1]?.from ?? 0
  const window = r.blockBytes.slice(killedAt - (killedAt % K) + 1, killedAt + 1)
  console.log(
    `killed at height ${killedAt}; load bytes per block above the checkpoint: ${window.map((b) => (b / 1e6).toFixed(2)).join(' ')} MB`,
  )
  assertClean(r)
  assert.ok(
    window.filter((b) => b > 1e6).length >= 10,
    `at least 10 blocks over 1 MB above the stable checkpoint when the primary was killed (got ${window.length} blocks: ${window.join(', ')})`,
  )
})

test.run()
