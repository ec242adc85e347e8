// `cityledger snapshot export|import` (issue #13 item 7): a stopped node's state at a height with the
// headers and certificates that certify it, and its verified import into a fresh home.
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  StateTree,
  certificateVote,
  decodeCertificate,
  encode,
  encodeCertificate,
  generateKeyPair,
  openLevelKv,
  readSnapshotManifest,
  signVote,
  toHex,
} from '@cityledger/core'
import { createClient } from '../src/client/index.ts'
import { IMPORTED_STATE_DIR } from '../src/cli/snapshotCommand.ts'
import { type StartedNode, cli as runCli, oneValidatorHome, startCli, withDir } from './cliHarness.ts'

const cli = async (args: string[]) => {
  const r = await runCli(args)
  return { code: r.code, out: r.out, err: r.err, all: r.out + r.err }
}

async function waitHeight(node: StartedNode, height: number): Promise<void> {
  const rpc = /"rpc":"([^"]+)"/.exec(node.output())![1]!
  const client = createClient({ url: rpc })
  for (let i = 0; i < 500; i++) {
    if ((await client.status()).height >= height) return
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`node did not reach height ${height}`)
}

/** A home with the same genesis and config as `home` and no data (what an operator would prepare). */
function freshHome(home: string, at: string): string {
  mkdirSync(at)
  for (const f of ['genesis.json', 'config.json', 'key.json']) copyFileSync(join(home, f), join(at, f))
  return at
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

const noImport = (home: string) => {
  assert.not.ok(existsSync(join(home, IMPORTED_STATE_DIR)), 'no state written')
  assert.ok(
    readdirSync(home).every((f) => !f.includes('partial')),
    'no partial folder left',
  )
}

test(
  'export then import into a fresh home gives the same state root; tampering and a used home are refused',
  withDir('cityledger-snapshot-', async (dir) => {
    const home = oneValidatorHome(join(dir, 'net'), 'snapshot-test')
    const node = await startCli(home)
    await waitHeight(node, 4)
    const running = await cli(['snapshot', 'export', '--home', home, '--out', join(dir, 'x')])
    assert.is(running.code, 1, running.all)
    assert.match(running.all, /in use by another process/)
    node.proc.kill('SIGTERM')
    assert.is(await node.exited, 0)

    const file = join(dir, 'snap')
    const exp = await cli([
      'snapshot',
      'export',
      '--home',
      home,
      '--out',
      file,
      '--chunk-bytes',
      '200',
      '--progress-every',
      '2',
    ])
    assert.is(exp.code, 0, exp.all)
    const exported = JSON.parse(exp.out) as { height: number; stateRoot: string; chunks: number }
    assert.ok(exported.chunks >= 4, `several chunks (${exported.chunks})`)
    assert.match(exp.err, /exported 2 chunks/)
    assert.ok(exported.height >= 3)

    // A used home (it has blocks) is refused.
    const used = await cli(['snapshot', 'import', '--home', home, '--in', file])
    assert.is(used.code, 2, used.all)
    assert.match(used.all, /holds blocks up to \d+: a snapshot is imported into a fresh home/)
    noImport(home)

    // A flipped byte in chunk 1 is refused, naming the chunk.
    const fresh = freshHome(home, join(dir, 'fresh'))
    const bytes = readFileSync(file)
    const m = await readSnapshotManifest(file)
    bytes[8 + 4 + m.chunks[0]!.bytes + 4 + 3]! ^= 0x80
    writeFileSync(join(dir, 'flipped'), bytes)
    const flipped = await cli(['snapshot', 'import', '--home', fresh, '--in', join(dir, 'flipped')])
    assert.is(flipped.code, 1, flipped.all)
    assert.match(flipped.all, /SNAPSHOT_BAD_CHUNK.*chunk 1: hash does not match the manifest/)
    noImport(fresh)

    // A certificate signed by keys that are not the genesis validators is refused.
    const other = generateKeyPair()
    await withManifest(file, join(dir, 'forged'), (mm) => {
      const cert = decodeCertificate(mm.nextCertificate as Uint8Array)
      const signatures = [
        {
          validator: other.publicKey,
          signature: signVote(certificateVote(cert, other.publicKey), other.secretKey),
        },
      ]
      mm.nextCertificate = encodeCertificate({ ...cert, signatures })
    })
    const forged = await cli(['snapshot', 'import', '--home', fresh, '--in', join(dir, 'forged')])
    assert.is(forged.code, 1, forged.all)
    assert.match(forged.all, /not valid for the genesis validator set \(UNKNOWN_VALIDATOR/)
    noImport(fresh)
    // A state root the certified header does not carry is refused.
    await withManifest(file, join(dir, 'root'), (mm) => {
      mm.stateRoot = new Uint8Array(32).fill(1)
    })
    const root = await cli(['snapshot', 'import', '--home', fresh, '--in', join(dir, 'root')])
    assert.is(root.code, 1, root.all)
    assert.match(root.all, /certifies state root [0-9a-f]{64}, not the snapshot's/)
    noImport(fresh)

    const imp = await cli(['snapshot', 'import', '--home', fresh, '--in', file, '--progress-every', '2'])
    assert.is(imp.code, 0, imp.all)
    assert.match(imp.err, /checked 2\/\d+ chunks/)
    const imported = JSON.parse(imp.out) as { height: number; stateRoot: string }
    assert.is(imported.stateRoot, exported.stateRoot)
    assert.is(imported.height, exported.height)
    // The folder holds the state: its values hash to the certified root, stored under the height.
    const kv = await openLevelKv(join(fresh, IMPORTED_STATE_DIR))
    const tree = await StateTree.open(kv, exported.height)
    assert.is(toHex(tree.root()), exported.stateRoot)
    await kv.close()
    const again = await cli(['snapshot', 'import', '--home', fresh, '--in', file])
    assert.is(again.code, 2, again.all)
    assert.match(again.all, /exists \(an earlier import\)/)
  }),
)

test.run()
