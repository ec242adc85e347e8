import {
  ChainStore,
  CityError,
  type KeyPair,
  LIMITS,
  consensusMessageLimit,
  type ServiceDefinition,
  STORE_PREFIX,
  type SignatureVerifier,
  VerifiedCache,
  createMempool,
  createNativeVerifier,
  createPureVerifier,
  createRuntime,
  decodeCertificate,
  createVerifier,
  blockHashFromBytes,
  openLevelKv,
  openMemoryKv,
  subKv,
  toHex,
  type KvStore,
  ZERO_HASH,
  equalBytes,
  type Tx,
} from '@cityledger/core'
import { createReplica } from '@cityledger/consensus'
import { allServices } from '@cityledger/apps'
import { sandboxedAppServices } from './sandboxedServices.ts'
import { registerRuntimeMetrics } from './runtimeMetrics.ts'
import { Ledger } from '../chain/ledger.ts'
import { ledgerStore } from '../chain/storeAdapter.ts'
import {
  type Genesis,
  type NodeConfig,
  genesisHash,
  type PublicOnlyKey,
  legacyGenesisHash,
  serviceGenesis,
  validatorKeys,
} from '../config/index.ts'
import { type LogModule, type Logger, createLogger, levelledLogger, moduleLogger } from '../log/index.ts'
import {
  type Metrics,
  createMetrics,
  createSubmitTracker,
  instrumentLedgerStore,
  instrumentVerifier,
  observeBlock,
  timedKv,
} from '../metrics/index.ts'
import { type Clock, DEFAULT_PENALTY_WEIGHTS, type P2P, createP2P, systemClock } from '../p2p/index.ts'
import { type RpcServer, createRpcServer } from '../rpc/index.ts'
import { NodeRpcBackend } from './backend.ts'
import { type ConsensusNet, ConsensusDriver } from './driver.ts'
import { Journal } from './journal.ts'
import { PROTOCOL, observerProtocolLimits, protocolLimits } from './protocols.ts'
import { Syncer, serveSync } from './sync.ts'
import { REBROADCAST, TxGossip } from './gossip.ts'
import {
  type SignerSettings,
  failStop,
  libp2pKeyOfSigner,
  openValidatorSigner,
  signerSettingsFromEnv,
} from '../signer/index.ts'

export interface NodeOptions {
  config: NodeConfig
  genesis: Genesis
  /**
   * The node's key (key.json): its p2p identity, and its validator key unless `signer` is given. With a
   * signer, the public key alone (the secret stays in the HSM; p2p handshakes are signed by the signer).
   */
  key: KeyPair | PublicOnlyKey
  /**
   * An external validator signer (an operator's module, e.g. an HSM binding), checked at start and
   * put behind the double-sign guard. Default: the `CITYLEDGER_SIGNER_*` env variables (`start
   * --signer-module`), else `key` signs.
   */
  signer?: SignerSettings
  /** Folder of the LevelDB store (ignored for the memory backend). */
  dataDir: string
  /**
   * Services to run as given (in-process closures, not sandboxed). Default: the city services of
   * @cityledger/apps, loaded from their source into one SES Compartment each (see `sandbox`).
   */
  services?: ServiceDefinition[]
  /**
   * Load the default services in the SES sandbox (default true): lockdown, one Compartment per
   * service module, no Date/Math.random/crypto/Intl/timers/I-O. False runs the in-process modules.
   */
  sandbox?: boolean
  logger?: Logger
  clock?: Clock
  /** Wall clock for block times (tests may pin or skew it). */
  wallClock?: () => number
  /**
   * Test-only hooks for Byzantine behaviour (fault suites build misbehaving validators from them).
   * The CLI never sets them; a normal node cannot reach them.
   */
  testHooks?: {
    /** Wraps what the consensus driver sends (to drop, alter, duplicate or equivocate). */
    wrapConsensusNet?: (
      net: ConsensusNet,
      ctx: { validatorsHex: string[]; publicKey: string },
    ) => ConsensusNet
    /** Raw access to the p2p layer once created (to flood peers with garbage, replay, ...). */
    onP2P?: (p2p: P2P) => void
    /** Wraps the node's KvStore once opened (to fail writes like a full disk). */
    wrapKv?: (kv: KvStore) => KvStore
  }
}

