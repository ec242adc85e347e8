// The mapping from the runtime's validator-change records to the consensus schedule (schedule.ts), and
// the p2p allow list it gives (epochReplicas.ts allowedValidators).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type ValidatorChange, generateKeyPair, toHex } from '@cityledger/core'
import { epochAt, lastHeightOf } from '@cityledger/consensus'
import { seedFor } from '@cityledger/core/testing'
import { allowedValidators } from '../src/node/epochReplicas.ts'
import { extendSchedule, genesisChainSchedule } from '../src/node/schedule.ts'

const keys = [0, 1, 2, 3, 4, 5].map((i) => generateKeyPair(seedFor(`schedule-${i}`)).publicKey)
const K = 8
const genesis = genesisChainSchedule(keys.slice(0, 4), K)
const rec = (seq: number, executedAt: number, height: number, set: number[]): ValidatorChange => ({
  seq,
  executedAt,
  height,
  keys: set.map((i) => keys[i]!),
})
const hex = (set: number[]) => set.map((i) => toHex(keys[i]!)).sort()

test('a record becomes the epoch after the first boundary at or after the height asked for', () => {
  // Asked for 21, executed at 5: the old set signs ..24, the new one from 25.
  const s = extendSchedule(genesis, [rec(1, 5, 21, [0, 1, 2, 3, 4])])
  assert.is(s.seq, 1)
  assert.is(s.schedule.epochs.length, 2)
  assert.is(s.schedule.epochs[1]!.firstHeight, 25)
  assert.is(lastHeightOf(s.schedule, 0), 24)
  assert.is(epochAt(s.schedule, 24).epoch, 0)
  assert.is(epochAt(s.schedule, 25).validators.length, 5)
  // Asked for 16 (a boundary): x = 15, the end is 16 and the new set signs from 17. Asked for 17: x = 16
  // is a boundary, and activation is strictly after it, so the end is 24 (never before the height asked).
  assert.is(extendSchedule(genesis, [rec(1, 3, 16, [0, 1, 2])]).schedule.epochs[1]!.firstHeight, 17)
  assert.is(extendSchedule(genesis, [rec(1, 3, 17, [0, 1, 2])]).schedule.epochs[1]!.firstHeight, 25)
  // Asked for the block right after it: the next boundary after the execution height.
  assert.is(extendSchedule(genesis, [rec(1, 9, 10, [0, 1, 2])]).schedule.epochs[1]!.firstHeight, 17)
})

test('a change executed while another is pending waits for it instead of being refused', () => {
  // The first starts at 25; the second, executed at 12 and asking for 14, starts after the boundary
  // following 25 (the pending epoch's first height): 33.
  const s = extendSchedule(genesis, [rec(1, 5, 21, [0, 1, 2, 3, 4]), rec(2, 12, 14, [0, 1, 2, 4])])
  assert.equal(
    s.schedule.epochs.map((e) => e.firstHeight),
    [1, 25, 33],
  )
  assert.is(lastHeightOf(s.schedule, 1), 32)
})

test('records already included are skipped; a gap is a broken invariant', () => {
  const one = extendSchedule(genesis, [rec(1, 5, 21, [0, 1, 2, 3, 4])])
  const again = extendSchedule(one, [rec(1, 5, 21, [0, 1, 2, 3, 4]), rec(2, 30, 40, [1, 2, 3, 4])])
  assert.is(again.seq, 2)
  assert.is(again.schedule.epochs.length, 3)
  assert.is(again.schedule.epochs[2]!.firstHeight, 41)
  assert.throws(() => extendSchedule(genesis, [rec(2, 5, 21, [0, 1])]), /follows 0/)
  // The same records give the same schedule (every node maps them alike).
  assert.equal(extendSchedule(genesis, [rec(1, 5, 21, [0, 1, 2, 3, 4])]), one)
})

test('the allow list: the current set and the announced ones; a leaver is dropped after its last height', () => {
  const s = extendSchedule(genesis, [rec(1, 5, 21, [0, 1, 2, 3, 4]), rec(2, 30, 40, [0, 1, 2, 4])]).schedule
  assert.equal(
    allowedValidators(genesisChainSchedule(keys.slice(0, 4), K).schedule, 3).sort(),
    hex([0, 1, 2, 3]),
  )
  // Both changes announced at 30: the joiner (4) is let in before its epoch starts.
  assert.equal(allowedValidators(s, 30).sort(), hex([0, 1, 2, 3, 4]))
  // At 40 (the end of epoch 1) the next height is epoch 2's: 3 is gone.
  assert.equal(allowedValidators(s, 39).sort(), hex([0, 1, 2, 3, 4]))
  assert.equal(allowedValidators(s, 40).sort(), hex([0, 1, 2, 4]))
})

test.run()
