// SIGKILL during rollbacks: the store is always at a height it reported or the one below, whole (every
// value against the root of its height, the latest blocks against their links), never in between. The
// child is this file run with `--child <db>`: it rolls back one block at a time, printing each new height.
import { type ChildProcess, spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ChainStore, STORE_PREFIX, openLevelKv, prefixEnd, rollbackChain, toHex } from '@cityledger/core'
import { Rng, testSeed } from '@cityledger/core/testing'
import { tempDir } from './helpers/backends.ts'
import { CHAIN_ID, genesisWrites, nextBlock } from './helpers/chainFixture.ts'

const SEED = testSeed(20261203)
const HEIGHT = 40

async function child(db: string): Promise<void> {
  const kv = await openLevelKv(db)
  process.stdout.write('ready\n')
  for (;;) {
    const r = await rollbackChain(kv, { chainId: CHAIN_ID })
    // Writes to a pipe are synchronous on Linux: the line is out before the next rollback starts.
    process.stdout.write(`${r.height}\n`)
    if (r.height === 0) break
  }
  await kv.close()
}

/** Runs the child and SIGKILLs it after `reports` heights (0: right after it opened the store). */
function runAndKill(db: string, reports: number, children: Set<ChildProcess>): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [import.meta.filename, '--child', db], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.add(p)
    let buffered = ''
    let stderr = ''
    let last: number | undefined
    let seen = 0
    let killed = false
    p.stdout.setEncoding('utf8')
    p.stdout.on('data', (chunk: string) => {
      buffered += chunk
      let nl = buffered.indexOf('\n')
      while (nl >= 0) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        nl = buffered.indexOf('\n')
        if (killed) continue
        if (line !== 'ready') {
          last = Number(line)
          seen++
        }
        if (seen >= reports) {
          killed = true
          p.kill('SIGKILL')
        }
      }
    })
    p.stderr.on('data', (b) => (stderr += b))
    p.on('error', reject)
    p.on('exit', (code, signal) => {
      children.delete(p)
      if (signal === 'SIGKILL' && killed) resolve(last)
      else reject(new Error(`rollback child exited by itself (code ${code}, signal ${signal}): ${stderr}`))
    })
  })
}

const entriesOf = (store: ChainStore): string[] =>
  [...store.state.entries()].map(([k, v]) => `${toHex(k)}=${toHex(v)}`).sort()

if (process.argv[2] === '--child') await child(process.argv[3]!)
else {
  test(`SIGKILL during rollbacks leaves the store at a reported height or one below, whole (seed ${SEED})`, async () => {
    const rng = new Rng(SEED)
    const dir = tempDir('rollback-crash')
    const db = join(dir, 'db')
    const children = new Set<ChildProcess>()
    try {
      const store = await ChainStore.open(await openLevelKv(db))
      await store.initGenesis({ chainId: CHAIN_ID, stateWrites: genesisWrites(SEED) })
      const roots = [toHex(store.state.root())]
      const entries = [entriesOf(store)]
      for (let h = 1; h <= HEIGHT; h++) {
        await store.commitBlock(nextBlock(store, SEED))
        roots.push(toHex(store.state.root()))
        entries.push(entriesOf(store))
      }
      await store.close()
      let height = HEIGHT
      for (let round = 0; round < 6 && height > 0; round++) {
        const reports = round === 0 || rng.chance(0.3) ? 0 : rng.range(1, 4)
        const last = await runAndKill(db, reports, children)
        const kv = await openLevelKv(db)
        // Open checks the metadata against the last block, the latest blocks and every value against the root.
        const s = await ChainStore.open(kv, { chainId: CHAIN_ID })
        const now = s.height()
        const expected = last ?? height
        assert.ok(
          now === expected || now === expected - 1,
          `height ${now} after reports up to ${expected} (seed ${SEED})`,
        )
        assert.is(toHex(s.state.root()), roots[now], `root at ${now}`)
        assert.equal(entriesOf(s), entries[now], `state at ${now}`)
        const x = Uint8Array.of(STORE_PREFIX.search)
        for await (const [k] of kv.iterate({ gte: x, lt: prefixEnd(x)! }))
          assert.ok(Buffer.from(k).readUIntBE(k.length - 10, 6) <= now, 'no search entry above the height')
        await s.close()
        height = now
      }
      assert.ok(height < HEIGHT - 3, `the rounds rolled back several blocks (${height})`)
    } finally {
      for (const c of children) c.kill('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    }
  })
  test.run()
}
