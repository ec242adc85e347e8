// `cityledger snapshot import --restore`: a backup restored into an empty data folder is a store that
// starts at the snapshot's height (the store state sync builds, from the same code): the node starts
// from it, goes on committing, and answers heights below it with PRUNED.
import { copyFileSync, existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createClient } from '../src/client/index.ts'
import { cli, oneValidatorHome, startCli, withDir } from './cliHarness.ts'

test(
  'export, import --restore into a fresh home, start: the node runs from the snapshot height',
  withDir('cityledger-restore-', async (dir) => {
    const home = oneValidatorHome(join(dir, 'net'), 'restore-test')
    const node = await startCli(home)
    const rpc = /"rpc":"([^"]+)"/.exec(node.output())![1]!
    const client = createClient({ url: rpc })
    for (let i = 0; i < 500 && (await client.status()).height < 6; i++)
      await new Promise((r) => setTimeout(r, 20))
    node.proc.kill('SIGTERM')
    assert.is(await node.exited, 0)
    const file = join(dir, 'snap')
    const exp = await cli(['snapshot', 'export', '--home', home, '--out', file])
    assert.is(exp.code, 0, exp.out + exp.err)
    const { height, stateRoot } = JSON.parse(exp.out) as { height: number; stateRoot: string }

    const fresh = join(dir, 'fresh')
    mkdirSync(fresh)
    for (const f of ['genesis.json', 'config.json', 'key.json']) copyFileSync(join(home, f), join(fresh, f))
    const imp = await cli(['snapshot', 'import', '--home', fresh, '--in', file, '--restore'])
    assert.is(imp.code, 0, imp.out + imp.err)
    assert.ok(existsSync(join(fresh, 'data', 'CURRENT')))
    // A second restore is refused: the data folder holds a store now.
    const again = await cli(['snapshot', 'import', '--home', fresh, '--in', file, '--restore'])
    assert.is(again.code, 2)
    assert.match(again.out + again.err, /holds a store/)

    const restored = await startCli(fresh)
    try {
      const c = createClient({ url: /"rpc":"([^"]+)"/.exec(restored.output())![1]! })
      const s = await c.status()
      assert.ok(s.height >= height, `starts at ${height} or above (${s.height})`)
      const b = await c.block(height)
      assert.is(b?.header.prevStateRoot !== undefined, true)
      const below = await c.block(height - 1).catch((e) => e)
      assert.match(String(below?.code ?? below), /PRUNED/)
      // It commits blocks of its own on top (a one-validator chain), from the restored state.
      for (let i = 0; i < 500 && (await c.status()).height < height + 3; i++)
        await new Promise((r) => setTimeout(r, 20))
      assert.ok((await c.status()).height >= height + 3)
      assert.is((await c.block(height + 1))?.header.prevStateRoot, stateRoot)
    } finally {
      restored.proc.kill('SIGTERM')
      await restored.exited
    }
  }),
)

test.run()
