import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { checkCommon, checkFigures, runCli } from './helpers.ts'

test('verify: every variant measured, ratios from the same run', async () => {
  const r = await runCli([
    'verify',
    '--count',
    '400',
    '--signers',
    '50',
    '--noble',
    '40',
    '--rounds',
    '2',
    '--warmup',
    '0',
  ])
  checkCommon(r, 'verify')
  for (const v of ['noble', 'native', 'native-pool', 'openssl-raw', 'sodium-raw'])
    checkFigures(r.variants[v], 2, v)
  assert.equal(Object.keys(r.ratios).sort(), ['nativeVsNoble', 'nativeVsRaw', 'poolVsRaw'])
  const f = (v: string) => (r.variants[v] as { median: number }).median
  const raw = Math.max(f('openssl-raw'), f('sodium-raw'))
  assert.ok(
    Math.abs(r.ratios.poolVsRaw! - f('native-pool') / raw) < 0.01,
    'poolVsRaw = pool / faster raw loop',
  )
  assert.ok(Math.abs(r.ratios.nativeVsNoble! - f('native') / f('noble')) < 0.01 * r.ratios.nativeVsNoble!)
  assert.type(r.targets?.poolVsRaw?.met, 'boolean')
})

test.run()
