import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { checkCommon, checkFigures, runCli } from './helpers.ts'

test('network: 4 validator processes commit an open-loop load; latency, CPU and memory per node', async () => {
  const r = await runCli([
    'network',
    '--validators',
    '4',
    '--rate',
    '100',
    '--seconds',
    '3',
    '--signers',
    '200',
    '--rounds',
    '1',
    '--warmup',
    '0',
  ])
  checkCommon(r, 'network')
  checkFigures(r.variants['pool-verify'], 1, 'pool-verify')
  const s = r.variants['rate-100'] as Record<string, any>
  assert.is(s.submitted, 300)
  assert.ok(
    s.committed > 0,
    `committed ${s.committed} of ${s.accepted} accepted (rejected ${JSON.stringify(s.rejected)})`,
  )
  assert.ok(s.latencyMs.p50 <= s.latencyMs.p90 && s.latencyMs.p90 <= s.latencyMs.p99)
  assert.is(s.nodes.length, 4)
  for (const n of s.nodes) assert.ok(n.rssMiB > 0, 'RSS read from /proc')
  assert.type(s.viewChanges, 'number')
  assert.ok('committedVsCeiling' in r.ratios)
})

test.run()
