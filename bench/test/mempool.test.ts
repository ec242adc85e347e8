import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { checkCommon, checkFigures, runCli } from './helpers.ts'

test('mempool: admission, reap and update figures, memory held', async () => {
  const r = await runCli([
    'mempool',
    '--txs',
    '2000',
    '--signers',
    '200',
    '--block',
    '500',
    '--rounds',
    '2',
    '--warmup',
    '0',
  ])
  checkCommon(r, 'mempool')
  checkFigures(r.variants.admission, 2, 'admission')
  checkFigures(r.variants.reap, 4, 'reap (one figure per reaped block)')
  checkFigures(r.variants.update, 4, 'update')
  const mem = r.variants.memory as { bytes: number; bytesPerTx: number }
  assert.type(mem.bytes, 'number')
  assert.ok('reapVsAdmission' in r.ratios && 'drainVsAdmission' in r.ratios)
})

test.run()
