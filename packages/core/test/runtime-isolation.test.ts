import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ServiceError, type TxContext, type Value, defineService, s } from '@cityledger/core'
import { createTestChain } from '@cityledger/core/testing'

// Nothing leaks from a failed tx or call: values read never alias stored state (byte arrays included).

const vault = defineService({
  name: 'vault',
  version: '1.0.0',
  dependencies: ['keeper'],
  methods: {
    put: {
      args: s.object({}),
      handler(ctx) {
        ctx.state.set('rec', { tag: new Uint8Array([1, 2, 3]), n: 1 })
      },
    },
    // Edits what it read in place (bytes and a number), then fails.
    scribble: {
      args: s.object({}),
      handler(ctx) {
        const rec = ctx.state.get<{ tag: Uint8Array; n: number }>('rec')!
        rec.tag[0] = 9
        throw new ServiceError('NOPE', 'fails after editing in place')
      },
    },
    // Writes, then edits the written object and the emitted bytes afterwards (and succeeds).
    editAfter: {
      args: s.object({}),
      handler(ctx) {
        const tag = new Uint8Array([5, 5])
        const rec = { tag, n: 5 }
        ctx.state.set('after', rec)
        ctx.emit('tagged', { tag })
        tag[0] = 7
        rec.tag[1] = 7
      },
    },
    read: {
      args: s.object({ key: s.string() }),
      handler(ctx, { key }) {
        ctx.emit('value', ctx.state.get(key) ?? null)
      },
    },
    // Edits the bytes an export returned, then fails: the keeper's state must not change.
    pokeKeeper: {
      args: s.object({ fail: s.bool() }),
      handler(ctx, { fail }) {
        const got = ctx.call<{ secret: Uint8Array }>('keeper', 'get', {})
        got.secret[0] = 42
        if (fail) throw new ServiceError('NOPE', 'fails after editing the result')
      },
    },
    // Hands the keeper bytes, then edits them after the call: the keeper keeps what it was given.
    giveKeeper: {
      args: s.object({}),
      handler(ctx) {
        const b = new Uint8Array([8, 8])
        ctx.call('keeper', 'store', { b })
        b[0] = 0
      },
    },
  },
})

const keeper = defineService({
  name: 'keeper',
  version: '1.0.0',
  methods: {
    init: {
      args: s.object({}),
      handler(ctx) {
        ctx.state.set('secret', new Uint8Array([1, 1]))
      },
    },
  },
  exports: {
    get(ctx: TxContext): Value {
      return { secret: ctx.state.get<Uint8Array>('secret')! }
    },
    store(ctx: TxContext, args: { b: Uint8Array }): void {
      ctx.state.set('given', args.b)
      ctx.emit('stored', { b: args.b })
    },
  },
  queries: {
    secret: { args: s.object({ key: s.string() }), handler: (q, { key }) => q.state.get(key) ?? null },
  },
})

const bytesOf = (v: Value | undefined) => [...(v as Uint8Array)]

test('an in-place edit of bytes read back in the same block does not survive the failed tx', () => {
  const c = createTestChain({ services: [vault, keeper] })
  const k = c.keys('a')
  const r = c.block([
    { key: k, service: 'vault', method: 'put', args: {} },
    { key: k, service: 'vault', method: 'scribble', args: {} },
    { key: k, service: 'vault', method: 'read', args: { key: 'rec' } },
  ])
  assert.is(r[1]!.code, 'NOPE')
  const seen = r[2]!.events[0]!.data as { tag: Uint8Array; n: number }
  assert.equal(bytesOf(seen.tag), [1, 2, 3], 'the failed tx edited the stored bytes')
  const stored = c.state().get('vault/rec') as { tag: Uint8Array; n: number }
  assert.equal(bytesOf(stored.tag), [1, 2, 3])
})

test('an in-place edit of bytes read from committed state does not survive the failed tx', () => {
  const c = createTestChain({ services: [vault, keeper] })
  const k = c.keys('a')
  c.tx(k, 'vault', 'put', {})
  const r = c.block([
    { key: k, service: 'vault', method: 'scribble', args: {} },
    { key: k, service: 'vault', method: 'read', args: { key: 'rec' } },
  ])
  assert.is(r[0]!.code, 'NOPE')
  assert.equal(bytesOf((r[1]!.events[0]!.data as { tag: Uint8Array }).tag), [1, 2, 3])
})

test('edits after set and emit change neither the stored value nor the event', () => {
  const c = createTestChain({ services: [vault, keeper] })
  const k = c.keys('a')
  const r = c.block([
    { key: k, service: 'vault', method: 'editAfter', args: {} },
    { key: k, service: 'vault', method: 'read', args: { key: 'after' } },
  ])
  assert.is(r[0]!.code, null)
  assert.equal(bytesOf((r[0]!.events[0]!.data as { tag: Uint8Array }).tag), [5, 5])
  const seen = r[1]!.events[0]!.data as { tag: Uint8Array; n: number }
  assert.equal(bytesOf(seen.tag), [5, 5])
})

test("editing an export's result or args never reaches the callee's state", () => {
  const c = createTestChain({ services: [vault, keeper] })
  const k = c.keys('a')
  const r = c.block([
    { key: k, service: 'keeper', method: 'init', args: {} },
    { key: k, service: 'vault', method: 'pokeKeeper', args: { fail: true } },
    { key: k, service: 'vault', method: 'pokeKeeper', args: { fail: false } },
    { key: k, service: 'vault', method: 'giveKeeper', args: {} },
  ])
  assert.equal(
    r.map((x) => x.code),
    [null, 'NOPE', null, null],
  )
  assert.equal(bytesOf(c.state().get('keeper/secret')), [1, 1])
  assert.equal(bytesOf(c.state().get('keeper/given')), [8, 8])
  assert.equal(bytesOf((r[3]!.events[0]!.data as { b: Uint8Array }).b), [8, 8])
})

test.run()
