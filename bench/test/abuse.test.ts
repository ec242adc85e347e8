import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { checkCommon, runCli } from './helpers.ts'

test('abuse: a validator under each attack, next to its baseline; shutdown under the RPC attacks', async () => {
  const r = await runCli([
    'abuse',
    '--seconds',
    '2',
    '--rate',
    '10',
    '--sse',
    '50',
    '--slow-loris',
    '10',
    '--flood-connections',
    '4',
    '--partial-frames',
    '2',
    '--partial-frame-mib',
    '2',
    '--pre-prepares',
    '10',
  ])
  checkCommon(r, 'abuse')
  for (const k of ['baseline', 'sse', 'slowLoris', 'flood', 'partialFrames', 'prePrepares']) {
    const f = r.variants[k] as Record<string, any>
    assert.ok(f, `phase ${k}`)
    assert.ok(f.rssStartMiB > 0 && f.rssMaxMiB >= f.rssStartMiB, `${k}: RSS read from /proc`)
    assert.ok(f.submitted > 0, `${k}: load submitted`)
    assert.type(f.cpuPercent, 'number')
    if (k !== 'baseline') assert.type(f.attack, 'object', `${k}: the attack's own counts`)
  }
  assert.ok((r.variants.baseline as any).committed > 0, 'the baseline commits')
  assert.is((r.variants.sse as any).attack.opened, 50)
  assert.ok((r.variants.flood as any).attack.requests > 0)
  assert.ok((r.variants.shutdown as any).ms > 0)
  for (const k of ['sseRssGrowthMiB', 'floodP99VsBaseline', 'shutdownSeconds'])
    assert.ok(r.targets?.[k], `target ${k} reported`)
})

test.run()
