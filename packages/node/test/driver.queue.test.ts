import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Input, Output } from '@cityledger/consensus'
import { pino } from 'pino'
import { ConsensusDriver, type DriverOptions } from '../src/node/driver.ts'
import { createManualClock } from '../src/p2p/index.ts'

// The driver's input queue under a flood from one peer while consensus is stalled (a journal write that
// never finishes): the queue must stay bounded per peer, the flooder be penalised, and other peers and
// the node's own inputs (timers) still get in. Counts only, no timing.
const FLOODER = 'f1'.repeat(32)
const HONEST = 'a2'.repeat(32)

function stalledDriver(over: Partial<DriverOptions> = {}) {
  const penalties: { peer: string; reason: string }[] = []
  const stepped: Input[] = []
  const driver = new ConsensusDriver({
    chainId: 'test',
    publicKey: new Uint8Array(32),
    // Every message asks for a journal write first, and the journal never finishes: the drain stalls.
    replica: {
      step: (input: Input): Output[] => {
        stepped.push(input)
        return [{ type: 'journal', entry: new Uint8Array(1) } as unknown as Output]
      },
    },
    journal: { append: () => new Promise(() => {}), compact: async () => {}, all: () => [] } as never,
    ledger: {} as never,
    mempool: {} as never,
    net: {
      broadcast: () => {},
      send: () => {},
      penalize: (peer, reason) => penalties.push({ peer, reason }),
    },
    clock: createManualClock(),
    logger: pino({ level: 'silent' }),
    wallClock: () => 0,
    maxBlockTxs: 10,
    maxBlockBytes: 1 << 20,
    blockIntervalMs: 100,
    emptyBlockIntervalMs: 1000,
    onCommitted: () => {},
    onSyncNeeded: () => {},
    onFatal: (err) => {
      throw err
    },
    ...over,
  })
  const queueLength = (): number => (driver as unknown as { queue: Input[] }).queue.length
  return { driver, penalties, stepped, queueLength }
}

const preprepare = (size: number): Uint8Array => new Uint8Array(size).fill(0xee)

test('300 fake pre-prepares from one peer while consensus is stalled: the queue stays bounded, the flooder is penalised', () => {
  const { driver, penalties, queueLength } = stalledDriver({
    maxQueuedPerPeer: { messages: 64, bytes: 1 << 30 },
  })
  for (let i = 0; i < 300; i++) driver.push({ type: 'message', bytes: preprepare(1024), from: FLOODER })
  // The first is being applied (stalled in its journal write); 64 wait; the other 235 were dropped.
  assert.is(queueLength(), 64)
  assert.is(penalties.length, 300 - 1 - 64)
  assert.ok(penalties.every((p) => p.peer === FLOODER && /^queue:/.test(p.reason)))
  // An honest peer's message and the node's own timer still get in.
  driver.push({ type: 'message', bytes: preprepare(100), from: HONEST })
  driver.push({ type: 'timeout', timer: 'view', token: 1 } as unknown as Input)
  assert.is(queueLength(), 66)
  assert.is(penalties.length, 235)
  assert.equal(driver.queueStats(), { inputs: 66, dropped: 235 })
  driver.stop()
})

test('the per-peer bound counts bytes too: oversized messages fill it long before the count does', () => {
  const { driver, penalties, queueLength } = stalledDriver({
    maxQueuedPerPeer: { messages: 1000, bytes: 4 << 20 },
  })
  driver.push({ type: 'message', bytes: preprepare(1), from: FLOODER }) // taken by the stalled drain
  for (let i = 0; i < 300; i++) driver.push({ type: 'message', bytes: preprepare(1 << 20), from: FLOODER })
  assert.is(queueLength(), 4)
  assert.is(penalties.length, 296)
  driver.stop()
})

test('a message taken off the queue frees its place for that peer', async () => {
  let release!: () => void
  let stall = true
  const { driver, penalties, stepped } = stalledDriver({
    maxQueuedPerPeer: { messages: 2, bytes: 1 << 20 },
    journal: {
      append: () => (stall ? new Promise<void>((r) => (release = r)) : Promise.resolve()),
      compact: async () => {},
      all: () => [],
    } as never,
  })
  for (let i = 0; i < 5; i++) driver.push({ type: 'message', bytes: preprepare(10), from: FLOODER })
  assert.is(penalties.length, 2)
  stall = false
  release()
  await driver.idle()
  assert.is(stepped.length, 3)
  for (let i = 0; i < 2; i++) driver.push({ type: 'message', bytes: preprepare(10), from: FLOODER })
  await driver.idle()
  assert.is(stepped.length, 5)
  assert.is(penalties.length, 2)
  driver.stop()
})

test.run()
