import { existsSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { CityError } from '@cityledger/core'
import { multiaddr } from '@multiformats/multiaddr'
import { LOG_LEVELS, LOG_MODULES, type LogFormat, type LogLevel, type LogModule } from '../log/index.ts'
import {
  type ConfigProblem,
  HEX32,
  type JsonSchema,
  integer,
  list,
  object,
  problemsText,
  readJsonFile,
  schemaProblems,
  text,
} from './validate.ts'
import { tlsProblems } from './tlsFiles.ts'

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
    /** Blocks back a `GET /v1/events` client may resume from (Last-Event-ID, ?fromHeight=); older: 410. */
    maxEventReplayBlocks: number
    /** Most envelopes in one `POST /v1/txs/batch`; more is 413 TOO_LARGE, nothing admitted. */
    maxBatchTxs: number
    /** Largest `POST /v1/txs/batch` body, bytes. */
    maxBatchBytes: number
    /** Most blocks in one `GET /v1/blocks?from=&to=` answer. */
    maxRangeBlocks: number
    /** Most encoded block bytes one range answer reads (its first block always goes). */
    maxRangeBytes: number
    /** At shutdown, time requests in progress get before every connection is closed, ms. */
    shutdownGraceMs: number
    /** Browser access: origins allowed to call the RPC (`*` for any); none (the default) turns CORS off. */
    cors: { origins: string[] }
    /**
     * HTTPS: PEM certificate (chain) and private key files, relative to the home (or absolute). Both
     * or neither; empty (the default) serves plain HTTP. `loadConfig` resolves them to absolute paths.
     */
    tls: { certFile: string; keyFile: string }
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
    /**
     * Blocks of history kept: after commits the node prunes blocks, certificates, results, events and
     * tx index below `head - retainBlocks + 1` (at most once every 64 blocks, so up to 63 more are kept
     * between prunes; at least 2 always), and the state history (tree pages) of pruned heights at most
     * once every 1024 blocks. 0 (the default) is archive mode: everything is kept.
     */
    retainBlocks: number
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
    /**
     * Clients are refused (MEMPOOL_FULL, 429) once this many blocks' worth of txs, at the node's
     * current block cap, are pending; 0 turns it off (see node/backlog.ts).
     */
    backlogBlocks: number
    /** The backlog limit is never below this many pending txs. */
    backlogMinTxs: number
  }
  consensus: {
    /**
     * true (the default): without txs the primary proposes an empty block every third of the
     * view-change timeout (about one a second). false: only once every `heartbeatMs` while idle, and
     * after the batching delay as soon as txs arrive; the replica then waits heartbeat + view timeout
     * for a block while its mempool is empty. Set it alike on every validator (packages/node/README.md,
     * "Idle chains").
     */
    emptyBlocks: boolean
    /** With `emptyBlocks: false`: the longest time without a block while idle, ms. */
    heartbeatMs: number
  }
  log: {
    level: LogLevel
    /** `json` (one object a line, for log stores) or `pretty` (for humans). */
    format: LogFormat
    /** A level per module (`consensus`, `p2p`, ...); modules not named log at `level`. */
    modules: Partial<Record<LogModule, LogLevel>>
  }
  metrics: {
    enabled: boolean
  }
  sync: {
    /**
     * Start an empty data folder from the state of a certified recent height fetched from the
     * validators (state sync, checked against the certified state root) instead of replaying every
     * block; block sync does the rest. Ignored when the folder holds a store. Needs store.backend level.
     */
    stateSync: boolean
  }
  /** External validator signer (an HSM binding); empty module: key.json signs. */
  signer: {
    /** ES module exporting `createSigner(options)`, relative to the home (or absolute). */
    module: string
    /** Handed to `createSigner` as given. */
    options: Record<string, unknown>
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
    maxEventReplayBlocks: 1000,
    maxBatchTxs: 512,
    maxBatchBytes: 4 * 1024 * 1024,
    maxRangeBlocks: 100,
    maxRangeBytes: 8 * 1024 * 1024,
    shutdownGraceMs: 1_000,
    cors: { origins: [] },
    tls: { certFile: '', keyFile: '' },
  },
  store: { backend: 'level', path: 'data', allowUnsafeMemory: false, retainBlocks: 0 },
  verifier: { kind: 'pool', workers: 0, nodesOnMachine: 1 },
  mempool: {
    maxTxs: 100_000,
    maxBytes: 256 * 1024 * 1024,
    maxPerSigner: 64,
    backlogBlocks: 1,
    backlogMinTxs: 1_000,
  },
  consensus: { emptyBlocks: true, heartbeatMs: 30_000 },
  log: { level: 'info', format: 'json', modules: {} },
  metrics: { enabled: true },
  sync: { stateSync: false },
  signer: { module: '', options: {} },
}

