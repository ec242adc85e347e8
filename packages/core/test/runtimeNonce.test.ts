// The executor's nonce rule (issue #10 case 6): a tx runs only with its signer's next nonce (last + 1);
// a gap or a repeat fails the tx without using the nonce, so a Byzantine order cannot kill later txs.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  type Tx,
  createRuntime,
  defineService,
  encode,
  encodeTxBody,
  generateKeyPair,
  s,
  sha256,
  toHex,
} from '@cityledger/core'
import { seedFor } from '@cityledger/core/testing'

const CHAIN = 'nonce-test'
const alice = generateKeyPair(seedFor('nonce-alice'))

const counter = defineService({
  name: 'counter',
  version: '1.0.0',
  methods: {
    add: {
      args: s.object({ by: s.uint({ min: 1, max: 100 }) }),
      handler(ctx, { by }) {
        ctx.state.set('n', (ctx.state.get<number>('n') ?? 0) + by)
      },
    },
  },
})

/** An unsigned tx (the executor does not check signatures; validation did). */
function tx(nonce: number, by = 1): Tx {
  const body = {
    chainId: CHAIN,
    service: 'counter',
    method: 'add',
    args: { by },
    signer: alice.publicKey,
    nonce,
    expiry: 0,
  }
  const bodyBytes = encodeTxBody(body)
  const signature = new Uint8Array(64)
  const bytes = encode([bodyBytes, signature])
  return { body, bodyBytes, signature, bytes, hash: sha256(bytes) }
}

function chain() {
  const runtime = createRuntime({ services: [counter] })
  const state = new Map<string, Uint8Array>()
  const reader = { get: (k: Uint8Array) => state.get(toHex(k)) }
  let height = 0
  const run = (txs: Tx[]) => {
    const out = runtime.executeBlock(reader, { height: ++height, time: 1_000 + height, chainId: CHAIN, txs })
    for (const [k, v] of out.writes) {
      if (v === null) state.delete(k)
      else state.set(k, v)
    }
    return out.results.map((r) => r.code)
  }
  return { run, nonce: () => runtime.committedNonce(reader, alice.publicKey) }
}

test('a nonce after a gap fails without using the nonce', () => {
  const c = chain()
  assert.equal(c.run([tx(1), tx(3), tx(2)]), [null, 'NONCE_GAP', null])
  assert.is(c.nonce(), 2)
  assert.equal(c.run([tx(3)]), [null])
  assert.is(c.nonce(), 3)
})

test('5 ordered before 1 and 2 fails alone; 1 and 2 still run', () => {
  const c = chain()
  assert.equal(c.run([tx(5), tx(1), tx(2)]), ['NONCE_GAP', null, null])
  assert.is(c.nonce(), 2)
})

test('a repeated or already-used nonce fails as too low', () => {
  const c = chain()
  assert.equal(c.run([tx(1), tx(1, 2)]), [null, 'NONCE_TOO_LOW'])
  assert.equal(c.run([tx(1, 3)]), ['NONCE_TOO_LOW'])
  assert.is(c.nonce(), 1)
})

test.run()
