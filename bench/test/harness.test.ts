import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { figures, fmt, median, quantile, table } from '../src/harness.ts'

test('median and quantiles by nearest rank', () => {
  assert.is(median([3, 1, 2]), 2)
  assert.is(median([4, 1, 3, 2]), 2.5)
  assert.ok(Number.isNaN(median([])))
  const xs = Array.from({ length: 100 }, (_, i) => 100 - i)
  assert.is(quantile(xs, 0.5), 50)
  assert.is(quantile(xs, 0.99), 99)
  assert.is(quantile(xs, 1), 100)
  assert.is(quantile([7], 0.9), 7)
})

test('figures: spread is (max - min) / median', () => {
  const f = figures([90, 100, 110], 1000, 'tx/s')
  assert.is(f.median, 100)
  assert.is(f.min, 90)
  assert.is(f.max, 110)
  assert.ok(Math.abs(f.spread - 0.2) < 1e-12)
  assert.equal(f.rounds, [90, 100, 110])
})

test('table aligns columns under a header rule', () => {
  const lines = table([
    ['variant', 'rate'],
    ['a', 12345],
    ['longer', 7],
  ]).split('\n')
  assert.is(lines.length, 4)
  assert.ok(
    lines.every((l) => l.length === lines[0]!.length),
    'equal widths',
  )
  assert.match(lines[2]!, /12,345$/)
})

test('fmt groups thousands by hand (a locked-down process has no locales)', () => {
  assert.is(fmt(1234567.891, 1), '1,234,567.9')
  assert.is(fmt(999), '999')
  assert.is(fmt(-12345), '-12,345')
  assert.is(fmt(0.5, 2), '0.50')
})

test.run()
