// test lane: beside the package tests
// The harness's "refusing txs for too long" check (CatchingUpRuns): a run of catching-up answers is one
// process's. A node killed while it was catching up and started again begins a new run; before this,
// the run went on across the kill, the time it was down and its start, and a restart scenario on a
// slow machine reported 39 s "in a row" for a node that caught up within the bound each time.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CatchingUpRuns } from './catchingUp.ts'

test('a run is the longest stretch of catching-up answers from one process', () => {
  const runs = new CatchingUpRuns()
  runs.observe(1, 'a', false, 0)
  runs.observe(1, 'a', true, 1_000)
  runs.observe(1, 'a', true, 5_000)
  runs.observe(1, 'a', false, 6_000)
  runs.observe(1, 'a', true, 7_000)
  runs.observe(1, 'a', true, 9_000)
  assert.equal([...runs.longest()], [[1, 4_000]])
})

test('a kill while catching up ends the run; the restarted process starts a new one', () => {
  const runs = new CatchingUpRuns()
  runs.observe(1, 'first', true, 0)
  runs.observe(1, 'first', true, 12_000)
  // killed at ~12 s, down 4 s, started again and catching up from 25 s to 40 s
  runs.observe(1, 'second', true, 25_000)
  runs.observe(1, 'second', true, 40_000)
  runs.observe(1, 'second', false, 41_000)
  assert.equal([...runs.longest()], [[1, 15_000]])
})

test('nodes are counted apart', () => {
  const runs = new CatchingUpRuns()
  runs.observe(0, 'x', true, 0)
  runs.observe(2, 'y', true, 3_000)
  runs.observe(0, 'x', true, 10_000)
  runs.observe(2, 'y', true, 5_000)
  assert.equal(
    [...runs.longest()].sort((a, b) => a[0] - b[0]),
    [
      [0, 10_000],
      [2, 2_000],
    ],
  )
})

test.run()
