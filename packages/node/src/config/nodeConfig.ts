import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
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
    /** Requests per second per client address (health and metrics exempt); 0 turns the limit off. */
    rateLimitPerSecond: number
    /** Requests a client may make at once before the rate applies. */
    rateLimitBurst: number
    /**
     * Client addresses no per-client limit applies to and the connection cap never turns away (the
     * operator's tools or reverse proxy; `testnet` writes the loopback addresses).
     */
    exemptClients: string[]
    /** Most open TCP connections of clients not exempt. */
    maxConnections: number
    /** Most open TCP connections from one client address. */
    maxConnectionsPerClient: number
    /** Time a client has to send a whole request, headers and body, ms. */
    requestTimeoutMs: number
    /** Time a client has to send the request headers, ms (at most requestTimeoutMs). */
    headersTimeoutMs: number
    /** Idle time after which a keep-alive connection is closed, ms. */
    keepAliveTimeoutMs: number
    /** Most open `GET /v1/events` streams; the next gets 503 TOO_MANY_SUBSCRIBERS. */
    maxEventSubscribers: number
    /** Bytes of events a stream may fall behind before it is disconnected. */
    maxEventBacklogBytes: number
    /** At shutdown, time requests in progress get before every connection is closed, ms. */
    shutdownGraceMs: number
  }
  store: {
    /** 'level' (LevelDB on disk, the default) or 'memory' (tests; loses everything on exit). */
    backend: 'level' | 'memory'
    /** Data folder, relative to home. */
    path: string
    /**
     * `start` refuses the memory backend (it acknowledges commits it loses on exit) unless this is
     * true or `--unsafe-memory-store` is given. Testnets written with the memory store set it.
     */
    allowUnsafeMemory: boolean
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
  rpc: {
    host: '127.0.0.1',
    port: 0,
    maxBodyBytes: 1024 * 1024,
    maxWaitMs: 30_000,
    rateLimitPerSecond: 100,
    rateLimitBurst: 200,
    exemptClients: [],
    maxConnections: 512,
    maxConnectionsPerClient: 64,
    requestTimeoutMs: 10_000,
    headersTimeoutMs: 5_000,
    keepAliveTimeoutMs: 5_000,
    maxEventSubscribers: 256,
    maxEventBacklogBytes: 1024 * 1024,
    shutdownGraceMs: 1_000,
  },
  store: { backend: 'level', path: 'data', allowUnsafeMemory: false },
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
  checkRpcLimits(cfg.rpc, path)
  if (typeof cfg.store.allowUnsafeMemory !== 'boolean')
    throw new CityError('BAD_CONFIG', `${path}: store.allowUnsafeMemory is true or false`)
  return cfg
}

const RPC_INTEGERS = [
  'maxBodyBytes',
  'maxWaitMs',
  'rateLimitBurst',
  'maxConnections',
  'maxConnectionsPerClient',
  'requestTimeoutMs',
  'headersTimeoutMs',
  'keepAliveTimeoutMs',
  'maxEventSubscribers',
  'maxEventBacklogBytes',
  'shutdownGraceMs',
] as const

function checkRpcLimits(rpc: NodeConfig['rpc'], path: string): void {
  for (const k of RPC_INTEGERS)
    if (!Number.isSafeInteger(rpc[k]) || rpc[k] < 0)
      throw new CityError('BAD_CONFIG', `${path}: rpc.${k} must be a non-negative integer`)
  if (
    typeof rpc.rateLimitPerSecond !== 'number' ||
    !(rpc.rateLimitPerSecond >= 0) ||
    !Number.isFinite(rpc.rateLimitPerSecond)
  )
    throw new CityError('BAD_CONFIG', `${path}: rpc.rateLimitPerSecond must be a number >= 0 (0: no limit)`)
  if (!Array.isArray(rpc.exemptClients) || !rpc.exemptClients.every((a) => typeof a === 'string'))
    throw new CityError('BAD_CONFIG', `${path}: rpc.exemptClients is a list of client addresses`)
  if (rpc.requestTimeoutMs > 0 && rpc.headersTimeoutMs > rpc.requestTimeoutMs)
    throw new CityError('BAD_CONFIG', `${path}: rpc.headersTimeoutMs must be at most rpc.requestTimeoutMs`)
  if (rpc.maxEventSubscribers >= rpc.maxConnections && rpc.maxConnections > 0)
    throw new CityError('BAD_CONFIG', `${path}: rpc.maxEventSubscribers must be below rpc.maxConnections`)
}

export function writeConfig(home: string, cfg: NodeConfig): void {
  writeFileSync(join(home, 'config.json'), `${JSON.stringify(cfg, null, 2)}\n`)
}

/** `<home>/key.json`: the validator's Ed25519 key, hex, readable by the owner only. */
export function loadKey(home: string): KeyPair {
  return readKeyFile(join(home, 'key.json'))
}

/**
 * Reads a key file (`{ secretKey, publicKey? }`, hex). Refused, as ssh refuses a private key, when
 * group or others may read it (UNSAFE_KEY_FILE); malformed files are BAD_KEY. No message ever
 * quotes the file's contents: JSON.parse's own message would echo the first characters of the key.
 */
export function readKeyFile(path: string): KeyPair {
  let text: string
  try {
    if (process.platform !== 'win32') {
      const mode = statSync(path).mode & 0o777
      if (mode & 0o077)
        throw new CityError(
          'UNSAFE_KEY_FILE',
          `${path} may be read by group or others (mode ${mode.toString(8).padStart(4, '0')}); a secret key must be private: chmod 600 ${path}`,
          { path, mode },
        )
    }
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if (err instanceof CityError) throw err
    throw new CityError('BAD_KEY', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new CityError(
      'BAD_KEY',
      `${path}: not valid JSON (contents not shown: the file holds a secret key)`,
    )
  }
  const { secretKey: sk, publicKey: pk } = (json ?? {}) as { secretKey?: unknown; publicKey?: unknown }
  if (!isHex(sk, 32)) throw new CityError('BAD_KEY', `${path}: secretKey must be 64 hex characters`)
  const secretKey = fromHex(sk)
  const publicKey = publicKeyOf(secretKey)
  if (pk !== undefined && (typeof pk !== 'string' || pk.toLowerCase() !== toHex(publicKey)))
    throw new CityError('BAD_KEY', `${path}: publicKey does not match secretKey`)
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
