import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { BlockBudget } from '../src/node/blockBudget.ts'

// A model machine: a round costs `fixedMs` plus `perTxMs` per tx (issue #14's network under load: a
// 5,000-tx block took longer than the 3 s view timeout on two shared cores). The mempool always holds
// more than a block. The cap must bring rounds under the target and keep blocks as large as that allows.
function drive(b: BlockBudget, fixedMs: number, perTxMs: number, rounds: number) {
  const seen: { txs: number; roundMs: number }[] = []
  for (let i = 0; i < rounds; i++) {
    const txs = b.maxTxs
    const roundMs = fixedMs + perTxMs * txs
    b.observe(txs, roundMs)
    seen.push({ txs, roundMs })
  }
  return seen
}

test('a slow machine: full blocks would take 5.2 s against a 1.4 s target; the cap brings every later round under the target', () => {
  const b = new BlockBudget({ maxTxs: 5000, targetRoundMs: 1400, initialTxs: 5000 })
  const seen = drive(b, 200, 1, 40)
  assert.is(seen[0]!.roundMs, 5200, 'the first round is the full block')
  for (const r of seen.slice(1)) assert.ok(r.roundMs <= 1400, `round ${JSON.stringify(r)} under the target`)
  // Not needlessly small: the best block under the target is 1,200 txs.
  const last = seen.slice(-10)
  assert.ok(Math.min(...last.map((r) => r.txs)) >= 600, `blocks stay large (${last.map((r) => r.txs)})`)
})

test('a fast machine: rounds well under the target grow the cap to the genesis limit and keep it there', () => {
  const b = new BlockBudget({ maxTxs: 5000, targetRoundMs: 1400 })
  assert.is(b.maxTxs, 1000, 'starts below the limit')
  const seen = drive(b, 50, 0.05, 20)
  assert.is(seen.at(-1)!.txs, 5000)
  assert.is(b.maxTxs, 5000)
})

test('never above the genesis limit nor below the floor; nonsense observations change nothing', () => {
  const b = new BlockBudget({ maxTxs: 300, targetRoundMs: 100, minTxs: 20 })
  assert.is(b.maxTxs, 300)
  b.observe(300, 1e9)
  assert.is(b.maxTxs, 20)
  for (const [txs, ms] of [
    [0, 5],
    [-1, 5],
    [10, Number.NaN],
    [10, -3],
    [10, Number.POSITIVE_INFINITY],
  ])
    b.observe(txs!, ms!)
  assert.is(b.maxTxs, 20)
  for (let i = 0; i < 30; i++) b.observe(b.maxTxs, 1)
  assert.is(b.maxTxs, 300)
})

test('blocks smaller than the cap (a quiet mempool) do not grow it', () => {
  const b = new BlockBudget({ maxTxs: 5000, targetRoundMs: 1400, initialTxs: 1000 })
  for (let i = 0; i < 10; i++) b.observe(10, 20)
  assert.is(b.maxTxs, 1000)
})

test.run()
