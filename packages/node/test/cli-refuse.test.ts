// The CLI never silently overwrites what an operator has: a validator key, a testnet folder. And a
// testnet the node would refuse to start (a bad chain id) is refused before anything is written.
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { cli, withDir as withTempDir } from './cliHarness.ts'

const withDir = (fn: (dir: string) => Promise<void>) => withTempDir('cityledger-cli-refuse-', fn)

test(
  'keys new refuses a home that has a key.json unless --force',
  withDir(async (dir) => {
    const first = await cli(['keys', 'new', '--home', dir])
    assert.is(first.code, 0, first.err)
    const key = readFileSync(join(dir, 'key.json'), 'utf8')
    const again = await cli(['keys', 'new', '--home', dir])
    assert.is.not(again.code, 0, 'a second keys new must not succeed')
    assert.match(again.err, 'already has a key.json')
    assert.match(again.err, '--force')
    assert.is(readFileSync(join(dir, 'key.json'), 'utf8'), key, 'the key is untouched')
    const forced = await cli(['keys', 'new', '--home', dir, '--force'])
    assert.is(forced.code, 0, forced.err)
    assert.is.not(readFileSync(join(dir, 'key.json'), 'utf8'), key, '--force writes a new key')
  }),
)

test(
  'testnet refuses a non-empty --out unless --force; --force leaves no old data/ behind',
  withDir(async (dir) => {
    const out = join(dir, 'net')
    const first = await cli(['testnet', '--validators', '2', '--out', out])
    assert.is(first.code, 0, first.err)
    const genesis = readFileSync(join(out, 'node0', 'genesis.json'), 'utf8')
    // What a started node leaves: its store, made from this genesis.
    mkdirSync(join(out, 'node0', 'data'))
    writeFileSync(join(out, 'node0', 'data', 'CURRENT'), 'old chain')
    const again = await cli(['testnet', '--validators', '2', '--out', out])
    assert.is.not(again.code, 0, 'a second testnet into the same folder must not succeed')
    assert.match(again.err, 'not empty')
    assert.match(again.err, '--force')
    assert.is(readFileSync(join(out, 'node0', 'genesis.json'), 'utf8'), genesis, 'genesis untouched')
    assert.ok(existsSync(join(out, 'node0', 'data', 'CURRENT')), 'data untouched')

    // A folder with something else in it is refused too.
    const other = join(dir, 'other')
    mkdirSync(other)
    writeFileSync(join(other, 'notes.txt'), 'mine')
    const foreign = await cli(['testnet', '--validators', '1', '--out', other])
    assert.is.not(foreign.code, 0)

    // --force: a smaller network replaces the old one whole (no node1, no old store).
    writeFileSync(join(out, 'keep.txt'), 'not ours')
    const forced = await cli(['testnet', '--validators', '1', '--out', out, '--force'])
    assert.is(forced.code, 0, forced.err)
    assert.is.not(readFileSync(join(out, 'node0', 'genesis.json'), 'utf8'), genesis, 'a new genesis')
    assert.not.ok(existsSync(join(out, 'node0', 'data')), 'the old store is gone')
    assert.not.ok(existsSync(join(out, 'node1')), 'the old second validator is gone')
    assert.equal(readdirSync(out).sort(), ['city-key.json', 'keep.txt', 'node0'])
  }),
)

test(
  'testnet --chain-id Bad_Chain is refused at once with the rule, and writes nothing',
  withDir(async (dir) => {
    const out = join(dir, 'net')
    const r = await cli(['testnet', '--validators', '1', '--out', out, '--chain-id', 'Bad_Chain'])
    assert.is.not(r.code, 0)
    assert.match(r.err, '--chain-id')
    assert.match(r.err, 'lowercase letters, digits')
    assert.not.ok(existsSync(out), 'nothing written')
    assert.not.ok(r.err.includes('    at '), `no stack trace: ${r.err}`)
  }),
)

test.run()
