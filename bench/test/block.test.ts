import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { checkCommon, checkFigures, runCli } from './helpers.ts'

test('block: cold and warm blocks of the city workload commit with no failed tx', async () => {
  const r = await runCli([
    'block',
    '--sizes',
    '100,300',
    '--signers',
    '200',
    '--rounds',
    '2',
    '--warmup',
    '0',
  ])
  checkCommon(r, 'block')
  checkFigures(r.variants['pool-verify'], 2, 'pool-verify')
  for (const size of [100, 300])
    for (const mode of ['cold', 'warm']) {
      const v = r.variants[`${mode}-${size}`] as Record<string, any>
      assert.ok(v, `${mode}-${size}`)
      checkFigures(v.txPerSec, 2, `${mode}-${size}.txPerSec`)
      for (const p of ['decode', 'verify', 'execute', 'commit'])
        assert.ok(v.phasesMs[p] >= 0, `${mode}-${size}.${p}`)
      assert.is(v.failed, 0, `${mode}-${size}: failed txs ${JSON.stringify(v.failures)}`)
      assert.ok(v.outsideSignatures >= 0 && v.outsideSignatures <= 1)
      assert.ok(v.executeCpuUsPerTx > 0, `${mode}-${size}: execute CPU per tx reported`)
    }
  // Warm blocks were admitted through the mempool: validation checked no signature.
  assert.is((r.variants['warm-300'] as Record<string, any>).outsideSignatures, 1)
  for (const k of [
    'pipelineVsVerifyCeiling',
    'outsideSignatureShare',
    'pipelineVsVerifyCeiling_100',
    'warmPipelineVsVerifyCeiling_300',
  ])
    assert.ok(k in r.ratios, k)
})

test('block --sandbox: the services run in SES Compartments and the same workload commits with no failed tx', async () => {
  const r = await runCli([
    'block',
    '--sizes',
    '100',
    '--signers',
    '100',
    '--rounds',
    '1',
    '--warmup',
    '0',
    '--sandbox',
  ])
  checkCommon(r, 'block')
  assert.is((r.params as Record<string, unknown>).sandbox, true)
  for (const mode of ['cold', 'warm']) {
    const v = r.variants[`${mode}-100`] as Record<string, any>
    assert.is(v.failed, 0, `${mode}-100: failed txs ${JSON.stringify(v.failures)}`)
    assert.ok(v.executeCpuUsPerTx > 0)
  }
})

test.run()
