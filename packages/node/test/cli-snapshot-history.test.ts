// `cityledger snapshot export|import` of a chain whose validator set changed twice (changedSetChain.ts:
// the snapshot's blocks 23 and 24 are signed by set C with chain id <chainId>--e2). The export carries
// the node's validator history in the manifest; the import walks it from the home's genesis set, checks
// both certificates against the set of their height, and stores the entries in the imported store.
// Before, the import checked the certificates against the genesis set and refused them (WRONG_CHAIN).
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  ChainStore,
  STORE_PREFIX,
  encode,
  openLevelKv,
  readSnapshotManifest,
  subKv,
  toHex,
} from '@cityledger/core'
import { IMPORTED_STATE_DIR } from '../src/cli/snapshotCommand.ts'
import { dataPath, genesisHash, loadConfig, loadGenesis } from '../src/config/index.ts'
import { decodeHistoryEntry, encodeHistoryEntry } from '../src/node/validatorHistory.ts'
import { readHistory } from '../src/node/validatorHistoryStore.ts'
import { A, C, K, changedSetChain, pub } from './changedSetChain.ts'
import { cli as runCli, oneValidatorHome, withDir } from './cliHarness.ts'

const chainId = 'snapshot-history'
const cli = async (args: string[]) => {
  const r = await runCli(args)
  return { code: r.code, all: r.out + r.err }
}

/** The same snapshot file with another manifest (the chunks unchanged). */
async function withManifest(file: string, out: string, change: (m: Record<string, unknown>) => void) {
  const bytes = readFileSync(file)
  const len = bytes.readUInt32BE(bytes.length - 4)
  const m = (await readSnapshotManifest(file)) as unknown as Record<string, unknown>
  change(m)
  const rec = encode(m)
  const head = Buffer.alloc(4)
  head.writeUInt32BE(rec.length)
  const tail = Buffer.alloc(4)
  tail.writeUInt32BE(rec.length + 4)
  writeFileSync(out, Buffer.concat([bytes.subarray(0, bytes.length - 4 - len), head, rec, tail]))
}

test(
  'a snapshot of epoch 2 exports the history, imports through it (the entries stored), and is refused with a forged or short one',
  withDir('cityledger-snapshot-history-', async (dir) => {
    const home = oneValidatorHome(join(dir, 'net'), chainId)
    // The genesis of the hand-built chain: set A, K = 4.
    const file = join(home, 'genesis.json')
    const g = JSON.parse(readFileSync(file, 'utf8'))
    g.validators = pub(A).map((k, i) => ({ name: `a${i}`, publicKey: toHex(k) }))
    g.consensus.checkpointInterval = K
    writeFileSync(file, JSON.stringify(g, null, 2))
    const fresh = join(dir, 'fresh')
    mkdirSync(fresh)
    for (const f of ['genesis.json', 'config.json', 'key.json']) copyFileSync(join(home, f), join(fresh, f))

    const data = dataPath(home, loadConfig(home))
    const { store, history } = await changedSetChain(await openLevelKv(data), {
      chainId,
      blocks: 24,
      genesisHash: genesisHash(loadGenesis(file)),
    })
    const held = await readHistory(history.kv, 1, 64, 1 << 20)
    assert.is(held.length, 2)
    await store.close()

    const snap = join(dir, 'snap')
    const exp = await cli(['snapshot', 'export', '--home', home, '--out', snap])
    assert.is(exp.code, 0, exp.all)
    const m = await readSnapshotManifest(snap)
    assert.is(m.height, 23)
    assert.equal(m.validatorHistory, held)

    const refused: [string, (m: Record<string, unknown>) => void, RegExp][] = [
      ['none', (mm) => delete mm.validatorHistory, /not valid for the genesis validator set \(WRONG_CHAIN/],
      [
        'change 2 left out',
        (mm) => (mm.validatorHistory = held.slice(0, 1)),
        /block 23: certificate not valid for the validator set of its height \(WRONG_CHAIN/,
      ],
      [
        'tampered record',
        (mm) => {
          const e = decodeHistoryEntry(held[0]!)
          e.value = encode({ height: 6, executedAt: 5, keys: pub(C) })
          mm.validatorHistory = [encodeHistoryEntry(e), held[1]!]
        },
        /validator history does not check out \(.*entry 1: the proof does not show the record/,
      ],
      [
        'garbage entry',
        (mm) => (mm.validatorHistory = [Uint8Array.of(1, 2, 3)]),
        /validator history does not check out/,
      ],
      [
        'not byte strings',
        (mm) => (mm.validatorHistory = ['x']),
        /SNAPSHOT_BAD_FILE.*manifest.validatorHistory/,
      ],
    ]
    for (const [name, change, expected] of refused) {
      const bad = join(dir, `bad-${refused.findIndex((r) => r[0] === name)}`)
      await withManifest(snap, bad, change)
      const r = await cli(['snapshot', 'import', '--home', fresh, '--in', bad])
      assert.is(r.code, 1, `${name}: ${r.all}`)
      assert.match(r.all, expected, `${name}: ${r.all}`)
    }

    const imp = await cli(['snapshot', 'import', '--home', fresh, '--in', snap])
    assert.is(imp.code, 0, imp.all)
    const kv = await openLevelKv(join(fresh, IMPORTED_STATE_DIR))
    try {
      // The restored node serves the history it was certified with.
      assert.equal(await readHistory(subKv(kv, STORE_PREFIX.validatorHistory), 1, 64, 1 << 20), held)
      const imported = await ChainStore.open({ ...kv, close: async () => {} }, { chainId })
      assert.is(imported.height(), 23)
    } finally {
      await kv.close()
    }
  }),
)

test.run()
