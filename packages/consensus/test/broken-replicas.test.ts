import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { testSeed } from '@cityledger/core/testing'
import { type SimOptions, type ViolationKind, runSimulation } from '@cityledger/consensus'

// Proof that the checks can fail: deliberately broken replicas must be caught within the seeds tried,
// and the same scenarios with the correct replica must stay clean.
const FIRST = testSeed(900)

function hunt(
  opts: Omit<SimOptions, 'seed'>,
  want: ViolationKind[],
  seeds: number,
): { seed: number; kind: ViolationKind; message: string } | undefined {
  for (let seed = FIRST; seed < FIRST + seeds; seed++) {
    const r = runSimulation({ ...opts, seed, stopOnViolation: false })
    const v = r.violations.find((x) => want.includes(x.kind))
    if (v) return { seed, kind: v.kind, message: v.message }
  }
  return undefined
}

function control(opts: Omit<SimOptions, 'seed' | 'bug'>, seeds: number): void {
  for (let seed = FIRST; seed < FIRST + seeds; seed++) {
    const r = runSimulation({ ...opts, seed })
    assert.equal(r.violations, [], `correct replica, seed ${seed}`)
  }
}

test(`a quorum one vote too small lets an equivocating primary split the honest replicas (seeds from ${FIRST})`, () => {
  const opts = { n: 4, faults: ['equivocate', 'reorder'] as const, allFaults: true }
  const found = hunt({ ...opts, bug: { quorumDelta: -1 } }, ['agreement'], 60)
  assert.ok(found, 'no agreement violation found')
  control(opts, 10)
})

test(`votes forgotten across a restart make an honest replica equivocate or disagree (seeds from ${FIRST})`, () => {
  const opts = { n: 4, faults: ['equivocate', 'crash', 'delay'] as const, allFaults: true, crashes: 12 }
  const found = hunt({ ...opts, bug: { forgetVotesOnRestart: true } }, ['agreement', 'equivocation'], 120)
  assert.ok(found, 'no safety violation found')
  control(opts, 10)
})

test(`a NEW-VIEW that ignores prepared certificates loses committed blocks (seeds from ${FIRST})`, () => {
  const opts = { n: 4 }
  const found = hunt({ ...opts, bug: { newViewIgnoresPrepared: true } }, ['agreement'], 200)
  assert.ok(found, 'no agreement violation found')
  control(opts, 10)
})

test.run()
