// The state layer's fast paths (issue #14): committed reads cached for has() as for get(), written
// values kept as private copies, and the block's writes hex-encoded through one scratch buffer.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Layer, type StateReader, type Value, encode, privateCopy, snapshot } from '@cityledger/core'

function countingReader(entries: Record<string, Value>): StateReader & { reads: string[] } {
  const reads: string[] = []
  return {
    reads,
    get(key) {
      const k = Buffer.from(key).toString('utf8')
      reads.push(k)
      return Object.hasOwn(entries, k) ? encode(entries[k]!) : undefined
    },
  }
}

test('has() and get() read each committed key from the store once per block', () => {
  const base = countingReader({ 'svc/role': { admin: true } })
  const root = new Layer(base)
  for (let tx = 0; tx < 3; tx++) {
    const layer = root.child()
    assert.ok(layer.has('svc/role'))
    assert.not.ok(layer.has('svc/revoked'))
    assert.equal(layer.get('svc/role'), { admin: true })
    assert.is(layer.get('svc/revoked'), undefined)
    layer.commit()
  }
  assert.equal(base.reads.sort(), ['svc/revoked', 'svc/role'])
  // A write is seen by has() over the cached committed answer, and a delete too.
  root.set('svc/revoked', 1)
  root.delete('svc/role')
  assert.ok(root.has('svc/revoked'))
  assert.not.ok(root.has('svc/role'))
})

test('a written value is a private copy: edits to the original or to what get() returns change nothing', () => {
  const root = new Layer(countingReader({}))
  const v = { list: [1, 2], bytes: new Uint8Array([7]) }
  root.set('svc/k', v)
  v.list.push(3)
  v.bytes[0] = 9
  const read = root.get('svc/k') as { list: number[]; bytes: Uint8Array }
  read.list.push(4)
  read.bytes[0] = 8
  assert.equal(root.get('svc/k'), { list: [1, 2], bytes: new Uint8Array([7]) })
  assert.equal([...root.collect().values()], [encode({ list: [1, 2], bytes: new Uint8Array([7]) })])
})

test('privateCopy checks what snapshot checks, and only snapshot freezes', () => {
  for (const bad of [1.5, undefined, () => 1, new Date(0), Number.NaN, { a: [2 ** 60] }]) {
    assert.throws(() => privateCopy(bad), TypeError)
    assert.throws(() => snapshot(bad), TypeError)
  }
  const v = { a: [1, { b: 'x' }] }
  assert.equal(privateCopy(v), snapshot(v))
  assert.not.ok(Object.isFrozen(privateCopy(v).value))
  assert.ok(Object.isFrozen(snapshot(v).value))
  assert.ok(Object.isFrozen((snapshot(v).value as { a: Value[] }).a))
})

test('collect() hex-encodes the UTF-8 bytes of every key, ASCII or not, up to the longest key', () => {
  const root = new Layer(countingReader({}))
  const keys = ['svc/a', 'svc/서울/시청', 'svc/😀', `svc/${'가'.repeat(500)}`, 'svc/é'.repeat(100)]
  for (const k of keys) root.set(k, 1)
  root.delete('svc/gone')
  const out = root.collect()
  assert.equal(
    [...out.keys()],
    [...keys, 'svc/gone'].map((k) => Buffer.from(k, 'utf8').toString('hex')),
  )
  assert.is(out.get(Buffer.from('svc/gone').toString('hex')), null)
})

test.run()
