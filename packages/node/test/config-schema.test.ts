// The config and genesis loaders refuse typos and wrong types: one error naming every bad field with
// what it expects (issue 15, defect 4), and everything the repository itself writes still loads.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CityError } from '@cityledger/core'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { initConfig } from '../src/cli/initConfig.ts'
import { createTestnet } from '../src/cli/testnet.ts'
import {
  DEFAULT_CONFIG,
  loadConfig,
  loadGenesis,
  validateConfigFile,
  validateGenesisFile,
} from '../src/config/index.ts'

function withDir(fn: (dir: string) => void) {
  return () => {
    const dir = mkdtempSync(join(tmpdir(), 'cityledger-config-'))
    try {
      fn(dir)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

function refusal(fn: () => unknown): CityError {
  try {
    fn()
  } catch (err) {
    assert.instance(err, CityError, String(err))
    return err as CityError
  }
  assert.unreachable('expected a refusal')
  throw new Error('unreachable')
}

const KEY = 'ab'.repeat(32)
const genesisJson = (over: Record<string, unknown> = {}) => ({
  chainId: 'test-chain',
  genesisTime: 1,
  validators: [{ name: 'v0', publicKey: KEY }],
  ...over,
})

test(
  'a config with typos and wrong types is refused with one error naming every field',
  withDir((home) => {
    writeFileSync(
      join(home, 'config.json'),
      JSON.stringify({ rcp: { port: 1 }, rpc: { prot: 1 }, mempool: { maxTxs: 'lots' } }),
    )
    const err = refusal(() => loadConfig(home))
    assert.is(err.code, 'BAD_CONFIG')
    for (const field of ['rcp', 'rpc.prot', 'mempool.maxTxs']) assert.match(err.message, field)
    assert.match(err.message, 'unknown field')
    assert.match(err.message, 'an integer')
    const problems = (err.details as { problems: { field: string }[] }).problems
    assert.equal(problems.map((p) => p.field).sort(), ['mempool.maxTxs', 'rcp', 'rpc.prot'])
    assert.equal(validateConfigFile(join(home, 'config.json')), problems)
  }),
)

test(
  'wrong types at every depth name the path and the expected type',
  withDir((home) => {
    const path = join(home, 'config.json')
    const cases: [unknown, string, string][] = [
      [{ rpc: { port: 70000 } }, 'rpc.port', 'an integer in 0..65535'],
      [{ rpc: { port: '26657' } }, 'rpc.port', 'an integer'],
      [{ store: { backend: 'rocks' } }, 'store.backend', '"level" or "memory"'],
      [{ log: { level: 'loud' } }, 'log.level', '"info"'],
      [{ metrics: { enabled: 'yes' } }, 'metrics.enabled', 'true or false'],
      [{ p2p: { peers: [{ publicKey: 'zz', addrs: [] }] } }, 'p2p.peers[0].publicKey', '64 hex'],
      [
        { p2p: { peers: [{ publicKey: KEY, addrs: [], addr: [] }] } },
        'p2p.peers[0].addr',
        'did you mean "addrs"',
      ],
      [{ p2p: { listen: '/ip4/0.0.0.0/tcp/1' } }, 'p2p.listen', 'a list'],
      [{ p2p: { listen: ['127.0.0.1:26656'] } }, 'p2p.listen[0]', 'not a multiaddr'],
      [
        { p2p: { peers: [{ publicKey: KEY, addrs: ['/ip4/999.0.0.1/tcp/1'] }] } },
        'p2p.peers[0].addrs[0]',
        'IPv4',
      ],
      [{ rpc: null }, 'rpc', 'an object'],
      [[], '(top level)', 'an object'],
    ]
    for (const [json, field, expect] of cases) {
      writeFileSync(path, JSON.stringify(json))
      const problems = validateConfigFile(path)
      assert.is(problems.length, 1, JSON.stringify({ json, problems }))
      assert.is(problems[0]!.field, field)
      assert.match(problems[0]!.message, expect)
      assert.is(refusal(() => loadConfig(home)).code, 'BAD_CONFIG')
    }
  }),
)

test(
  'cross-field rules are problems in the same list',
  withDir((home) => {
    const path = join(home, 'config.json')
    writeFileSync(path, JSON.stringify({ rpc: { requestTimeoutMs: 100, headersTimeoutMs: 200, port: -1 } }))
    const fields = validateConfigFile(path).map((p) => p.field)
    assert.equal(fields.sort(), ['rpc.headersTimeoutMs', 'rpc.port'])
  }),
)

test(
  'a file that is not JSON or cannot be read is one problem, not a crash',
  withDir((home) => {
    const path = join(home, 'config.json')
    writeFileSync(path, '{"rpc": ')
    assert.is(validateConfigFile(path).length, 1)
    assert.is(refusal(() => loadConfig(home)).code, 'BAD_CONFIG')
    assert.match(validateConfigFile(join(home, 'missing.json'))[0]!.message, 'cannot read')
    assert.match(validateGenesisFile(join(home, 'missing.json'))[0]!.message, 'cannot read')
  }),
)

test(
  'the defaults, a "$schema" line, init\'s commented config and every testnet file validate',
  withDir((dir) => {
    const layout = createTestnet({
      validators: 2,
      out: dir,
      observers: 1,
      store: 'memory',
      ports: [
        { p2p: 0, rpc: 0 },
        { p2p: 0, rpc: 0 },
      ],
      observerPorts: [{ p2p: 0, rpc: 0 }],
      consensus: { blockIntervalMs: 20, checkpointInterval: 8, watermarkWindow: 32 },
    })
    for (const home of [...layout.homes, ...layout.observerHomes]) {
      assert.equal(validateConfigFile(join(home, 'config.json')), [], home)
      assert.equal(validateGenesisFile(join(home, 'genesis.json')), [], home)
      loadConfig(home)
      loadGenesis(join(home, 'genesis.json'))
    }
    const path = join(dir, 'config.json')
    writeFileSync(path, JSON.stringify({ $schema: './config.schema.json', ...DEFAULT_CONFIG }))
    assert.equal(validateConfigFile(path), [])
    assert.equal(loadConfig(dir), DEFAULT_CONFIG)
    writeFileSync(path, JSON.stringify(initConfig({ p2pHost: '10.0.0.1', rpcPort: 8080 })))
    assert.equal(validateConfigFile(path), [], 'init writes $comment in every section')
    assert.is(loadConfig(dir).rpc.port, 8080)
  }),
)

test(
  'a genesis with typos and wrong types is refused with one error naming every field',
  withDir((dir) => {
    const path = join(dir, 'genesis.json')
    writeFileSync(
      path,
      JSON.stringify(
        genesisJson({
          chainID: 'x',
          genesisTime: 'now',
          consensus: { blockIntervalMS: 10, maxBlockTxs: 0 },
          validators: [{ name: 'v0', publicKey: KEY, power: 1 }],
        }),
      ),
    )
    const err = refusal(() => loadGenesis(path))
    assert.is(err.code, 'BAD_GENESIS')
    const fields = validateGenesisFile(path).map((p) => p.field)
    assert.equal(fields.sort(), [
      'chainID',
      'consensus.blockIntervalMS',
      'consensus.maxBlockTxs',
      'genesisTime',
      'validators[0].power',
    ])
    for (const f of fields) assert.match(err.message, f)
  }),
)

test(
  'genesis rules beyond types: duplicate validators, the watermark window, float amounts',
  withDir((dir) => {
    const path = join(dir, 'genesis.json')
    writeFileSync(
      path,
      JSON.stringify(
        genesisJson({
          validators: [
            { name: 'a', publicKey: KEY },
            { name: 'b', publicKey: KEY.toUpperCase() },
          ],
          consensus: { checkpointInterval: 16, watermarkWindow: 20 },
          services: { tokens: { supply: 1.5 } },
        }),
      ),
    )
    const fields = validateGenesisFile(path).map((p) => p.field)
    assert.equal(fields.sort(), [
      'consensus.watermarkWindow',
      'services.tokens.supply',
      'validators[1].publicKey',
    ])
    writeFileSync(path, JSON.stringify(genesisJson()))
    assert.equal(validateGenesisFile(path), [])
    assert.is(loadGenesis(path).consensus.blockIntervalMs, 200, 'defaults fill what the file leaves out')
  }),
)

test(
  'a partial file is merged over the defaults (no field lost by validation)',
  withDir((dir) => {
    const cfg = structuredClone(DEFAULT_CONFIG)
    cfg.rpc.port = 26657
    cfg.store.path = '/var/lib/cityledger'
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ rpc: { port: 26657 }, store: { path: cfg.store.path } }),
    )
    assert.equal(loadConfig(dir), cfg)
  }),
)

test.run()