const HEX_KEY = text('Ed25519 public key, 64 hex characters', { pattern: HEX32 })
const d = DEFAULT_CONFIG
const rpcInt = (k: keyof NodeConfig['rpc'], description: string, min = 0) =>
  integer(description, min, undefined, d.rpc[k] as number)

/**
 * JSON Schema of `<home>/config.json`: every field optional (defaults as `default`), unknown fields
 * refused. Published as packages/node/schema/config.schema.json (a test keeps the two equal).
 */
export const CONFIG_SCHEMA: JsonSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'cityledger node config (<home>/config.json)',
  ...object("A node's own settings; every field is optional and has a default.", {
    $schema: text('the schema this file follows (for editors); ignored'),
    moniker: text('human name for logs', { default: d.moniker }),
    p2p: object('peer-to-peer network', {
      listen: list('libp2p listen addresses (multiaddrs)', text('a multiaddr', { minLength: 1 }), {
        default: d.p2p.listen,
      }),
      peers: list(
        'peers to dial: validator public key and multiaddrs',
        object(
          'one peer',
          { publicKey: HEX_KEY, addrs: list('its multiaddrs', text('a multiaddr', { minLength: 1 })) },
          { required: ['publicKey', 'addrs'] },
        ),
        { default: d.p2p.peers },
      ),
      observers: list('non-validator keys that may connect (observers, sync-only nodes)', HEX_KEY, {
        default: d.p2p.observers,
      }),
    }),
    rpc: object('HTTP RPC server', {
      host: text('address to bind', { minLength: 1, default: d.rpc.host }),
      port: integer('TCP port; 0 picks a free port (printed at start)', 0, 65535, d.rpc.port),
      maxBodyBytes: rpcInt('maxBodyBytes', 'largest request body, bytes'),
      maxWaitMs: rpcInt('maxWaitMs', 'longest ?wait=commit, ms'),
      rateLimitPerSecond: {
        description:
          'requests per second per client address (health and metrics exempt); 0 turns the limit off',
        type: 'number',
        minimum: 0,
        default: d.rpc.rateLimitPerSecond,
      },
      rateLimitBurst: rpcInt('rateLimitBurst', 'requests a client may make at once before the rate applies'),
      exemptClients: list(
        'client addresses no per-client limit applies to and the connection cap never turns away',
        text('an IP address', { minLength: 1 }),
        { default: d.rpc.exemptClients },
      ),
      maxConnections: rpcInt('maxConnections', 'most open TCP connections of clients not exempt'),
      maxConnectionsPerClient: rpcInt(
        'maxConnectionsPerClient',
        'most open TCP connections from one client address',
      ),
      requestTimeoutMs: rpcInt('requestTimeoutMs', 'time a client has to send a whole request, ms'),
      headersTimeoutMs: rpcInt(
        'headersTimeoutMs',
        'time a client has to send the request headers, ms (at most requestTimeoutMs)',
      ),
      keepAliveTimeoutMs: rpcInt(
        'keepAliveTimeoutMs',
        'idle time after which a keep-alive connection is closed, ms',
      ),
      maxEventSubscribers: rpcInt(
        'maxEventSubscribers',
        'most open GET /v1/events streams (below maxConnections)',
      ),
      maxEventBacklogBytes: rpcInt(
        'maxEventBacklogBytes',
        'bytes of events a stream may fall behind before it is disconnected',
      ),
      maxEventReplayBlocks: rpcInt(
        'maxEventReplayBlocks',
        'blocks back a GET /v1/events client may resume from (Last-Event-ID or ?fromHeight=); older gets 410',
      ),
      maxBatchTxs: rpcInt('maxBatchTxs', 'most envelopes in one POST /v1/txs/batch (more: 413)', 1),
      maxBatchBytes: rpcInt('maxBatchBytes', 'largest POST /v1/txs/batch body, bytes', 1),
      maxRangeBlocks: rpcInt('maxRangeBlocks', 'most blocks in one GET /v1/blocks?from=&to= answer', 1),
      maxRangeBytes: rpcInt(
        'maxRangeBytes',
        'most encoded block bytes one GET /v1/blocks range answer reads (its first block always goes)',
        1,
      ),
      shutdownGraceMs: rpcInt(
        'shutdownGraceMs',
        'at shutdown, time requests in progress get before every connection is closed, ms',
      ),
      cors: object('cross-origin access for browser apps (CORS); off while origins is empty', {
        origins: list(
          'origins allowed to call the RPC, exactly as browsers send them (scheme://host[:port]), or "*" for any',
          text('an origin such as https://app.example.org, or *', { pattern: '^(\\*|https?://[^/\\s]+)$' }),
          { default: d.rpc.cors.origins },
        ),
      }),
      tls: object('HTTPS for the RPC; both files or neither (empty: plain HTTP)', {
        certFile: text('PEM certificate (chain) file, relative to the home (or absolute)', {
          default: d.rpc.tls.certFile,
        }),
        keyFile: text('PEM private key file, relative to the home (or absolute)', {
          default: d.rpc.tls.keyFile,
        }),
      }),
    }),
    store: object('block and state store', {
      backend: {
        description: "'level' (LevelDB on disk) or 'memory' (tests; loses everything on exit)",
        enum: ['level', 'memory'],
        default: d.store.backend,
      },
      path: text('data folder, relative to the home (or absolute)', { minLength: 1, default: d.store.path }),
      allowUnsafeMemory: {
        description: 'let start run the memory store (testnets written with it set this)',
        type: 'boolean',
        default: d.store.allowUnsafeMemory,
      },
      retainBlocks: integer(
        'blocks of history kept (older blocks, certificates, results and tx index are pruned, at most every 64 blocks, and the state history of pruned heights at most every 1024); 0 = archive, keep all',
        0,
        undefined,
        d.store.retainBlocks,
      ),
    }),
    verifier: object('signature verification', {
      kind: {
        description: "'pool' (native, worker threads), 'native' (native, this thread) or 'noble' (pure JS)",
        enum: ['pool', 'native', 'noble'],
        default: d.verifier.kind,
      },
      workers: integer('pool workers; 0 = cores / nodesOnMachine', 0, 1024, d.verifier.workers),
      nodesOnMachine: integer(
        'how many nodes share this machine (sizes the pool)',
        1,
        1024,
        d.verifier.nodesOnMachine,
      ),
    }),
    mempool: object('pending transactions', {
      maxTxs: integer('most pending txs', 1, undefined, d.mempool.maxTxs),
      maxBytes: integer('most bytes of pending txs', 1, undefined, d.mempool.maxBytes),
      maxPerSigner: integer('pending txs per signer (nonce window)', 1, undefined, d.mempool.maxPerSigner),
      backlogBlocks: integer(
        "clients are refused once this many blocks' worth of txs are pending; 0 = off",
        0,
        1000,
        d.mempool.backlogBlocks,
      ),
      backlogMinTxs: integer('the backlog limit is never below this', 1, undefined, d.mempool.backlogMinTxs),
    }),
    consensus: object('block production while idle (set alike on every validator)', {
      emptyBlocks: {
        description:
          'true: an empty block about every second without txs; false: one per heartbeatMs while idle, at once when txs arrive',
        type: 'boolean',
        default: d.consensus.emptyBlocks,
      },
      heartbeatMs: integer(
        'with emptyBlocks false: longest time without a block while idle, ms (a crashed primary is replaced after heartbeatMs + the view-change timeout while idle)',
        100,
        86_400_000,
        d.consensus.heartbeatMs,
      ),
    }),
    log: object('logging', {
      level: { description: 'pino level', enum: [...LOG_LEVELS], default: d.log.level },
      format: {
        description: 'json: one JSON object a line (log stores); pretty: for humans',
        enum: ['json', 'pretty'],
        default: d.log.format,
      },
      modules: {
        description: `a level per module (${LOG_MODULES.join(', ')}); the others log at level`,
        type: 'object',
        propertyNames: { enum: [...LOG_MODULES] },
        additionalProperties: { enum: [...LOG_LEVELS] },
        default: d.log.modules,
      },
    }),
    metrics: object('Prometheus metrics at GET /metrics', {
      enabled: { description: 'serve /metrics', type: 'boolean', default: d.metrics.enabled },
    }),
    sync: object('catching up with the chain', {
      stateSync: {
        description:
          'start an empty data folder from the certified state of a recent height fetched from the validators (state sync) instead of replaying every block',
        type: 'boolean',
        default: d.sync.stateSync,
      },
    }),
    signer: object(
      'validator signer: an ES module exporting createSigner(options), e.g. an HSM binding (empty: key.json signs)',
      {
        module: text('path of the signer module, relative to the home (or absolute)', {
          default: d.signer.module,
        }),
        options: {
          description: 'handed to createSigner as given',
          type: 'object',
          default: d.signer.options,
        },
      },
    ),
  }),
}

