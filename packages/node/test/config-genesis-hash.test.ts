// The genesis hash is of a canonical encoding: the same genesis with its keys in another order (as
// `jq -S` writes it) has the same hash (issue 15, defect 5). A data folder made under the hash of
// earlier versions is refused at start, untouched.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { allServices } from '@cityledger/apps'
import { ChainStore, openLevelKv, toHex } from '@cityledger/core'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createTestnet } from '../src/cli/testnet.ts'
import {
  genesisHash,
  legacyGenesisHash,
  loadConfig,
  loadGenesis,
  loadKey,
  parseGenesis,
} from '../src/config/index.ts'
import { createLogger } from '../src/log/index.ts'
import { createNode } from '../src/node/index.ts'

const KEY_A = 'ab'.repeat(32)
const KEY_B = 'cd'.repeat(32)

const genesis = () => ({
  chainId: 'hash-test',
  genesisTime: 1_700_000_000_000,
  validators: [
    { name: 'a', publicKey: KEY_A },
    { name: 'b', publicKey: KEY_B },
  ],
  consensus: { checkpointInterval: 8, watermarkWindow: 32 },
  services: {
    tokens: { admin: `0x${KEY_A}`, limits: { perTx: 10, daily: 100 }, names: ['x', 'y'] },
    identity: { admins: [`0x${KEY_B}`], '10': 1, '2': 2 },
  },
})

/** `v` with the keys of every object in reverse order (arrays keep theirs). */
function reversed(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reversed)
  if (v === null || typeof v !== 'object') return v
  return Object.fromEntries(
    Object.entries(v as Record<string, unknown>)
      .reverse()
      .map(([k, x]) => [k, reversed(x)]),
  )
}

/** `v` as `jq -S` writes it: the keys of every object sorted. */
function sorted(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sorted)
  if (v === null || typeof v !== 'object') return v
  return Object.fromEntries(
    Object.keys(v as Record<string, unknown>)
      .sort()
      .map((k) => [k, sorted((v as Record<string, unknown>)[k])]),
  )
}

const hashOf = (json: unknown) => toHex(genesisHash(parseGenesis(JSON.parse(JSON.stringify(json)))))

test('the same genesis with its keys in any order has the same hash', () => {
  const h = hashOf(genesis())
  assert.is(hashOf(sorted(genesis())), h, 'jq -S')
  assert.is(hashOf(reversed(genesis())), h, 'every object reversed')
  const g = genesis()
  assert.is(hashOf({ ...g, consensus: { watermarkWindow: 32, checkpointInterval: 8 } }), h)
})

test('what the chain runs on changes the hash; notes and spellings of the same value do not', () => {
  const h = hashOf(genesis())
  const g = genesis()
  assert.is.not(
    hashOf({ ...g, validators: [...g.validators].reverse() }),
    h,
    'validator order is the primary order',
  )
  assert.is.not(
    hashOf({ ...g, services: { ...g.services, tokens: { ...g.services.tokens, admin: `0x${KEY_B}` } } }),
    h,
  )
  assert.is.not(hashOf({ ...g, consensus: { ...g.consensus, maxBlockTxs: 10 } }), h)
  assert.is.not(hashOf({ ...g, genesisTime: g.genesisTime + 1 }), h)
  assert.is(hashOf({ ...g, consensus: { ...g.consensus, maxBlockTxs: 5000 } }), h, 'a default written out')
  assert.is(hashOf({ $schema: './genesis.schema.json', $comment: 'a note', ...g }), h)
  const upper = {
    ...g,
    services: { ...g.services, tokens: { ...g.services.tokens, admin: `0x${KEY_A.toUpperCase()}` } },
  }
  assert.is(hashOf(upper), h, 'bytes in upper-case hex are the same bytes')
})

test('the canonical encoding is pinned (a change here makes every new chain another chain)', () => {
  // sha256(msgpack({ chainId, consensus, format: 'cityledger/genesis/v2', genesisTime, services,
  // validators })), the keys of every map sorted by their UTF-8 bytes ("10" before "2"), hex in
  // services as bytes, defaults filled in. Checked against a separate msgpack encoder written from
  // that description (integers of 2^32 and more as float64, as core's encoder writes them).
  assert.is(hashOf(genesis()), 'd5233c286c91f48cb7a6f47ac10a3754da70fe98c23fde6c05a1337c48cda338')
})

test('a loaded genesis is hashed once; a top-level field replaced since is hashed again', () => {
  const g = parseGenesis(genesis())
  const first = genesisHash(g)
  first.fill(0)
  assert.is(toHex(genesisHash(g)), hashOf(genesis()), 'the caller gets a copy')
  g.services = { ...g.services, tokens: { admin: `0x${KEY_B}` } }
  assert.is.not(toHex(genesisHash(g)), hashOf(genesis()))
  assert.is(toHex(genesisHash(g)), toHex(genesisHash(parseGenesis({ ...genesis(), services: g.services }))))
})

test('a data folder made under the earlier hash is refused at start and left as it was', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cityledger-genesis-hash-'))
  try {
    const layout = createTestnet({
      validators: 1,
      out: dir,
      chainId: 'hash-test',
      ports: [{ p2p: 0, rpc: 0 }],
    })
    const home = layout.homes[0]!
    const g = loadGenesis(join(home, 'genesis.json'))
    const dataDir = join(home, 'data')
    const old = legacyGenesisHash(g)
    assert.is.not(toHex(old), toHex(genesisHash(g)), 'the services in a testnet genesis hash differently now')
    // What an earlier version left: height 0 under the old hash.
    const kv = await openLevelKv(dataDir)
    const before = await ChainStore.open(kv, { chainId: g.chainId })
    await before.initGenesis({ chainId: g.chainId, genesisHash: old, stateWrites: new Map() })
    await kv.close()

    const config = loadConfig(home)
    config.verifier.kind = 'native'
    const err = await createNode({
      config,
      genesis: g,
      key: loadKey(home),
      dataDir,
      logger: createLogger({ level: 'silent' }),
      services: allServices,
    }).then(
      () => undefined,
      (e: Error) => e,
    )
    assert.ok(err, 'refused')
    assert.is((err as Error & { code?: string }).code, 'GENESIS_MISMATCH')
    assert.match(err.message, 'made from this genesis file by an earlier version')
    assert.match(err.message, toHex(old))

    const kv2 = await openLevelKv(dataDir)
    const after = await ChainStore.open(kv2, { chainId: g.chainId })
    assert.is(after.height(), 0)
    assert.is(toHex(after.genesisHash!), toHex(old), 'the store keeps the hash it was made with')
    await kv2.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
