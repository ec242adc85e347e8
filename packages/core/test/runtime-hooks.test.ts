import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ServiceError, type ServiceEvent, defineService, s } from '@cityledger/core'
import { createTestChain } from '@cityledger/core/testing'

// End-of-block hooks cannot stall: a failing hook is recorded (event, state record, counter) and halted
// after 3 consecutive failures; `ctx.attempt` moves a queue past a poison item.

/** A sweep over a queue `q/<n>`; item `poison` always throws. `mode` picks how the hook handles it. */
function sweeper(mode: 'naive' | 'attempt') {
  return defineService({
    name: 'sweep',
    version: '1.0.0',
    methods: {
      push: {
        args: s.object({ item: s.string({ max: 16 }) }),
        handler(ctx, { item }) {
          const n = ctx.state.get<number>('tail') ?? 0
          ctx.state.set(`q/${String(n).padStart(6, '0')}`, item)
          ctx.state.set('tail', n + 1)
        },
      },
    },
    endBlock(ctx) {
      let head = ctx.state.get<number>('head') ?? 0
      const tail = ctx.state.get<number>('tail') ?? 0
      for (; head < tail && head < 10; head++) {
        const key = `q/${String(head).padStart(6, '0')}`
        const run = () => {
          const item = ctx.state.get<string>(key)
          if (item === 'poison') throw new ServiceError('POISON', `item ${head} is poison`)
          ctx.state.set(`done/${item}`, true)
          ctx.state.delete(key)
        }
        if (mode === 'naive') run()
        else ctx.attempt(key, run)
      }
      ctx.state.set('head', head)
    },
  })
}

const named = (events: ServiceEvent[], name: string) => events.filter((e) => e.name === name)

test('a hook that fails every block is halted after 3 failures, on record, and stops retrying', () => {
  const c = createTestChain({ services: [sweeper('naive')], onBug: () => {} })
  const k = c.keys('a')
  c.block([
    { key: k, service: 'sweep', method: 'push', args: { item: 'poison' } },
    { key: k, service: 'sweep', method: 'push', args: { item: 'ok' } },
  ])
  const first = c.lastBlockEvents()
  assert.equal(named(first, 'endBlockFailed')[0]!.data, {
    error: 'POISON: item 0 is poison',
    failures: 1,
    halted: false,
  })
  const later = c.advance(4)
  const failed = named([...first, ...later], 'endBlockFailed').map(
    (e) => (e.data as { failures: number }).failures,
  )
  assert.equal(failed, [1, 2, 3], 'the hook kept retrying after it was halted')
  assert.is(named(later, 'endBlockHalted').length, 1)
  assert.equal(c.state().get('_sys/hook/sweep'), {
    failures: 3,
    halted: true,
    height: 3,
    message: 'POISON: item 0 is poison',
  })
  assert.equal(
    c.runtime.hookStatus({ get: (key) => c.raw().get(Buffer.from(key).toString('hex')) }).sweep?.halted,
    true,
  )
  assert.is(c.runtime.counters.hookFailures.get('sweep'), 3)
  assert.is(c.runtime.counters.halted.get('sweep'), 1)
  // Its writes never landed; the service's methods still work.
  assert.is(c.state().get('sweep/head'), undefined)
  assert.is(c.tx(k, 'sweep', 'push', { item: 'x' }).code, null)
})

test('with ctx.attempt the queue moves past the poison item: the rest is processed, the failure is recorded', () => {
  const c = createTestChain({ services: [sweeper('attempt')], onBug: () => {} })
  const k = c.keys('a')
  c.block(['a', 'poison', 'b'].map((item) => ({ key: k, service: 'sweep', method: 'push', args: { item } })))
  const ev = c.lastBlockEvents()
  assert.equal(named(ev, 'endBlockItemFailed')[0]!.data, {
    item: 'q/000001',
    error: 'POISON: item 1 is poison',
  })
  assert.is(named(ev, 'endBlockFailed').length, 0)
  const st = c.state()
  assert.is(st.get('sweep/done/a'), true)
  assert.is(st.get('sweep/done/b'), true)
  assert.is(st.get('sweep/head'), 3)
  assert.is(st.get('sweep/q/000001'), 'poison', "the failed item's own writes were dropped")
  assert.is(c.runtime.counters.itemFailures.get('sweep'), 1)
  c.advance(2)
  assert.is(named(c.lastBlockEvents(), 'endBlockItemFailed').length, 0, 'the poison item is not retried')
})

test('a hook that recovers clears its failure record', () => {
  let fail = true
  const flaky = defineService({
    name: 'flaky',
    version: '1.0.0',
    methods: {},
    endBlock(ctx) {
      if (fail) throw new ServiceError('FLAKY', 'not yet')
      ctx.state.set('ran', ctx.height)
    },
  })
  const c = createTestChain({ services: [flaky], onBug: () => {} })
  c.advance(2)
  assert.equal((c.state().get('_sys/hook/flaky') as { failures: number }).failures, 2)
  fail = false
  c.advance(1)
  assert.is(c.state().get('_sys/hook/flaky'), undefined)
  assert.is(c.state().get('flaky/ran'), 3)
})

test.run()
