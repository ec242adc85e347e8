import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Input } from '@cityledger/consensus'
import { pino } from 'pino'
import { ConsensusDriver } from '../src/node/driver.ts'
import { createManualClock } from '../src/p2p/index.ts'

// consensus.emptyBlocks false: the driver tells the replica when the mempool goes from empty to
// non-empty and back, once per edge (a tx stream must not re-arm the replica's timer on every tx).
function driverWith(reportPending: boolean) {
  const stepped: Input[] = []
  let size = 0
  const driver = new ConsensusDriver({
    chainId: 'test',
    publicKey: new Uint8Array(32),
    replica: { step: (input) => (stepped.push(input), []) },
    journal: { append: async () => {}, compact: async () => {} } as never,
    ledger: { head: { height: 0 } } as never,
    mempool: { size: () => size } as never,
    net: { broadcast: () => {}, send: () => {}, penalize: () => {} },
    clock: createManualClock(),
    logger: pino({ level: 'silent' }),
    wallClock: () => 0,
    maxBlockTxs: 10,
    maxBlockBytes: 1 << 20,
    blockIntervalMs: 100,
    emptyBlockIntervalMs: 30_000,
    reportPending,
    onCommitted: () => {},
    onSyncNeeded: () => {},
    onFatal: (err) => {
      throw err
    },
  })
  const pending = () =>
    stepped.filter((i) => i.type === 'pending').map((i) => i.type === 'pending' && i.pending)
  return { driver, pending, setSize: (n: number) => (size = n) }
}

test('pending is reported on edges only', async () => {
  const { driver, pending, setSize } = driverWith(true)
  setSize(1)
  for (let i = 0; i < 100; i++) {
    setSize(1 + i)
    driver.txsArrived()
  }
  await driver.idle()
  assert.equal(pending(), [true])
  setSize(0)
  driver.txsArrived()
  driver.txsArrived()
  setSize(3)
  driver.txsArrived()
  await driver.idle()
  assert.equal(pending(), [true, false, true])
  driver.stop()
})

test('without reportPending (emptyBlocks true, the default) the replica is never told', async () => {
  const { driver, pending, setSize } = driverWith(false)
  setSize(5)
  driver.txsArrived()
  setSize(0)
  driver.txsArrived()
  await driver.idle()
  assert.equal(pending(), [])
  driver.stop()
})

test.run()
