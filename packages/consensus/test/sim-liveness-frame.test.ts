import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { LIMITS } from '@cityledger/core'
import { testSeed } from '@cityledger/core/testing'
import { NODE_LIMITS, PROFILES, type SimResult, runSimulation } from '@cityledger/consensus'
import { DEFAULT_CONSENSUS } from '../../node/src/config/genesis.ts'

// Issue #10, case 1: with the node's defaults (K=16, L=64, 3 s timeouts) and blocks of ~1.25 MB, the
// primary crashes for good once 28 heights are committed (12 prepared certificates above the stable
// checkpoint at 16). The three others must leave the view change and commit again: every consensus
// message must fit in the p2p frame limit (12 MiB; p2p refuses to send a larger one, the simulated
// network drops it) whatever the block size.
const SEED = testSeed(1)

function report(r: SimResult): string {
  const v = r.violations.map((x) => `${x.kind}: ${x.message}`).join('\n')
  return `seed ${r.seed}: ${v || 'no violation'}; largest honest message ${r.maxMessageBytes} bytes, oversize drops ${r.faultsInjected.oversizeDrops ?? 0}`
}

test('the node profile and limits are the node defaults', () => {
  assert.is(NODE_LIMITS.maxBlockBytes, DEFAULT_CONSENSUS.maxBlockBytes)
  assert.is(NODE_LIMITS.blockIntervalMs, DEFAULT_CONSENSUS.blockIntervalMs)
  assert.is(NODE_LIMITS.consensusFrameBytes, DEFAULT_CONSENSUS.maxBlockBytes + LIMITS.maxConsensusBytes)
  assert.is(PROFILES.node.checkpointInterval, DEFAULT_CONSENSUS.checkpointInterval)
  assert.is(PROFILES.node.windowSize, DEFAULT_CONSENSUS.watermarkWindow)
  assert.is(PROFILES.node.viewTimeoutMs, DEFAULT_CONSENSUS.viewChangeTimeoutMs)
})

// The faulty period (no network fault here) ends after the crash, so the liveness bound runs from it.
for (const [blockBytes, atHeight, faultPhaseMs] of [
  [1_250_000, 28, 12_000],
  [NODE_LIMITS.maxBlockBytes, 19, 30_000],
] as const) {
  test(`case 1, seed ${SEED}: primary down for good at height ${atHeight}, ${blockBytes}-byte blocks, node defaults: the rest commit again`, () => {
    const r = runSimulation({
      seed: SEED,
      n: 4,
      profile: 'node',
      faults: [],
      blockBytes,
      downForever: [{ validator: 0, atHeight }],
      faultPhaseMs,
    })
    assert.is(r.faultsInjected.crashForever, 1, 'the primary crashed')
    assert.ok((r.faultsInjected.bigBlocks ?? 0) >= atHeight, 'big blocks were proposed')
    assert.is(r.violations.length, 0, report(r))
    assert.ok(r.maxMessageBytes <= NODE_LIMITS.consensusFrameBytes, report(r))
    assert.is(r.faultsInjected.oversizeDrops ?? 0, 0, report(r))
    // 2K+1 heights after the crash (the crash happened before the heal: 2K+1 after the heal are more).
    assert.ok(
      r.committedHeights.min >= atHeight + 2 * 16 + 1,
      `min height ${r.committedHeights.min}: ${report(r)}`,
    )
  })
}

test.run()
