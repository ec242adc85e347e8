// Issue #10, case 1 on real processes: the primary is killed while blocks over 1 MB are in flight.
// In the CI set (about 100 s here).
// The genesis caps blocks at 1.1 MB (so the consensus frame limit, block cap + 4 MiB, is 5.2 MiB);
// the load fills blocks with 31.6 KB txs (the largest args a service accepts) to ~1 MB, and the kill
// comes just before a checkpoint, so a VIEW-CHANGE must account for ~7 large prepared blocks (~7 MB,
// more than the frame limit, as in the issue at the node's defaults: 16 x 1.25 MB against 12 MiB). The three
// others must change view and commit again within 30 s of the restart, keep admitting txs, and lose
// nothing.
// test lane: alone
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { testSeed } from '@cityledger/core/testing'
import { assertClean } from './report.ts'
import { runScenario } from './scenario.ts'

const seed = testSeed(707)
const K = 8

test(`SIGKILL of the primary with ~7 blocks of ~1 MB above the stable checkpoint: the others change view and commit again within 30 s (SEED=${seed})`, async () => {
  const r = await runScenario(
    {
      name: 'primary-crash-large-blocks',
      seed,
      validators: 4,
      // ~13 agreement drafts of 31.6 KB a second (and ballots): a block every 2.5 s holds ~1 MB
      // (decoding one costs a node ~13 ms: this is what two shared cores sustain).
      rate: 15,
      largeTxs: 260,
      maxInFlight: 96,
      loadMs: 40_000,
      // The block interval must stay below the view-change timeout (or backups time out waiting).
      consensus: {
        checkpointInterval: K,
        maxBlockBytes: 1_100_000,
        blockIntervalMs: 2500,
        viewChangeTimeoutMs: 5000,
      },
      // Down for longer than the view-change timeout: the three others must change view without it.
      // Not before 16 s of load: the blocks since the last checkpoint must be the full ones (at 2 s the
      // kill came before the load filled any block, 2026-12-01).
      schedule: [
        {
          at: 16_000,
          fault: { kind: 'kill', node: 'primary', downMs: 7_000, atHeight: { mod: K, rem: K - 1 } },
        },
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
    window.filter((b) => b > 0.9e6).length >= 5,
    `at least 5 blocks over 0.9 MB above the stable checkpoint when the primary was killed (got ${window.join(', ')})`,
  )
})

test.run()
