// `cityledger rollback --home` (issue #13 item 7): removes the latest block of a stopped node's store,
// refused while it runs, for a validator only with --unsafe-forget-votes, and the node starts again on
// the rolled-back store and commits the removed height anew.
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ChainStore, openLevelKv, toHex } from '@cityledger/core'
import { createClient } from '../src/client/index.ts'
import { type StartedNode, cli as runCli, oneValidatorHome, startCli, withDir } from './cliHarness.ts'

const cli = async (args: string[]) => {
  const r = await runCli(args)
  return { code: r.code, out: r.out + r.err }
}

/** Polls the node's status until its height reaches `height` (the node makes a block every 20 ms). */
async function waitHeight(node: StartedNode, height: number): Promise<number> {
  const rpc = /"rpc":"([^"]+)"/.exec(node.output())![1]!
  const client = createClient({ url: rpc })
  for (let i = 0; i < 500; i++) {
    const s = await client.status()
    if (s.height >= height) return s.height
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`node did not reach height ${height}`)
}

async function storeAt(data: string): Promise<{ height: number; roots: string[] }> {
  const store = await ChainStore.open(await openLevelKv(data))
  const roots: string[] = []
  for (let h = 0; h <= store.height(); h++) roots.push(toHex((await store.stateRoot(h))!))
  const height = store.height()
  await store.close()
  return { height, roots }
}

test(
  'rollback removes one block of a stopped validator with --yes --unsafe-forget-votes, and the node goes on',
  withDir('cityledger-rollback-', async (dir) => {
    const home = oneValidatorHome(dir, 'rollback-test')
    const data = join(home, 'data')
    const node = await startCli(home)
    await waitHeight(node, 3)
    const running = await cli(['rollback', '--home', home, '--yes', '--unsafe-forget-votes'])
    assert.is(running.code, 1, running.out)
    assert.match(running.out, /in use by another process/)
    node.proc.kill('SIGTERM')
    assert.is(await node.exited, 0)

    const before = await storeAt(data)
    assert.ok(before.height >= 3)
    const validator = await cli(['rollback', '--home', home, '--yes'])
    assert.is(validator.code, 2, validator.out)
    assert.match(validator.out, /validator's home.*--unsafe-forget-votes/s)
    const unasked = await cli(['rollback', '--home', home, '--unsafe-forget-votes'])
    assert.is(unasked.code, 2, unasked.out)
    assert.match(unasked.out, /pass --yes/)
    assert.is((await storeAt(data)).height, before.height, 'nothing changed while refused')

    const done = await cli(['rollback', '--home', home, '--yes', '--unsafe-forget-votes'])
    assert.is(done.code, 0, done.out)
    assert.match(done.out, new RegExp(`block ${before.height} removed.*now at height ${before.height - 1}`))
    const after = await storeAt(data)
    assert.is(after.height, before.height - 1)
    assert.equal(after.roots, before.roots.slice(0, -1))

    // The node starts on the rolled-back store and commits past the removed height.
    const again = await startCli(home)
    try {
      assert.ok((await waitHeight(again, before.height + 1)) > before.height)
    } finally {
      again.proc.kill('SIGTERM')
      assert.is(await again.exited, 0)
    }
  }),
)

test(
  'rollback without a data folder is refused',
  withDir('cityledger-rollback-', async (dir) => {
    const home = oneValidatorHome(dir, 'rollback-test')
    const r = await cli(['rollback', '--home', home, '--yes', '--unsafe-forget-votes'])
    assert.is(r.code, 2, r.out)
    assert.match(r.out, /no data folder, nothing to roll back/)
  }),
)

test.run()
