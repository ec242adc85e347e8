// /v1/health of a validator node: not ok without the peers a quorum needs (issue 15, defect 12).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { NodeRpcBackend } from '../src/node/backend.ts'
import { startLocalNode } from './nodeHarness.ts'

const key = (i: number) => i.toString(16).padStart(64, '0')

/** The backend's health with only what health reads; the rest is never touched. */
function healthOf(o: { validators: number; me: number; peers: number; validatorPeers?: number }) {
  const backend = new NodeRpcBackend({
    genesis: {
      validators: Array.from({ length: o.validators }, (_, i) => ({ publicKey: key(i), name: `v${i}` })),
    },
    nodeId: key(o.me),
    peers: () => o.peers,
    ...(o.validatorPeers !== undefined ? { validatorPeers: () => o.validatorPeers! } : {}),
    started: () => true,
    catchingUp: () => false,
  } as unknown as ConstructorParameters<typeof NodeRpcBackend>[0])
  return backend.health()
}

test('a validator is healthy only with quorum - 1 validator peers; a set of one needs none', async () => {
  // n = 4: quorum 3, so 2 others; n = 7: quorum 5, so 4 others.
  for (const [n, peers, ok] of [
    [1, 0, true],
    [4, 0, false],
    [4, 1, false],
    [4, 2, true],
    [4, 3, true],
    [7, 3, false],
    [7, 4, true],
  ] as const) {
    const h = await healthOf({ validators: n, me: 0, peers })
    assert.is(h.ok, ok, `n=${n} peers=${peers}: ${JSON.stringify(h)}`)
    if (!ok) assert.match(h.reasons!.join(';'), /validator peer/)
  }
  // Observers connected to a validator do not make up its quorum.
  assert.is((await healthOf({ validators: 4, me: 0, peers: 5, validatorPeers: 1 })).ok, false)
  // An observer (not in the set) needs one peer to follow the chain.
  assert.is((await healthOf({ validators: 4, me: 9, peers: 0 })).ok, false)
  assert.is((await healthOf({ validators: 4, me: 9, peers: 1 })).ok, true)
})

test('GET /v1/health: 503 with a reason for a validator of four alone; 200 for a single-node devnet', async () => {
  // Validator 0 of four, the other three never started.
  const local = await startLocalNode(() => {}, { validators: 4 })
  try {
    const node = local.node
    const res = await fetch(`${node.rpcUrl()}/v1/health`)
    const body = (await res.json()) as { ok: boolean; reasons?: string[] }
    assert.is(res.status, 503)
    assert.is(body.ok, false)
    assert.match(body.reasons!.join(';'), /0 validator peer\(s\) connected, a quorum of 3 of 4 needs 2/)
  } finally {
    await local.close()
  }
  const one = await startLocalNode()
  try {
    const res = await fetch(`${one.url}/v1/health`)
    assert.is(res.status, 200)
    assert.equal(await res.json(), { ok: true })
  } finally {
    await one.close()
  }
})

test.run()
