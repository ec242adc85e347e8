import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import {
  CityError,
  type KeyPair,
  fromHex,
  generateKeyPair,
  isHex,
  publicKeyOf,
  toHex,
} from '@cityledger/core'

/**
 * A node's own settings, in `<home>/config.json`. Every field has a default (documented in
 * packages/node/README.md); a file may name only what it changes.
 */
export interface NodeConfig {
  /** Human name for logs. */
  moniker: string
  p2p: {
    /** libp2p listen addresses. */
    listen: string[]
    /** Peers to dial: validator public key (hex) and multiaddrs. */
    peers: { publicKey: string; addrs: string[] }[]
    /** Non-validator keys (hex) that may connect (observers, sync-only nodes). */
    observers: string[]
  }
  rpc: {
    host: string
    /** 0 picks a free port (printed at start). */
    port: number
    maxBodyBytes: number
    /** Longest `?wait=commit`, ms. */
    maxWaitMs: number
  }
  store: {
    /** 'level' (LevelDB on disk, the default) or 'memory' (tests; loses everything on exit). */
    backend: 'level' | 'memory'
    /** Data folder, relative to home. */
    path: string
  }
  verifier: {
    /** 'pool' (native, worker threads), 'native' (native, this thread) or 'noble' (pure JS). */
    kind: 'pool' | 'native' | 'noble'
    /** Pool workers; 0 = cores / nodesOnMachine. */
    workers: number
    /** How many nodes share this machine (sizes the pool). */
    nodesOnMachine: number
  }
  mempool: {
    maxTxs: number
    maxBytes: number
    /** Pending txs per signer (nonce window). */
    maxPerSigner: number
  }
  log: {
    level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent'
  }
  metrics: {
    enabled: boolean
  }
}

export const DEFAULT_CONFIG: NodeConfig = {
  moniker: 'validator',
  p2p: { listen: ['/ip4/127.0.0.1/tcp/0'], peers: [], observers: [] },
  rpc: { host: '127.0.0.1', port: 0, maxBodyBytes: 1024 * 1024, maxWaitMs: 30_000 },
  store: { backend: 'level', path: 'data' },
  verifier: { kind: 'pool', workers: 0, nodesOnMachine: 1 },
  mempool: { maxTxs: 100_000, maxBytes: 256 * 1024 * 1024, maxPerSigner: 64 },
  log: { level: 'info' },
  metrics: { enabled: true },
}

function merge<T>(base: T, over: unknown): T {
  if (over === undefined) return base
  if (base === null || typeof base !== 'object' || Array.isArray(base)) return over as T
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) }
  for (const [k, v] of Object.entries((over as Record<string, unknown>) ?? {})) {
    out[k] = k in out ? merge(out[k], v) : v
  }
  return out as T
}

export function loadConfig(home: string): NodeConfig {
  const path = join(home, 'config.json')
  if (!existsSync(path)) return structuredClone(DEFAULT_CONFIG)
  let json: unknown
  try {
    json = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new CityError('BAD_CONFIG', `${path}: ${(err as Error).message}`)
  }
  const cfg = merge(structuredClone(DEFAULT_CONFIG), json)
  if (!['level', 'memory'].includes(cfg.store.backend))
    throw new CityError('BAD_CONFIG', `${path}: store.backend is level or memory`)
  if (!['pool', 'native', 'noble'].includes(cfg.verifier.kind))
    throw new CityError('BAD_CONFIG', `${path}: verifier.kind is pool, native or noble`)
  if (!Number.isInteger(cfg.rpc.port) || cfg.rpc.port < 0 || cfg.rpc.port > 65535)
    throw new CityError('BAD_CONFIG', `${path}: rpc.port`)
  return cfg
}

export function writeConfig(home: string, cfg: NodeConfig): void {
  writeFileSync(join(home, 'config.json'), `${JSON.stringify(cfg, null, 2)}\n`)
}

/** `<home>/key.json`: the validator's Ed25519 key, hex, readable by the owner only. */
export function loadKey(home: string): KeyPair {
  const path = join(home, 'key.json')
  let json: { publicKey?: string; secretKey?: string }
  try {
    json = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new CityError('BAD_KEY', `cannot read ${path}: ${(err as Error).message}`)
  }
  if (!isHex(json.secretKey, 32))
    throw new CityError('BAD_KEY', `${path}: secretKey must be 64 hex characters`)
  const secretKey = fromHex(json.secretKey!)
  const publicKey = publicKeyOf(secretKey)
  if (json.publicKey && json.publicKey.toLowerCase() !== toHex(publicKey)) {
    throw new CityError('BAD_KEY', `${path}: publicKey does not match secretKey`)
  }
  return { secretKey, publicKey }
}

export function writeKey(home: string, key: KeyPair = generateKeyPair()): KeyPair {
  const path = join(home, 'key.json')
  writeFileSync(
    path,
    `${JSON.stringify({ publicKey: toHex(key.publicKey), secretKey: toHex(key.secretKey) }, null, 2)}\n`,
    { mode: 0o600 },
  )
  chmodSync(path, 0o600)
  return key
}

export function dataPath(home: string, cfg: NodeConfig): string {
  return resolve(home, cfg.store.path)
}
