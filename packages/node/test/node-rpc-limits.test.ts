// The RPC bounds as a node runs them: the config's defaults and fields reach the server (createNode
// wires them), so a flooding client is limited and other clients are still admitted.
import { generateKeyPair } from '@cityledger/core'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { DEFAULT_CONFIG } from '../src/config/index.ts'
import { callFrom, startLocalNode, subjectTx } from './nodeHarness.ts'

test('default config: a client flooding the node gets 429 with retry-after; another is admitted meanwhile', async () => {
  assert.ok(DEFAULT_CONFIG.rpc.rateLimitPerSecond > 0, 'rate limited by default')
  const n = await startLocalNode()
  try {
    const key = generateKeyPair()
    const flood = Array.from({ length: 1000 }, () => callFrom(n.url, '127.0.0.2', '/v1/status'))
    const txs = Array.from({ length: 5 }, (_, i) =>
      callFrom(n.url, '127.0.0.3', '/v1/txs', {
        method: 'POST',
        body: subjectTx(n.chainId, key, i + 1, 'limits').bytes,
      }),
    )
    const flooded = await Promise.all(flood)
    const limited = flooded.filter((r) => r.status === 429)
    assert.ok(limited.length > 0, 'some of the flood was refused')
    assert.ok(flooded.filter((r) => r.status === 200).length >= DEFAULT_CONFIG.rpc.rateLimitBurst)
    assert.is(limited.length + flooded.filter((r) => r.status === 200).length, 1000)
    for (const r of limited) {
      assert.is(r.body.error.code, 'RATE_LIMITED')
      assert.ok(Number(r.headers['retry-after']) >= 1)
    }
    for (const [i, r] of (await Promise.all(txs)).entries())
      assert.is(r.status, 202, `tx ${i} from the well-behaved client: ${JSON.stringify(r.body)}`)
    // Monitoring stays open to the flooder's address.
    assert.is((await callFrom(n.url, '127.0.0.2', '/v1/health')).status, 200)
  } finally {
    await n.close()
  }
})

test('config rpc.maxEventSubscribers caps the event streams of a node (503 TOO_MANY_SUBSCRIBERS)', async () => {
  const n = await startLocalNode((cfg) => {
    cfg.rpc.maxEventSubscribers = 2
  })
  const ac = new AbortController()
  try {
    for (let i = 0; i < 2; i++)
      assert.is((await fetch(`${n.url}/v1/events`, { signal: ac.signal })).status, 200)
    const r = await fetch(`${n.url}/v1/events`)
    assert.is(r.status, 503)
    assert.is(((await r.json()) as any).error.code, 'TOO_MANY_SUBSCRIBERS')
  } finally {
    ac.abort()
    await n.close()
  }
})

test.run()
