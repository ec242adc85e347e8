import { test } from 'uvu'
import * as assert from 'uvu/assert'
// The walk-through of packages/core/README.md, kept runnable: if this test breaks, fix the README too.
// ---- README example starts here ----
import {
  ChainStore,
  VerifiedCache,
  VoteKind,
  createMempool,
  createPureVerifier,
  createRuntime,
  defineService,
  encodeCertificate,
  generateKeyPair,
  makeBlock,
  merkleRoot,
  openMemoryKv,
  s,
  signTx,
  signVote,
  txSignatureCheck,
  verifyStateProof,
} from '@cityledger/core'

const chainId = 'seoul-1'

// 1. Keys (a 32-byte seed gives a deterministic key; omit it for a random one).
const alice = generateKeyPair()
const validator = generateKeyPair()

// 2. A service: a counter anyone may add to.
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
  queries: { value: { args: s.object({}), handler: (q) => q.state.get<number>('n') ?? 0 } },
})
const runtime = createRuntime({ services: [counter] })

// 3. A store at genesis (openLevelKv(dir) on disk).
const store = await ChainStore.open(openMemoryKv(), { chainId })
await store.initGenesis({ chainId, stateWrites: runtime.genesis(store.state, {}, Date.now()).writes })

// 4. Sign a transaction and verify it (createVerifier('pool') on a node: same verdicts, worker threads).
const tx = signTx(
  {
    chainId,
    service: 'counter',
    method: 'add',
    args: { by: 5 },
    signer: alice.publicKey,
    nonce: 1,
    expiry: 0,
  },
  alice.secretKey,
)
const verifier = createPureVerifier()
console.log('signature valid:', verifier.verify(txSignatureCheck(tx))) // true

// 5. The mempool: admission checks, one verifyBatch per tick, the verified cache shared with block validation.
const verifiedCache = new VerifiedCache()
const mempool = createMempool({
  chainId,
  verifier,
  committedNonce: (signer) => runtime.committedNonce(store.state, signer),
  check: (t) => runtime.checkTx(store.state, t),
  height: () => store.height(),
  limits: { maxTxs: 10_000, maxBytes: 32 << 20, maxTxBytes: 64 * 1024, maxPerSigner: 64 },
  verifiedCache,
})
const { hash } = await mempool.add(tx.bytes)

// 6. Propose, execute and commit block 1 (consensus would collect 2f+1 commit votes for the certificate).
const txs = mempool.reap({ maxTxs: 1000, maxBytes: 1 << 20 })
const height = store.height() + 1
const time = Date.now()
const block = makeBlock(
  {
    chainId,
    height,
    view: 0,
    time,
    parentHash: store.tipHash(),
    txRoot: merkleRoot(txs.map((t) => t.hash)),
    prevStateRoot: store.state.root(),
    proposer: validator.publicKey,
  },
  txs.map((t) => t.bytes),
)
const vote = {
  chainId,
  kind: VoteKind.commit,
  view: 0,
  height,
  digest: block.hash,
  validator: validator.publicKey,
}
const certificate = encodeCertificate({
  chainId,
  view: 0,
  height,
  blockHash: block.hash,
  signatures: [{ validator: validator.publicKey, signature: signVote(vote, validator.secretKey) }],
})
const { writes, results, blockEvents } = runtime.executeBlock(store.state, { height, time, chainId, txs })
const stateRoot = await store.commitBlock({ block, certificate, results, stateWrites: writes, blockEvents })
const removed = mempool.update({ committed: txs, height })
console.log(results[0]?.code, removed.removed.committed) // null 1

// 7. Read a value with a proof that anyone holding the state root can check.
const q = runtime.query(store.state, height, 'counter', 'value', {})
const proved = await store.state.prove(q.keys[0]!)
console.log(q.value, verifyStateProof(stateRoot, q.keys[0]!, proved.value, proved.proof)) // 5 true
// ---- README example ends here ----

test('README walk-through: keys, signature, mempool, commit, proof', async () => {
  assert.ok(verifier.verify(txSignatureCheck(tx)))
  assert.equal(hash, tx.hash)
  assert.ok(verifiedCache.has(tx.hash))
  assert.is(txs.length, 1)
  assert.is(results[0]!.code, null)
  assert.equal(removed.removed, { committed: 1, nonce: 0, expired: 0, check: 0, gap: 0 })
  assert.is(mempool.size(), 0)
  assert.is(q.value, 5)
  assert.ok(verifyStateProof(stateRoot, q.keys[0]!, proved.value, proved.proof))
  assert.equal(proved.root, stateRoot)
  assert.is((await store.getTx(tx.hash))?.height, 1)
  await store.close()
  await verifier.close()
})

test.run()
