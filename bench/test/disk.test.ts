import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { checkCommon, runCli } from './helpers.ts'

// Structure and invariants only: disk figures are reported, never asserted (they depend on LevelDB's
// file layout and, for the real network, on the machine's pacing).
test('disk: idle and loaded chains, archive and pruned, on LevelDB; per-day figures; a real idle network', async () => {
  const r = await runCli([
    'disk',
    '--idle-blocks',
    '200',
    '--loaded-blocks',
    '140',
    '--retain',
    '8',
    '--rate',
    '25',
    '--signers',
    '100',
    '--network-seconds',
    '2',
  ])
  checkCommon(r, 'disk')
  const v = r.variants as Record<string, any>
  for (const name of ['idle-archive', 'idle-pruned', 'loaded-archive', 'loaded-pruned']) {
    const x = v[name]
    assert.ok(x, name)
    assert.ok(x.endBytes > 0 && x.startBytes > 0, `${name}: folder sizes`)
    assert.ok(Number.isFinite(x.bytesPerBlock), `${name}: bytes per block`)
    assert.is(x.txsPerBlock, name.startsWith('idle') ? 0 : 5, `${name}: txs per block = rate * 200 ms`)
    assert.type(x.rawBytesPerBlock, 'object')
  }
  // Pruning keeps retainBlocks (the final prune) and never more than the archive.
  assert.is(v['idle-pruned'].blocksKept, 8)
  assert.is(v['loaded-pruned'].blocksKept, 8)
  assert.is(v['idle-archive'].blocksKept, 200)
  assert.ok(v['loaded-pruned'].endBytes < v['loaded-archive'].endBytes)
  // An archive chain keeps every block and certificate.
  assert.ok(
    v['idle-archive'].rawBytesPerBlock.block > 0 && v['idle-archive'].rawBytesPerBlock.certificate > 0,
  )
  const day = v.perDay
  assert.is(day['idle, emptyBlocks true'].blocksPerDay, 86_400)
  assert.is(day['idle, emptyBlocks false'].blocksPerDay, 2_880)
  assert.is(day.loaded.blocksPerDay, 432_000)
  for (const k of ['network-emptyBlocks-true', 'network-emptyBlocks-false']) {
    const n = v.network[k]
    assert.is(n.views.length, 4, `${k}: four validators`)
    assert.ok(
      n.heights.every((h: number) => h >= 1),
      `${k}: every validator committed block 1`,
    )
    assert.ok(
      n.folderBytes.every((b: number) => b > 0),
      `${k}: folders measured`,
    )
  }
  assert.ok('idleEmptyBlocksOffVsOn' in r.ratios)
})

test.run()
