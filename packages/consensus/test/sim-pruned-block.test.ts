import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { runSimulation } from '@cityledger/consensus'

// The 20,000-seed sweep (n = 4) reported a liveness violation at seed 13956: validator 0 proposed
// block D at height 2 in view 0; validators 2 and 3 accepted it and sent PREPAREs, so a prepared
// certificate for D existed. Validator 0 then went down for good. After two view changes the NEW-VIEW
// re-proposed D by digest, but 2 and 3 had dropped D's bytes when they pruned view 0 (they were not
// prepared themselves, and only their own prepared certificate kept a block), so every BLOCK-REQUEST
// for D was answered "no block" and the three live replicas stayed at height 1 for good. A replica now
// keeps the block of every proposal it voted PREPARE for until the height commits (bounded per height).
test('a block this replica voted for survives view pruning: a re-proposal by digest can be fetched (n=4, seed 13956)', () => {
  const r = runSimulation({ seed: 13956, n: 4 })
  assert.equal(
    r.violations.map((v) => `${v.kind}: ${v.message}`),
    [],
  )
  assert.ok(r.downForever.includes(0), 'the proposer of the lost block is down for good')
  assert.ok(r.committedHeights.min >= 11, `live replicas moved on (min height ${r.committedHeights.min})`)
})

test.run()
