import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { consensusMessageLimit, toHex } from '@cityledger/core'
import { pino } from 'pino'
import { createTestnet } from '../src/cli/testnet.ts'
import { loadConfig } from '../src/config/index.ts'
import { createNode } from '../src/node/createNode.ts'
import { PROTOCOL } from '../src/node/protocols.ts'
import { createP2P, type P2P } from '../src/p2p/index.ts'
import { waitConnected, waitForEvent } from '../src/p2p/testing.ts'

// A whole validator (createNode, in this process, memory store) against one allowed peer that floods it
// with fake pre-prepares larger than the genesis allows: the node's own wiring must refuse them by size
// from the frame header (no decode), penalise the sender and ban it. Counts only, no timing.
test('300 fake oversized pre-prepares from an allowed validator key get it banned after 4 or 5 refusals, none decoded', async () => {
  const out = mkdtempSync(join(tmpdir(), 'cl-node-flood-'))
  const maxBlockBytes = 64 * 1024
  const layout = createTestnet({ out, validators: 4, store: 'memory', consensus: { maxBlockBytes } })
  const config = loadConfig(layout.homes[0]!)
  config.p2p.listen = ['/ip4/127.0.0.1/tcp/0']
  config.p2p.peers = []
  config.rpc.port = 0
  let p2p!: P2P
  const node = await createNode({
    config,
    genesis: layout.genesis,
    key: layout.keys[0]!,
    dataDir: join(out, 'data'),
    sandbox: false,
    logger: pino({ level: 'silent' }),
    testHooks: { onP2P: (p) => (p2p = p) },
  })
  const frame = consensusMessageLimit(maxBlockBytes)
  const attacker = createP2P({
    keyPair: layout.keys[1]!,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    allowed: [toHex(layout.keys[0]!.publicKey)],
    // Its own limit is larger than the genesis allows, so it sends what the node must refuse.
    limits: { [PROTOCOL.consensus]: { maxMessageBytes: 2 * frame, ratePerSecond: 1e6, burst: 1e6 } },
    maxPendingSends: 1000,
  })
  try {
    await node.start()
    assert.is(p2p.limitsOf(toHex(layout.keys[1]!.publicKey), PROTOCOL.consensus)?.maxMessageBytes, frame)
    const victim = toHex(layout.keys[0]!.publicKey)
    const flooder = toHex(layout.keys[1]!.publicKey)
    const reasons: string[] = []
    p2p.events.on('peer:penalized', (e) => {
      if (e.peer === flooder) reasons.push(e.reason)
    })
    const banned = waitForEvent(p2p, 'peer:banned', (e) => e.peer === flooder, 'node bans the flooder')
    await attacker.start()
    await attacker.handle(PROTOCOL.consensus, () => {})
    // Dial after start: the node has no bootstrap entry for the attacker.
    await (attacker as unknown as { node: { dial(a: unknown): Promise<unknown> } }).node.dial(
      (await import('@multiformats/multiaddr')).multiaddr(node.p2pAddrs()[0]!),
    )
    await waitConnected(attacker, victim)
    const fake = new Uint8Array(frame + 1).fill(0xee)
    // One after another: each refused header resets the stream, and the next send opens a new one.
    let isBanned = false
    void banned.then(() => {
      isBanned = true
    })
    let sent = 0
    for (; sent < 300 && !isBanned; sent++)
      await attacker.send(victim, PROTOCOL.consensus, fake).catch(() => {})
    await banned
    assert.ok(sent < 300, `banned before all 300 were sent (${sent})`)
    // badFrame (25) per refused header: four reach the threshold of 100, or five, as the node's real
    // clock lets the score decay a little between them.
    assert.ok(reasons.length === 4 || reasons.length === 5, reasons.join('; '))
    assert.ok(reasons.every((r) => r === `frame too large on ${PROTOCOL.consensus}`))
    assert.is(p2p.bufferedBytes(flooder), 0)
    assert.ok(!p2p.peers().some((p) => p.publicKey === flooder))
  } finally {
    await attacker.stop()
    await node.stop()
    rmSync(out, { recursive: true, force: true })
  }
})

test.run()
