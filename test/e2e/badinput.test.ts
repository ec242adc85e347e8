// Bad input through RPC and through each libp2p protocol: clear errors or penalties, never a crash.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { encode, generateKeyPair, sha256, signTx, utf8 } from '@cityledger/core'
import { Rng, testSeed } from '@cityledger/core/testing'
import { PROTOCOL, createP2P, loadKey } from '@cityledger/node'
import { TxSender, startNetwork, waitFor } from '../helpers/network.ts'
import { submitSubjects, waitCommitted } from '../helpers/chain.ts'

const SEED = testSeed(4242)

async function post(url: string, body: Uint8Array | string, type = 'application/octet-stream') {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': type }, body })
  return { status: r.status, body: (await r.json()) as { error?: { code: string }; hash?: string } }
}

test(`RPC and p2p bad input get typed errors or penalties and the network keeps committing (seed ${SEED})`, async () => {
  const net = await startNetwork({ validators: 4, observers: 1, startObservers: false })
  const sender = new TxSender(net.layout.genesis.chainId)
  const n0 = net.nodes[0]!
  const url = `${n0.rpc}/v1/txs`
  const rng = new Rng(SEED)
  try {
    // RPC: random bytes, oversized body, wrong chain, bad signature, replay.
    for (let i = 0; i < 50; i++) {
      const r = await post(url, rng.bytes(rng.range(1, 300)))
      assert.is(r.status, 400, `seed ${SEED}: random bytes case ${i}`)
      assert.ok(r.body.error?.code, 'typed error code')
    }
    assert.is((await post(url, new Uint8Array(2 * 1024 * 1024))).status, 413)
    assert.is((await post(`${n0.rpc}/v1/txs/json`, '{"envelope": [1,2,', 'application/json')).status, 400)
    const key = generateKeyPair()
    const body = sender.body(key, 'identity', 'registerSubject', {
      subject: sha256(utf8.encode('bad-input')),
    })
    const wrongChain = signTx({ ...body, chainId: 'other-chain' }, key.secretKey)
    assert.equal((await post(url, wrongChain.bytes)).body.error?.code, 'WRONG_CHAIN')
    const good = signTx(body, key.secretKey)
    const forged = Uint8Array.from(good.bytes)
    forged[forged.length - 1]! ^= 1
    assert.equal((await post(url, forged)).body.error?.code, 'BAD_SIGNATURE')
    const first = await post(url, good.bytes)
    assert.is(first.status, 202)
    const replay = await post(url, good.bytes)
    assert.is(replay.body.error?.code, 'DUPLICATE_TX')
    await waitCommitted(n0, [first.body.hash!])
    const after = await post(url, good.bytes)
    assert.ok(
      ['DUPLICATE_TX', 'NONCE_TOO_LOW'].includes(after.body.error?.code ?? ''),
      `replay after commit: ${after.body.error?.code}`,
    )
    const unknown = signTx(sender.body(key, 'nosuchservice', 'x', {}), key.secretKey)
    assert.equal((await post(url, unknown.bytes)).body.error?.code, 'UNKNOWN_SERVICE')

    // p2p: an allowed peer (the observer's key) sends garbage on every protocol.
    const obsKey = loadKey(net.observers[0]!.home)
    const peer = createP2P({
      keyPair: obsKey,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [
        { publicKey: net.layout.genesis.validators[0]!.publicKey, addrs: [readAddr(net.nodes[0]!.home)] },
      ],
      allowed: net.layout.genesis.validators.map((v) => v.publicKey),
    })
    await peer.start()
    try {
      const target = net.layout.genesis.validators[0]!.publicKey
      await waitFor('observer connected', async () => peer.peers().some((p) => p.publicKey === target))
      for (let i = 0; i < 20; i++) {
        await peer.send(target, PROTOCOL.consensus, rng.bytes(rng.range(1, 400))).catch(() => {})
        await peer.send(target, PROTOCOL.txs, rng.bytes(rng.range(1, 400))).catch(() => {})
        await peer.send(target, PROTOCOL.txs, encode([rng.bytes(100)])).catch(() => {})
        await peer
          .request(target, PROTOCOL.sync, rng.bytes(rng.range(1, 60)), { timeoutMs: 2000 })
          .catch(() => {})
      }
      const penalties = await waitFor('penalties recorded', async () => {
        const text = await (await fetch(`${n0.rpc}/metrics`)).text()
        const total = [...text.matchAll(/^cityledger_p2p_penalties_total\{[^}]*\} (\d+)/gm)].reduce(
          (a, m) => a + Number(m[1]),
          0,
        )
        return total > 0 ? total : undefined
      })
      assert.ok(penalties > 0)
    } finally {
      await peer.stop()
    }

    // Still alive and committing.
    const hashes = await submitSubjects(net, sender, 5, { tag: 'after-garbage' })
    await waitCommitted(n0, hashes)
    for (const n of net.nodes) assert.ok((await n.client.health()).ok, `node ${n.index} healthy`)
  } catch (err) {
    console.error(net.log(0))
    throw err
  } finally {
    await net.close()
  }
})

function readAddr(home: string): string {
  const cfg = JSON.parse(readFileSync(`${home}/config.json`, 'utf8')) as { p2p: { listen: string[] } }
  return cfg.p2p.listen[0]!
}

test.run()