export interface CityNode {
  readonly publicKey: string
  start(): Promise<void>
  stop(): Promise<void>
  /** RPC base URL once started. */
  rpcUrl(): string
  p2pAddrs(): string[]
  readonly ledger: Ledger
}

/**
 * Assembles a validator: store, runtime with the services, verifier pool, mempool, ledger, consensus
 * replica and its driver (one input queue, journal before send), block sync, tx gossip, libp2p, RPC,
 * metrics and logs. `start()` opens the network and catches up; `stop()` shuts everything down in
 * reverse order and closes the store.
 */
export async function createNode(opts: NodeOptions): Promise<CityNode> {
  const { config, genesis, key } = opts
  const logger = opts.logger ?? createLogger({ level: config.log.level, name: config.moniker })
  const log = (module: LogModule) => moduleLogger(logger, module, config.log.modules)
  // p2p and rpc take a child `{ module }` themselves: they get the parent (at their level), or each
  // line would carry the key twice (log stores such as Elasticsearch refuse such lines).
  const clock = opts.clock ?? systemClock
  const wallClock = opts.wallClock ?? Date.now
  const metrics: Metrics | undefined = config.metrics.enabled ? createMetrics() : undefined
  const validators = validatorKeys(genesis)
  const validatorsHex = validators.map(toHex)
  const publicKey = toHex(key.publicKey)
  const isValidator = validatorsHex.includes(publicKey)
  const signerSettings = opts.signer ?? signerSettingsFromEnv(process.env, opts.dataDir)
  if (signerSettings && !isValidator)
    throw new CityError(
      'SIGNER_KEY_MISMATCH',
      `a signer module is set (${signerSettings.module}) but this node's key ${publicKey} is not a validator of the genesis`,
    )
  // Before the store opens: a signer refused here leaves nothing to close but itself.
  const validatorSigner = await openValidatorSigner({
    key,
    validators,
    chainId: genesis.chainId,
    watermarkWindow: genesis.consensus.watermarkWindow,
    ...(signerSettings ? { settings: signerSettings } : {}),
  })
  const closeSigner = async () => {
    await validatorSigner.signer.close?.().catch(() => {})
  }

  // Storage: one KvStore for the chain and the consensus journal.
  let rawKv: KvStore
  try {
    rawKv = config.store.backend === 'memory' ? openMemoryKv() : await openLevelKv(opts.dataDir)
  } catch (err) {
    await closeSigner()
    throw err
  }
  const kv: KvStore = opts.testHooks?.wrapKv ? opts.testHooks.wrapKv(rawKv) : rawKv
  let store: ChainStore
  try {
    store = await ChainStore.open(timedKv(kv, metrics, 'chain'), { chainId: genesis.chainId })
  } catch (err) {
    await kv.close()
    await closeSigner()
    throw err
  }
  const runtime = createRuntime({
    services: opts.services ?? (opts.sandbox === false ? allServices : sandboxedAppServices()),
    // state.list reads the latest committed state in key order (the ledger's readers read the latest too).
    range: (prefix, after, limit) => store.state.range(prefix, after, limit),
    onBug: ({ service, method, error }) =>
      log('runtime').error({ service, method, err: String((error as Error)?.stack ?? error) }, 'service bug'),
  })
  if (metrics) registerRuntimeMetrics(metrics.registry, runtime)
  const gHash = genesisHash(genesis)
  if (store.height() < 0) {
    const g = runtime.genesis({ get: () => undefined }, serviceGenesis(genesis), genesis.genesisTime)
    await store.initGenesis({ chainId: genesis.chainId, genesisHash: gHash, stateWrites: g.writes })
    log('store').info({ chainId: genesis.chainId, stateRoot: toHex(store.state.root()) }, 'genesis written')
  } else if (store.genesisHash && toHex(store.genesisHash) !== toHex(gHash)) {
    await kv.close()
    await closeSigner()
    // Genesis hashes changed to a canonical encoding (key order no longer counts): a store made by an
    // earlier version from this same file has the old hash.
    const legacy = toHex(store.genesisHash) === toHex(legacyGenesisHash(genesis))
    throw new CityError(
      'GENESIS_MISMATCH',
      legacy
        ? `the store in ${opts.dataDir} was made from this genesis file by an earlier version, which hashed genesis files by their key order (hash ${toHex(store.genesisHash)}); this version cannot open it: start a new chain or use the earlier version`
        : `the store in ${opts.dataDir} was made from another genesis file (hash ${toHex(store.genesisHash)}, file ${toHex(gHash)})`,
      { storeHash: toHex(store.genesisHash), fileHash: toHex(gHash), legacy },
    )
  }

  const nodes = Math.max(1, config.verifier.nodesOnMachine)
  // Both counted into the metrics: every signature the node checks goes through one of these two.
  const verifier: SignatureVerifier = instrumentVerifier(
    await createVerifier(config.verifier.kind, {
      ...(config.verifier.workers > 0 ? { size: config.verifier.workers } : { nodesOnMachine: nodes }),
    }),
    metrics,
    'batch',
  )
  const inline: SignatureVerifier = instrumentVerifier(
    config.verifier.kind === 'noble' ? createPureVerifier() : await createNativeVerifier(),
    metrics,
    'inline',
  )
  const verifiedCache = new VerifiedCache()
  const stateReader = { get: (k: Uint8Array) => store.state.get(k) }
  const serviceChecked = new WeakSet<Tx>()
  const mempool = createMempool({
    chainId: genesis.chainId,
    verifier,
    verifiedCache,
    committedNonce: (signer) => runtime.committedNonce(stateReader, signer),
    // The service check (known service and method, argument schema) depends only on the tx, so it runs
    // once per tx; what committed state changes for a pending tx (nonce, expiry) the mempool re-checks
    // itself after every block. Re-running the schema on every pending tx per block stalled the node.
    check: (tx) => {
      if (serviceChecked.has(tx)) return
      runtime.checkTx(stateReader, tx)
      serviceChecked.add(tx)
    },
    height: () => store.height(),
    limits: {
      maxTxs: config.mempool.maxTxs,
      maxBytes: config.mempool.maxBytes,
      maxTxBytes: LIMITS.maxTxBytes,
      maxPerSigner: config.mempool.maxPerSigner,
    },
  })
  const ledger = await Ledger.open({
    chainId: genesis.chainId,
    validators,
    store: instrumentLedgerStore(await ledgerStore(store), metrics, validatorsHex),
    runtime,
    verifier,
    verifiedCache,
    genesisTime: genesis.genesisTime,
    maxBlockTxs: genesis.consensus.maxBlockTxs,
    maxBlockBytes: genesis.consensus.maxBlockBytes,
    wallClock,
  })
  const journal = await Journal.open(subKv(timedKv(kv, metrics, 'journal'), STORE_PREFIX.journal))

  const consensusFrameBytes = consensusMessageLimit(genesis.consensus.maxBlockBytes)
  const p2p: P2P = createP2P({
    ...(key.secretKey
      ? { keyPair: key as KeyPair }
      : { identity: libp2pKeyOfSigner(validatorSigner.signer) }),
    listen: config.p2p.listen,
    bootstrap: config.p2p.peers,
    allowed: validatorsHex,
    // Observers may sync and gossip txs at lower limits; consensus is closed to them.
    observers: config.p2p.observers.map((k) => k.toLowerCase()).filter((k) => !validatorsHex.includes(k)),
    limits: protocolLimits({ consensusFrameBytes }),
    observerLimits: observerProtocolLimits({ consensusFrameBytes }),
    logger: levelledLogger(logger, 'p2p', config.log.modules),
    clock,
  })
  p2p.events.on(
    'peer:penalized' as never,
    ((e: { reason: string }) =>
      metrics?.penalties.inc({ reason: e.reason.split(':')[0] ?? 'other' })) as never,
  )

  opts.testHooks?.onP2P?.(p2p)
  const wrapNet = (net: ConsensusNet): ConsensusNet =>
    opts.testHooks?.wrapConsensusNet
      ? opts.testHooks.wrapConsensusNet(net, { validatorsHex, publicKey })
      : net

  let backendRef: NodeRpcBackend | undefined
  let lastBlock: { height: number; time: number } | undefined = ledger.head
  const submits = metrics ? createSubmitTracker(metrics, () => clock.now()) : undefined
  let fatal: ((err: Error) => void) | undefined
  const replica = isValidator
    ? createReplica({
        chainId: genesis.chainId,
        validators,
        publicKey: key.publicKey,
        // A signer that fails stops the node (fatal) instead of leaving a round half done.
        sign: failStop(validatorSigner, (err) => fatal?.(err)),
        verify: (c) => inline.verify(c),
        blockDigest: (b) => blockHashFromBytes(b),
        checkpointInterval: genesis.consensus.checkpointInterval,
        windowSize: genesis.consensus.watermarkWindow,
        viewTimeoutMs: genesis.consensus.viewChangeTimeoutMs,
        // The same number as the p2p consensus frame limit: one side never accepts what the other refuses.
        maxMessageBytes: consensusMessageLimit(genesis.consensus.maxBlockBytes),
      })
    : undefined

  const driver = new ConsensusDriver({
    chainId: genesis.chainId,
    publicKey: key.publicKey,
    replica: replica ?? { step: () => [] },
    journal,
    ledger,
    mempool,
    net: wrapNet({
      broadcast: (bytes) => void p2p.broadcast(PROTOCOL.consensus, bytes).catch(() => {}),
      send: (i, bytes) => void p2p.send(validatorsHex[i]!, PROTOCOL.consensus, bytes).catch(() => {}),
      // A message dropped from a full driver queue costs what a rate-limited frame does.
      penalize: (peer, reason) =>
        p2p.penalize(
          peer,
          reason,
          reason.startsWith('queue:') ? DEFAULT_PENALTY_WEIGHTS.rateLimited : undefined,
        ),
    }),
    // Each peer's share of the driver queue: its p2p byte burst (3 frames), 256 messages.
    maxQueuedPerPeer: { messages: 256, bytes: 3 * consensusFrameBytes },
    clock,
    logger: log('consensus'),
    metrics,
    wallClock,
    maxBlockTxs: genesis.consensus.maxBlockTxs,
    maxBlockBytes: genesis.consensus.maxBlockBytes,
    blockIntervalMs: genesis.consensus.blockIntervalMs,
    // A round (proposal to commit) within half the view-change timeout, after the batching wait: a
    // slow machine proposes smaller blocks instead of changing view on every full one (blockBudget.ts).
    targetRoundMs: Math.max(
      100,
      Math.floor(genesis.consensus.viewChangeTimeoutMs / 2) - genesis.consensus.blockIntervalMs,
    ),
    emptyBlockIntervalMs: Math.max(
      genesis.consensus.blockIntervalMs,
      Math.floor(genesis.consensus.viewChangeTimeoutMs / 3),
    ),
    onCommitted: (c) => {
      if (metrics) {
        observeBlock(metrics, c.block, lastBlock)
        lastBlock = { height: c.block.header.height, time: c.block.header.time }
        submits?.committed(c.txs)
      }
      backendRef?.committed(c)
    },
    onSyncNeeded: (from, to) =>
      void syncer.sync(to).catch((err) => log('sync').warn({ err: String(err), from, to }, 'sync failed')),
    onFatal: (err) => fatal?.(err),
  })

  const syncer = new Syncer({
    chainId: genesis.chainId,
    validators,
    ledger,
    net: {
      peers: () =>
        p2p
          .peers()
          .map((p) => p.publicKey)
          .filter((k) => validatorsHex.includes(k)),
      request: (peer, bytes, timeoutMs) => p2p.request(peer, PROTOCOL.sync, bytes, { timeoutMs }),
      penalize: (peer, reason) => p2p.penalize(peer, reason),
    },
    apply: async (height, block, digest, certificate) => {
      if (replica) {
        driver.push({ type: 'syncBlock', height, block, digest, certificate })
        await driver.idle()
      } else {
        await driver.commitSynced({
          type: 'commit',
          height,
          view: certificate.view,
          digest,
          block,
          isNull: equalBytes(digest, ZERO_HASH),
          certificate,
        })
      }
      metrics?.syncedBlocks.inc()
    },
    verify: (c) => inline.verify(c),
    logger: log('sync'),
    onProgress: (_height, target) => metrics?.syncTarget.set(target),
  })
  metrics?.watchSync(() => syncer.catchingUp)

  const gossip = new TxGossip({
    mempool,
    broadcast: (bytes) => void p2p.broadcast(PROTOCOL.txs, bytes).catch(() => {}),
    penalize: (peer, reason) => p2p.penalize(peer, reason),
    onAdmitted: () => driver.txsArrived(),
    logger: log('gossip'),
  })

  p2p.events.on('peer:connect', ({ peer }) => {
    gossip.peerConnected((bytes) => void p2p.send(peer, PROTOCOL.txs, bytes).catch(() => {}))
  })

  let started = false
  const backend = new NodeRpcBackend({
    genesis,
    nodeId: publicKey,
    store,
    ledger,
    runtime,
    mempool,
    metrics,
    view: () => driver.view,
    peers: () => p2p.peers().length,
    validatorPeers: () => p2p.peers().filter((p) => validatorsHex.includes(p.publicKey)).length,
    peerList: () => p2p.peers().map((p) => ({ publicKey: p.publicKey, role: p.role, addrs: p.addrs })),
    catchingUp: () => syncer.catchingUp,
    started: () => started,
    submit: async (bytes) => {
      const r = await gossip.submit(bytes)
      submits?.submitted(r.hash)
      return r
    },
  })
  backendRef = backend
  const rpc: RpcServer = createRpcServer({
    backend,
    logger: levelledLogger(logger, 'rpc', config.log.modules),
    limits: {
      maxBodyBytes: config.rpc.maxBodyBytes,
      maxWaitMs: config.rpc.maxWaitMs,
      rateLimitPerSecond: config.rpc.rateLimitPerSecond,
      rateLimitBurst: config.rpc.rateLimitBurst,
      exemptClients: config.rpc.exemptClients,
      maxConnections: config.rpc.maxConnections,
      maxConnectionsPerClient: config.rpc.maxConnectionsPerClient,
      requestTimeoutMs: config.rpc.requestTimeoutMs,
      headersTimeoutMs: config.rpc.headersTimeoutMs,
      keepAliveTimeoutMs: config.rpc.keepAliveTimeoutMs,
      maxEventSubscribers: config.rpc.maxEventSubscribers,
      maxEventBacklogBytes: config.rpc.maxEventBacklogBytes,
      maxEventReplayBlocks: config.rpc.maxEventReplayBlocks,
      maxBatchTxs: config.rpc.maxBatchTxs,
      maxBatchBytes: config.rpc.maxBatchBytes,
      maxRangeBlocks: config.rpc.maxRangeBlocks,
      maxRangeBytes: config.rpc.maxRangeBytes,
      shutdownGraceMs: config.rpc.shutdownGraceMs,
    },
    host: config.rpc.host,
    port: config.rpc.port,
    cors: config.rpc.cors,
    tls: config.rpc.tls,
    ...(metrics ? { onRequestDone: (r) => metrics.rpcRequestDone(r) } : {}),
  })
  let rpcUrl = ''

  let syncTimer: ReturnType<typeof setInterval> | undefined
  let gossipTimer: ReturnType<typeof setInterval> | undefined
  let stopping: Promise<void> | undefined
  const node: CityNode = {
    publicKey,
    ledger,
    rpcUrl: () => rpcUrl,
    p2pAddrs: () => p2p.multiaddrs(),
    async start() {
      await p2p.handle(PROTOCOL.consensus, (m) => {
        driver.push({ type: 'message', bytes: m.data, from: m.peer })
      })
      await p2p.handle(PROTOCOL.txs, (m) => gossip.received(m.peer, m.data))
      await p2p.handle(PROTOCOL.sync, (m) =>
        serveSync(
          {
            height: () => store.height(),
            blockBytes: async (h) => (await store.getBlock(h))?.bytes,
            certificate: (h) => store.getCertificate(h),
          },
          m.data,
        ),
      )
      await p2p.start()
      const addr = await rpc.start()
      rpcUrl = addr.url
      metrics?.height.set(ledger.head.height)
      log('node').info(
        { publicKey, rpc: rpcUrl, p2p: p2p.multiaddrs(), height: ledger.head.height, validator: isValidator },
        'node started',
      )
      // Catch up before admitting txs (peers may not be up yet: then consensus retransmissions and
      // the periodic check below take over).
      // The certificate of the head from the store: the replica's STATUS proves its height with it.
      const headCert = ledger.head.height > 0 ? await store.getCertificate(ledger.head.height) : undefined
      driver.push({
        type: 'start',
        committedHeight: ledger.head.height,
        journal: journal.all(),
        ...(headCert ? { certificate: decodeCertificate(headCert) } : {}),
      })
      await syncer.sync().catch((err) => log('sync').warn({ err: String(err) }, 'initial sync failed'))
      // A fatal stop during start (e.g. the signer refused the first vote) fails the start: nobody
      // listens for the process event yet, and a start that resolved would print the ready line.
      if (fatalError) {
        await node.stop()
        throw fatalError
      }
      started = true
      // A node that fell behind without noticing (e.g. paused) asks peers every few seconds.
      let lastHeight = ledger.head.height
      syncTimer = setInterval(
        () => {
          if (ledger.head.height === lastHeight) void syncer.sync().catch(() => {})
          lastHeight = ledger.head.height
        },
        Math.max(2000, genesis.consensus.viewChangeTimeoutMs),
      )
      syncTimer.unref()
      // A broadcast can be lost: pending txs go out again until they commit (gossip.ts, REBROADCAST).
      gossipTimer = setInterval(() => gossip.rebroadcast(), REBROADCAST.intervalMs)
      gossipTimer.unref()
    },
    stop() {
      stopping ??= (async () => {
        started = false
        if (syncTimer) clearInterval(syncTimer)
        if (gossipTimer) clearInterval(gossipTimer)
        driver.stop()
        await rpc.stop().catch(() => {})
        await p2p.stop().catch(() => {})
        await driver.idle().catch(() => {})
        await verifier.close().catch(() => {})
        await inline.close().catch(() => {})
        await store.close().catch(() => {})
        await kv.close().catch(() => {})
        await closeSigner()
        log('node').info({ height: ledger.head.height }, 'node stopped')
      })()
      return stopping
    },
  }
  let fatalError: Error | undefined
  fatal = (err) => {
    // The first cause is the one to read: a signer failure also fails the consensus step it was in.
    if (fatalError) return
    fatalError = err
    const code = (err as { code?: string }).code
    if (code === 'SIGNER_FAILED' || code === 'DOUBLE_SIGN' || code === 'SIGNER_STATE')
      log('node').fatal(
        { code, signer: validatorSigner.name, err: err.message },
        'validator signer failed: stopping the node (no vote was signed)',
      )
    else log('node').fatal({ err: String(err.stack ?? err) }, 'fatal: stopping the node')
    // The process hears of it at once (not once stopped): its handler (run.ts) bounds how long the
    // stop may take, so a stop that hangs cannot keep a broken node running.
    const stopped = node.stop()
    process.emit('cityledger:fatal' as never, err as never)
    void stopped
  }
  return node
}

export type { Tx }
