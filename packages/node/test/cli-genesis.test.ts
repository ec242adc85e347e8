// `cityledger genesis validate|hash <file>` and `cityledger version` (issue #13's CLI): agencies check a
// genesis file and compare its hash before they start, without starting a node.
import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createClient } from '../src/client/index.ts'
import { cli as runCli } from './cliHarness.ts'
import { startLocalNode } from './nodeHarness.ts'

const cli = runCli

/** Every object of a JSON value with its keys in reverse order (what `jq -S` or an editor may do). */
const reversed = (v: unknown): unknown =>
  Array.isArray(v)
    ? v.map(reversed)
    : v && typeof v === 'object'
      ? Object.fromEntries(
          Object.keys(v)
            .reverse()
            .map((k) => [k, reversed((v as Record<string, unknown>)[k])]),
        )
      : v

test('genesis hash is the running node’s genesisHash, whatever the key order; a change changes it', async () => {
  const local = await startLocalNode()
  try {
    const file = join(local.home, 'genesis.json')
    const status = await createClient({ url: local.url }).status()
    const r = await cli(['genesis', 'hash', file])
    assert.is(r.code, 0, r.err)
    const h = JSON.parse(r.out) as { genesisHash: string; chainId: string; validators: number }
    assert.is(h.genesisHash, (status as { genesisHash?: string }).genesisHash)
    assert.is(h.chainId, local.chainId)
    assert.is(h.validators, 1)

    const json = JSON.parse(readFileSync(file, 'utf8'))
    const same = join(local.home, 'genesis-reordered.json')
    writeFileSync(same, JSON.stringify(reversed(json), null, 4))
    assert.is(JSON.parse((await cli(['genesis', 'hash', same])).out).genesisHash, h.genesisHash)

    const other = join(local.home, 'genesis-other.json')
    writeFileSync(other, JSON.stringify({ ...json, genesisTime: json.genesisTime + 1 }))
    assert.is.not(JSON.parse((await cli(['genesis', 'hash', other])).out).genesisHash, h.genesisHash)

    const ok = await cli(['genesis', 'validate', file])
    assert.is(ok.code, 0)
    assert.match(ok.out, /: ok\n$/)
  } finally {
    await local.close()
  }
})

test('genesis validate names every problem and exits 1; hash refuses a bad file with exit 1', async () => {
  const local = await startLocalNode()
  try {
    const json = JSON.parse(readFileSync(join(local.home, 'genesis.json'), 'utf8'))
    const bad = join(local.home, 'genesis-bad.json')
    writeFileSync(
      bad,
      JSON.stringify({ ...json, validators: [], consensus: { viewChangeTimeoutMs: 'soon' } }),
    )
    const v = await cli(['genesis', 'validate', bad])
    assert.is(v.code, 1)
    assert.match(v.out, /validators/)
    assert.match(v.out, /consensus\.viewChangeTimeoutMs/)
    const h = await cli(['genesis', 'hash', bad])
    assert.is(h.code, 1)
    assert.match(h.err, /BAD_GENESIS|validators/)
    const missing = await cli(['genesis', 'validate', join(local.home, 'nope.json')])
    assert.is(missing.code, 1)
  } finally {
    await local.close()
  }
})

test('version prints the package version and the Node.js version', async () => {
  const r = await cli(['version'])
  assert.is(r.code, 0, r.err)
  const v = JSON.parse(r.out) as { cityledger: string; node: string; genesisHashFormat: string }
  const pkg = JSON.parse(readFileSync(resolve(import.meta.dirname, '../package.json'), 'utf8'))
  assert.is(v.cityledger, pkg.version)
  assert.is(v.node, process.versions.node)
  assert.match(v.genesisHashFormat, /^cityledger\/genesis\/v\d+$/)
})

test.run()
