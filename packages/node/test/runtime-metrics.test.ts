import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ServiceError, defineService } from '@cityledger/core'
import { createTestChain } from '@cityledger/core/testing'
import { Registry } from 'prom-client'
import { registerRuntimeMetrics } from '../src/node/runtimeMetrics.ts'

test('end-of-block hook failures reach the node metrics, by service and kind', async () => {
  const bad = defineService({
    name: 'bad',
    version: '1.0.0',
    methods: {},
    endBlock() {
      throw new ServiceError('BROKEN', 'always')
    },
  })
  const chain = createTestChain({ services: [bad], onBug: () => {} })
  const registry = new Registry()
  registerRuntimeMetrics(registry, chain.runtime)
  chain.advance(4)
  const text = await registry.metrics()
  assert.match(text, /cityledger_service_endblock_failures\{service="bad",kind="hook"\} 3/)
  assert.match(text, /cityledger_service_endblock_failures\{service="bad",kind="halted"\} 1/)
})

test.run()
