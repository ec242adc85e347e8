import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { CityError, type KeyPair, generateKeyPair, toHex } from '@cityledger/core'
import {
  DEFAULT_CONFIG,
  DEFAULT_CONSENSUS,
  type Genesis,
  type NodeConfig,
  parseGenesis,
  writeConfig,
  writeKey,
  writeKeyFile,
} from '../config/index.ts'
import { defaultServiceGenesis } from './devGenesis.ts'

export interface TestnetOptions {
  validators: number
  out: string
  chainId?: string
  /** First port: validator i gets p2p basePort + 2i and RPC basePort + 2i + 1. */
  basePort?: number
  /** Explicit ports per validator (tests pick free ones). */
  ports?: { p2p: number; rpc: number }[]
  store?: 'level' | 'memory'
  consensus?: Partial<Genesis['consensus']>
  /** Deterministic keys (tests); random otherwise. */
  keySeeds?: Uint8Array[]
  genesisTime?: number
  /** Non-validator nodes that follow the chain by sync (homes `observer0`...). */
  observers?: number
  /** Ports of the observers. */
  observerPorts?: { p2p: number; rpc: number }[]
}

export interface TestnetLayout {
  homes: string[]
  keys: KeyPair[]
  genesis: Genesis
  rpc: string[]
  /** The city operator's key (admin of every service at genesis), kept in `<out>/city-key.json`. */
  cityKey: KeyPair
  observerHomes: string[]
  observerRpc: string[]
}

/** What a testnet writes at the top of its folder (the CLI's --force removes exactly these). */
const TESTNET_ENTRY = /^(node|observer)\d+$|^city-key\.json$/

/**
 * Makes `out` ready for `createTestnet` from the CLI. A folder that holds anything is refused
 * (EXISTS): writing into it would replace keys and genesis but keep each node's old `data/`, made
 * from another genesis, and those nodes would not start. With `force`, every validator and observer
 * folder and the city key of an earlier testnet are removed (stores included); other files stay.
 */
export function prepareTestnetOut(out: string, force: boolean): void {
  const dir = resolve(out)
  if (!existsSync(dir)) return
  const entries = readdirSync(dir)
  if (entries.length === 0) return
  if (!force)
    throw new CityError(
      'EXISTS',
      `${dir} is not empty: a new testnet there would replace keys and genesis but keep the old nodes' data/ (they would not start). Use another --out, or --force to delete its node*/, observer*/ and city-key.json first`,
    )
  for (const name of entries)
    if (TESTNET_ENTRY.test(name)) rmSync(join(dir, name), { recursive: true, force: true })
}

/** Writes the folders of an N-validator network on this machine: keys, configs, one shared genesis. */
export function createTestnet(opts: TestnetOptions): TestnetLayout {
  const n = opts.validators
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error('--validators must be 1..64')
  const out = resolve(opts.out)
  const base = opts.basePort ?? 26_656
  const ports =
    opts.ports ?? Array.from({ length: n }, (_, i) => ({ p2p: base + 2 * i, rpc: base + 2 * i + 1 }))
  const keys = Array.from({ length: n }, (_, i) => generateKeyPair(opts.keySeeds?.[i]))
  const cityKey = generateKeyPair()
  const homes = keys.map((_, i) => join(out, `node${i}`))
  const genesis: Genesis = {
    chainId: opts.chainId ?? 'seoul-devnet',
    genesisTime: opts.genesisTime ?? Date.now(),
    validators: keys.map((k, i) => ({ name: `validator-${i}`, publicKey: toHex(k.publicKey) })),
    consensus: { ...DEFAULT_CONSENSUS, ...opts.consensus },
    services: defaultServiceGenesis(
      cityKey.publicKey,
      keys.map((k) => k.publicKey),
    ),
  }
  // The rules `start` applies to the genesis (chain id, validators, consensus parameters), checked
  // before anything is written: a testnet its nodes would refuse is never left on disk.
  parseGenesis(genesis, 'testnet genesis')
  mkdirSync(out, { recursive: true })
  // The city operator's key stays beside the homes, never in one: no validator needs it, and a
  // validator home copied to its machine must not carry the key that administers every service.
  // Written as every key file is (mode 600, temp file and rename).
  writeKeyFile(join(out, 'city-key.json'), cityKey)
  const nObs = opts.observers ?? 0
  const obsPorts =
    opts.observerPorts ??
    Array.from({ length: nObs }, (_, i) => ({ p2p: base + 2 * (n + i), rpc: base + 2 * (n + i) + 1 }))
  const obsKeys = Array.from({ length: nObs }, () => generateKeyPair())
  const observerHomes = obsKeys.map((_, i) => join(out, `observer${i}`))
  const validatorPeers = keys.map((k, j) => ({
    publicKey: toHex(k.publicKey),
    addrs: [`/ip4/127.0.0.1/tcp/${ports[j]!.p2p}`],
  }))
  const writeHome = (
    home: string,
    key: KeyPair,
    moniker: string,
    port: { p2p: number; rpc: number },
    peers: typeof validatorPeers,
  ) => {
    mkdirSync(home, { recursive: true })
    writeKey(home, key)
    const cfg: NodeConfig = structuredClone(DEFAULT_CONFIG)
    cfg.moniker = moniker
    cfg.p2p.listen = [`/ip4/127.0.0.1/tcp/${port.p2p}`]
    cfg.p2p.peers = peers
    cfg.p2p.observers = obsKeys.map((k) => toHex(k.publicKey))
    cfg.rpc.port = port.rpc
    cfg.store.backend = opts.store ?? 'level'
    // A testnet is a test: the memory store is what was asked for.
    cfg.store.allowUnsafeMemory = cfg.store.backend === 'memory'
    // Every client of a testnet runs on this machine (tools, tests, benchmarks' load generators):
    // loopback is exempt from the per-client limits and the connection cap. Other addresses (e.g.
    // 127.0.0.2) are not.
    cfg.rpc.exemptClients = ['127.0.0.1', '::1', '::ffff:127.0.0.1']
    cfg.verifier.nodesOnMachine = n + nObs
    writeConfig(home, cfg)
    writeFileSync(join(home, 'genesis.json'), `${JSON.stringify(genesis, null, 2)}\n`)
  }
  homes.forEach((home, i) =>
    writeHome(
      home,
      keys[i]!,
      `validator-${i}`,
      ports[i]!,
      validatorPeers.filter((_, j) => j !== i),
    ),
  )
  observerHomes.forEach((home, i) =>
    writeHome(home, obsKeys[i]!, `observer-${i}`, obsPorts[i]!, validatorPeers),
  )
  return {
    homes,
    keys,
    genesis,
    rpc: ports.map((p) => `http://127.0.0.1:${p.rpc}`),
    cityKey,
    observerHomes,
    observerRpc: obsPorts.map((p) => `http://127.0.0.1:${p.rpc}`),
  }
}
