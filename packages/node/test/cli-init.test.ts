// `init` writes what its help says: a key and a complete, commented config with fixed ports, so that
// `cityledger status --home` finds the node started from that home.
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { DEFAULT_CONFIG, loadConfig } from '../src/config/index.ts'
import { cli, freePort, MAIN, withDir as withTempDir } from './cliHarness.ts'

const withDir = (fn: (dir: string) => Promise<void>) => withTempDir('cityledger-cli-init-', fn)

/** Every key path of a JSON value's objects (arrays are leaves), `$comment` left out. */
function keyPaths(v: unknown, prefix = ''): string[] {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return [prefix]
  return Object.entries(v)
    .filter(([k]) => k !== '$comment')
    .flatMap(([k, x]) => keyPaths(x, prefix ? `${prefix}.${k}` : k))
    .sort()
}

test(
  'init writes key.json and a complete, commented config.json with fixed default ports',
  withDir(async (dir) => {
    const home = join(dir, 'home')
    const r = await cli(['init', '--home', home])
    assert.is(r.code, 0, r.err)
    assert.is(statSync(join(home, 'key.json')).mode & 0o777, 0o600)
    const cfg = JSON.parse(readFileSync(join(home, 'config.json'), 'utf8'))
    assert.equal(keyPaths(cfg), keyPaths(DEFAULT_CONFIG), 'every setting is written out')
    assert.type(cfg.$comment, 'string', 'the file explains itself')
    for (const section of ['p2p', 'rpc', 'store', 'verifier', 'mempool', 'log', 'metrics'])
      assert.type(cfg[section].$comment, 'string', `${section} has a $comment`)
    assert.is(cfg.rpc.port, 26657)
    assert.equal(cfg.p2p.listen, ['/ip4/0.0.0.0/tcp/26656'])
    const loaded = loadConfig(home)
    assert.is(loaded.rpc.port, 26657, 'the loader reads the written port')
    assert.match(r.out, 'config.json')

    const again = await cli(['init', '--home', home])
    assert.is.not(again.code, 0, 'a second init is refused')
    assert.is(readFileSync(join(home, 'config.json'), 'utf8'), JSON.stringify(cfg, null, 2) + '\n')
  }),
)

test('init --help says what it writes', async () => {
  const r = await cli(['init', '--help'])
  assert.is(r.code, 0)
  for (const s of ['key.json', 'config.json', '26656', '26657', 'genesis.json']) assert.match(r.out, s)
})

test(
  'status --home finds the node started from an init home',
  withDir(async (dir) => {
    const home = join(dir, 'home')
    const [p2p, rpc] = [await freePort(), await freePort()]
    const init = await cli([
      'init',
      '--home',
      home,
      '--p2p-host',
      '127.0.0.1',
      '--p2p-port',
      String(p2p),
      '--rpc-port',
      String(rpc),
    ])
    assert.is(init.code, 0, init.err)
    const { publicKey } = JSON.parse(init.out) as { publicKey: string }
    writeFileSync(
      join(home, 'genesis.json'),
      JSON.stringify({
        chainId: 'init-test',
        genesisTime: Date.now() - 1000,
        validators: [{ name: 'v0', publicKey }],
        consensus: {},
        services: {},
      }),
    )
    let node: ChildProcess | undefined
    try {
      node = spawn(process.execPath, [MAIN, 'start', '--home', home], { stdio: ['ignore', 'pipe', 'pipe'] })
      let log = ''
      await new Promise<void>((ready, fail) => {
        node!.stdout!.on('data', (b: Buffer) => {
          log += b
          if (log.includes('"msg":"ready"')) ready()
        })
        node!.stderr!.on('data', (b: Buffer) => (log += b))
        node!.on('exit', (code) => fail(new Error(`node exited (${code}) before ready: ${log}`)))
      })
      const s = await cli(['status', '--home', home])
      assert.is(s.code, 0, s.err)
      assert.is(JSON.parse(s.out).chainId, 'init-test')
    } finally {
      if (node && node.exitCode === null) {
        const exited = new Promise((done) => node!.on('exit', done))
        node.kill('SIGTERM')
        await exited
      }
    }
    assert.ok(existsSync(join(home, 'data')))
  }),
)

test.run()
