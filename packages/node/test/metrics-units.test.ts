// The metric wrappers createNode puts around its components, each alone: what a one-validator test
// node cannot show (validators missing from certificates, the RPC hook, bounded submit tracking).
import { encodeCertificate, generateKeyPair, openMemoryKv, toHex } from '@cityledger/core'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { LedgerStore } from '../src/chain/ledger.ts'
import {
  createMetrics,
  createSubmitTracker,
  instrumentLedgerStore,
  instrumentVerifier,
  timedKv,
} from '../src/metrics/index.ts'

const metrics = () => createMetrics({ defaults: false })

test('validators missing from a certificate are counted, by validator', async () => {
  const m = metrics()
  const keys = [0, 1, 2, 3].map(() => generateKeyPair())
  const hex = keys.map((k) => toHex(k.publicKey))
  const inner = { commitBlock: async () => new Uint8Array(32) } as unknown as LedgerStore
  const s = instrumentLedgerStore(inner, m, hex)
  const cert = encodeCertificate({
    chainId: 'c',
    view: 0,
    height: 1,
    blockHash: new Uint8Array(32),
    signatures: keys.slice(0, 3).map((k) => ({ validator: k.publicKey, signature: new Uint8Array(64) })),
  })
  for (let i = 0; i < 2; i++)
    await s.commitBlock({ certificate: cert } as unknown as Parameters<LedgerStore['commitBlock']>[0])
  const text = await m.registry.metrics()
  assert.match(text, /^cityledger_consensus_certificate_missing_signers 1$/m)
  assert.match(
    text,
    new RegExp(`^cityledger_consensus_missing_signatures_total\\{validator="${hex[3]}"\\} 2$`, 'm'),
  )
})

test('rpcRequestDone counts by route, method and status', async () => {
  const m = metrics()
  m.rpcRequestDone({ route: '/v1/txs/:hash', method: 'GET', status: 404, seconds: 0.002 })
  m.rpcRequestDone({ route: '/v1/txs/:hash', method: 'GET', status: 404, seconds: 0.003 })
  const text = await m.registry.metrics()
  assert.match(
    text,
    /^cityledger_rpc_requests_total\{route="\/v1\/txs\/:hash",method="GET",status="404"\} 2$/m,
  )
  assert.match(text, /^cityledger_rpc_request_duration_seconds_count\{route="\/v1\/txs\/:hash"\} 2$/m)
})

test('submit-to-commit: only txs submitted here are observed, and the tracker stays bounded', async () => {
  const m = metrics()
  let now = 1000
  const t = createSubmitTracker(m, () => now, 2)
  const h = (n: number) => new Uint8Array(32).fill(n)
  t.submitted(h(1))
  t.submitted(h(2))
  t.submitted(h(3)) // forgets h(1)
  now = 1750
  t.committed([1, 2, 3, 4].map((n) => ({ hash: h(n) }) as never))
  const text = await m.registry.metrics()
  assert.match(text, /^cityledger_tx_submit_to_commit_seconds_count 2$/m)
  assert.match(text, /^cityledger_tx_submit_to_commit_seconds_sum 1.5$/m)
})

test('the verifier wrapper counts checks and keeps verdicts; the kv wrapper times writes', async () => {
  const m = metrics()
  const v = instrumentVerifier(
    { name: 'x', verify: () => false, verifyBatch: async (c) => c.map(() => true), close: async () => {} },
    m,
    'batch',
  )
  const check = { publicKey: new Uint8Array(32), message: new Uint8Array(1), signature: new Uint8Array(64) }
  assert.equal(await v.verifyBatch([check, check, check]), [true, true, true])
  assert.is(v.verify(check), false)
  const kv = timedKv(openMemoryKv(), m, 'journal')
  await kv.write([{ type: 'put', key: new Uint8Array([1]), value: new Uint8Array([2]) }])
  const text = await m.registry.metrics()
  assert.match(text, /^cityledger_crypto_signatures_verified_total\{path="batch"\} 4$/m)
  assert.match(text, /^cityledger_crypto_verifier_pending_signatures 0$/m)
  assert.match(text, /^cityledger_store_write_seconds_count\{store="journal"\} 1$/m)
  assert.equal(await kv.get(new Uint8Array([1])), new Uint8Array([2]))
})

test.run()