// Defaults below, the file's values over them; arrays are replaced, not merged. `$schema` and
// `$comment` are the file's own notes, not settings.
function merge<T>(base: T, over: unknown): T {
  if (over === undefined) return base
  if (base === null || typeof base !== 'object' || Array.isArray(base)) return over as T
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) }
  for (const [k, v] of Object.entries((over as Record<string, unknown>) ?? {})) {
    if (k.startsWith('$')) continue
    out[k] = k in out ? merge(out[k], v) : v
  }
  return out as T
}

/**
 * Every problem of a parsed config file: schema (unknown fields, types, ranges) and the rules
 * between fields; with `home`, also files it names that cannot be used (the TLS pair). Empty when
 * the file is good.
 */
export function configProblems(json: unknown, home?: string): ConfigProblem[] {
  const problems = schemaProblems(CONFIG_SCHEMA, json)
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return problems
  const { rpc, p2p } = merge(structuredClone(DEFAULT_CONFIG), json)
  const num = (v: unknown): v is number => typeof v === 'number'
  const add = (field: string, message: string) => {
    if (!problems.some((p) => p.field === field)) problems.push({ field, message })
  }
  if (num(rpc.requestTimeoutMs) && num(rpc.headersTimeoutMs))
    if (rpc.requestTimeoutMs > 0 && rpc.headersTimeoutMs > rpc.requestTimeoutMs)
      add('rpc.headersTimeoutMs', `must be at most rpc.requestTimeoutMs (${rpc.requestTimeoutMs})`)
  if (num(rpc.maxEventSubscribers) && num(rpc.maxConnections))
    if (rpc.maxConnections > 0 && rpc.maxEventSubscribers >= rpc.maxConnections)
      add('rpc.maxEventSubscribers', `must be below rpc.maxConnections (${rpc.maxConnections})`)
  if (rpc.tls && typeof rpc.tls.certFile === 'string' && typeof rpc.tls.keyFile === 'string') {
    const { certFile, keyFile } = rpc.tls
    if (certFile === '' && keyFile !== '')
      add('rpc.tls.certFile', 'missing: rpc.tls.keyFile is set (both or neither)')
    if (keyFile === '' && certFile !== '')
      add('rpc.tls.keyFile', 'missing: rpc.tls.certFile is set (both or neither)')
    if (home !== undefined && certFile !== '' && keyFile !== '')
      for (const p of tlsProblems(resolve(home, certFile), resolve(home, keyFile))) add(p.field, p.message)
  }
  // Multiaddrs are parsed here rather than by a pattern: the library knows every protocol's syntax.
  const addrs = (field: string, list: unknown) => {
    if (!Array.isArray(list)) return
    for (const [i, a] of list.entries()) {
      if (typeof a !== 'string') continue
      try {
        multiaddr(a)
      } catch (err) {
        add(`${field}[${i}]`, `not a multiaddr (${(err as Error).message}), e.g. /ip4/0.0.0.0/tcp/26656`)
      }
    }
  }
  addrs('p2p.listen', p2p.listen)
  if (Array.isArray(p2p.peers))
    for (const [i, peer] of p2p.peers.entries()) addrs(`p2p.peers[${i}].addrs`, peer?.addrs)
  return problems
}

