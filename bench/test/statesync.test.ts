import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { checkCommon, runCli } from './helpers.ts'

test('statesync: a small chain is state-synced and replayed, both measured, the synced store checked', async () => {
  const r = await runCli(['statesync', '--keys', '20000', '--blocks', '4'])
  checkCommon(r, 'statesync')
  const s = r.variants.stateSync as Record<string, number>
  const p = r.variants.replay as Record<string, number>
  assert.is(s.height, 5, 'the offer: the head (4 blocks + 2 empty) minus one')
  assert.ok(s.ms > 0 && s.bytes > s.pageBytes && s.pages > 1000 && s.requests > 10, JSON.stringify(s))
  assert.ok(p.ms > 0 && p.bytes > 20000 * 100 && p.blocks === 6, JSON.stringify(p))
  for (const k of ['replayOverStateSyncTime', 'replayOverStateSyncBytes']) assert.ok(r.ratios[k]! > 0, k)
})

test.run()
