// 4 validators on loopback: commits, identical chains, an observer that syncs from an empty store.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { TxSender, startNetwork } from '../helpers/network.ts'
import { chainOf, submitSubjects, waitCommitted, waitHeight } from '../helpers/chain.ts'

test('4 validators commit submitted txs; every node has the same blocks and state roots; an empty observer syncs to the head', async () => {
  const net = await startNetwork({ validators: 4, observers: 1, startObservers: false })
  try {
    const sender = new TxSender(net.layout.genesis.chainId)
    const hashes = await submitSubjects(net, sender, 40)
    const top = await waitCommitted(net.nodes[0]!, hashes)
    for (const n of net.nodes) await waitHeight(n, top)
    const chains = await Promise.all(net.nodes.map((n) => chainOf(n, top)))
    for (const c of chains) assert.equal(c, chains[0], 'all validators have the same block hashes')
    const roots = await Promise.all(
      net.nodes.map(async (n) => (await n.client.block(top))!.header.prevStateRoot),
    )
    assert.equal(new Set(roots).size, 1, 'same state roots')
    for (const n of net.nodes) await waitCommitted(n, hashes.slice(-3))

    // A node that joins late with an empty store catches up by block sync.
    await net.start(0, 'observer')
    const obs = net.observers[0]!
    await waitHeight(obs, top)
    assert.equal(await chainOf(obs, top), chains[0])

    // GET /v1/peers names who a node is connected to, and as what.
    const validatorKeys = net.layout.genesis.validators.map((v) => v.publicKey.toLowerCase())
    const { peers } = (await (await fetch(`${net.nodes[0]!.rpc}/v1/peers`)).json()) as {
      peers: { publicKey: string; role: string; addrs: string[] }[]
    }
    const others = peers.filter((p) => p.role === 'validator').map((p) => p.publicKey)
    assert.equal(others.sort(), validatorKeys.slice(1).sort(), 'node 0 lists the three other validators')
    assert.ok(peers.every((p) => p.addrs.length > 0))
  } catch (err) {
    console.error(net.log(0))
    throw err
  } finally {
    await net.close()
  }
})

test.run()