/**
 * Checks a config file without starting anything (for `cityledger config validate`): every
 * problem, or an empty list. Never throws; a file that cannot be read or parsed is one problem.
 */
export function validateConfigFile(path: string): ConfigProblem[] {
  const read = readJsonFile(path)
  return 'problem' in read ? [read.problem] : configProblems(read.json, dirname(path))
}

/**
 * `<home>/config.json` over the defaults (the defaults alone when there is no file). A file with
 * any problem is refused as a whole: one BAD_CONFIG listing every problem (details.problems).
 */
export function loadConfig(home: string): NodeConfig {
  const path = join(home, 'config.json')
  if (!existsSync(path)) return structuredClone(DEFAULT_CONFIG)
  const read = readJsonFile(path)
  const problems = 'problem' in read ? [read.problem] : configProblems(read.json, home)
  if (problems.length > 0 || !('json' in read))
    throw new CityError('BAD_CONFIG', problemsText(path, problems), { path, problems })
  const cfg = merge(structuredClone(DEFAULT_CONFIG), read.json)
  // Paths relative to the home, like store.path; the RPC server gets them ready to read.
  if (cfg.rpc.tls.certFile !== '')
    cfg.rpc.tls = {
      certFile: resolve(home, cfg.rpc.tls.certFile),
      keyFile: resolve(home, cfg.rpc.tls.keyFile),
    }
  return cfg
}

export function writeConfig(home: string, cfg: NodeConfig): void {
  writeFileSync(join(home, 'config.json'), `${JSON.stringify(cfg, null, 2)}\n`)
}

export function dataPath(home: string, cfg: NodeConfig): string {
  return resolve(home, cfg.store.path)
}
