import { type ChildProcess, spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  ChainStore,
  StateTree,
  ZERO_HASH,
  decodeCertificate,
  openLevelKv,
  openMemoryKv,
  STORE_PREFIX,
  prefixEnd,
  sha256,
  toHex,
} from '@cityledger/core'
import { Rng, testSeed } from '@cityledger/core/testing'
import { tempDir } from './helpers/backends.ts'
import { CHAIN_ID, genesisWrites, nextBlock } from './helpers/chainFixture.ts'

const SEED = testSeed(20261128)
const CHILD = join(import.meta.dirname, 'helpers', 'commitLoop.ts')
const hex = toHex

/**
 * Starts the commit loop and SIGKILLs it once it has reported `reports` more heights (0: as soon as
 * it is ready, usually in the middle of its first commit). Resolves with the last height it reported.
 */
function runAndKill(
  db: string,
  reports: number,
  children: Set<ChildProcess>,
): Promise<{ last: number; ready: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, db, String(SEED)], { stdio: ['ignore', 'pipe', 'pipe'] })
    children.add(child)
    let buffered = ''
    let stderr = ''
    let ready = -1
    let last = -1
    let seen = 0
    let killed = false
    const kill = () => {
      if (!killed) {
        killed = true
        child.kill('SIGKILL')
      }
    }
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => {
      buffered += chunk
      let nl = buffered.indexOf('\n')
      while (nl >= 0) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        nl = buffered.indexOf('\n')
        if (killed) continue
        if (line.startsWith('ready ')) {
          ready = Number(line.slice(6))
          last = ready
        } else {
          const h = Number(line)
          if (h !== last + 1) reject(new Error(`child reported height ${h} after ${last}`))
          last = h
          seen++
        }
        if (ready >= 0 && seen >= reports) kill()
      }
    })
    child.stderr.on('data', (b) => (stderr += b))
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      children.delete(child)
      if (signal === 'SIGKILL' && killed) resolve({ last, ready })
      else reject(new Error(`commit loop exited by itself (code ${code}, signal ${signal}): ${stderr}`))
    })
  })
}

/** Opens the store the child left behind and checks it against a replay of the same chain in memory. */
async function verify(db: string, reported: number): Promise<number> {
  const kv = await openLevelKv(db)
  const store = await ChainStore.open(kv, { chainId: CHAIN_ID })
  try {
    const height = store.height()
    // The search index rides in the block's batch: no entry of a block that is not there.
    const x = Uint8Array.of(STORE_PREFIX.search)
    for await (const [k] of kv.iterate({ gte: x, lt: prefixEnd(x)! })) {
      // Height: the u64 before the 4-byte index at the end of the key (heights stay below 2^48).
      const h = Buffer.from(k).readUIntBE(k.length - 10, 6)
      assert.ok(
        h <= height,
        `search index entry of height ${h} above the stored height ${height} (seed ${SEED})`,
      )
    }
    assert.ok(height >= reported, `store at height ${height}, child had reported ${reported} (seed ${SEED})`)
    const replay = await ChainStore.open(openMemoryKv())
    await replay.initGenesis({ chainId: CHAIN_ID, stateWrites: genesisWrites(SEED) })
    assert.equal(hex((await store.stateRoot(0))!), hex(replay.state.root()), 'genesis root')
    let parent: Uint8Array = ZERO_HASH
    for (let h = 1; h <= height; h++) {
      const input = nextBlock(replay, SEED)
      await replay.commitBlock(input)
      const block = await store.getBlock(h)
      assert.ok(block, `block ${h} missing`)
      assert.equal(hex(block.header.parentHash), hex(parent), `hash chain broken at ${h}`)
      assert.equal(hex(block.bytes), hex(input.block.bytes), `block ${h} differs from the replay`)
      parent = block.hash
      const cert = await store.getCertificate(h)
      assert.ok(cert, `certificate ${h} missing`)
      assert.equal(hex(decodeCertificate(cert).blockHash), hex(block.hash))
      assert.equal(await store.getResults(h), input.results, `results of ${h}`)
      // The fixture's txs are not envelopes: they are indexed by their events (successful txs only).
      const page = await store.searchTxs({
        event: { service: 'token', name: 'transfer' },
        fromHeight: h,
        toHeight: h,
        limit: 100,
      })
      assert.equal(
        page.txs.map((t) => `${t.index} ${hex(t.hash)}`),
        input.results.flatMap((r, i) => (r.code === null ? [`${i} ${hex(r.hash)}`] : [])),
        `search index of block ${h} (seed ${SEED})`,
      )
      for (const [index, tx] of block.txs.entries()) {
        const stored = await store.getTx(sha256(tx))
        assert.equal(
          stored && { height: stored.height, index: stored.index },
          { height: h, index },
          `tx index at ${h}/${index}`,
        )
      }
      assert.equal(hex((await store.stateRoot(h))!), hex(replay.state.root()), `state root at ${h}`)
    }
    assert.equal(hex(store.tipHash()), hex(parent))
    // The latest root also recomputes from the stored latest values alone.
    const fresh = await StateTree.open(openMemoryKv())
    const root = await fresh.apply(new Map([...store.state.entries()].map(([k, v]) => [hex(k), v])))
    assert.equal(hex(root), hex(store.state.root()))
    await replay.close()
    return height
  } finally {
    await store.close()
  }
}

test(`SIGKILL during commits never loses a reported block nor leaves a torn one (seed ${SEED})`, async () => {
  const rng = new Rng(SEED)
  const dir = tempDir('crash')
  const db = join(dir, 'db')
  const children = new Set<ChildProcess>()
  try {
    let reported = -1
    let height = -1
    for (let round = 0; round < 6; round++) {
      // Round 0 and some others die right after opening, inside the first commit; the rest later on.
      const reports = round === 0 || rng.chance(0.25) ? 0 : rng.range(1, 30)
      const { last, ready } = await runAndKill(db, reports, children)
      assert.ok(ready >= height, `child resumed at ${ready}, below the verified height ${height}`)
      reported = Math.max(reported, last)
      height = await verify(db, reported)
    }
    assert.ok(height >= 10, `too few blocks committed to mean anything (${height})`)
  } finally {
    for (const child of children) child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
