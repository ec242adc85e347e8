import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { testSeed } from '@cityledger/core/testing'
import { type SimResult, runSimulation } from '@cityledger/consensus'

// Issue #10, case 3: a Byzantine validator replays one signed STATUS many times, claims height 0, and
// claims huge heights (2^53-1, 2^40+7, 2^32) and views. Honest replicas must not answer every copy
// (at most 3 answers per peer per retransmission period: the `amplification` property), must never
// ask their node to sync towards a height no replica committed (the `sync` property), and stay live.
// The same for a validator whose forged VIEW-CHANGEs must not be answered with a NEW-VIEW.
const FIRST = testSeed(1)

function report(r: SimResult): string {
  const kinds: Record<string, number> = {}
  for (const v of r.violations) kinds[v.kind] = (kinds[v.kind] ?? 0) + 1
  const first = new Map(r.violations.map((v) => [v.kind, v.message]))
  return `${JSON.stringify(kinds)}\n${[...first.entries()].map(([k, m]) => `${k}: ${m}`).join('\n')}`
}

test(`case 3: lying STATUS from validator 3 (n=4), seeds ${FIRST}..${FIRST + 5}`, () => {
  const lies: Record<string, number> = {}
  for (let seed = FIRST; seed < FIRST + 6; seed++) {
    const r = runSimulation({
      seed,
      n: 4,
      faults: [],
      byzantineSpec: [{ validator: 3, behaviors: ['lyingStatus'] }],
      stopOnViolation: false,
    })
    for (const [k, v] of Object.entries(r.faultsInjected))
      if (k.startsWith('lie:')) lies[k] = (lies[k] ?? 0) + v!
    assert.is(r.violations.length, 0, report(r))
  }
  for (const k of ['statusReplay', 'statusHeightZero', 'statusHugeHeight'])
    assert.ok((lies[`lie:${k}`] ?? 0) > 0, `the lie ${k} was told`)
})

test(`case 3: lying STATUS from two validators (n=7), seeds ${FIRST}..${FIRST + 2}`, () => {
  for (let seed = FIRST; seed < FIRST + 3; seed++) {
    const r = runSimulation({
      seed,
      n: 7,
      faults: ['loss', 'delay'],
      allFaults: true,
      byzantineSpec: [
        { validator: 2, behaviors: ['lyingStatus'] },
        { validator: 5, behaviors: ['lyingStatus', 'lyingViewChange'] },
      ],
      stopOnViolation: false,
    })
    assert.is(r.violations.length, 0, report(r))
  }
})

test(`case 3: forged and replayed VIEW-CHANGEs get no answer (n=4), seeds ${FIRST}..${FIRST + 5}`, () => {
  let forged = 0
  for (let seed = FIRST; seed < FIRST + 6; seed++) {
    const r = runSimulation({
      seed,
      n: 4,
      faults: ['partition'],
      allFaults: true,
      byzantineSpec: [{ validator: 2, behaviors: ['lyingViewChange'] }],
      stopOnViolation: false,
    })
    forged += r.faultsInjected['lie:viewChangeForged'] ?? 0
    assert.is(r.violations.length, 0, report(r))
  }
  assert.ok(forged > 0, 'forged VIEW-CHANGEs were sent')
})

test.run()
