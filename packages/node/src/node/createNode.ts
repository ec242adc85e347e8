import {
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
  createVerifier,
  subKv,
  toHex,
  type KvStore,
  ZERO_HASH,
  decodeCertificate,
  equalBytes,
  type Tx,
} from '@cityledger/core'
import { validatorsAt } from '@cityledger/consensus'
import { allServices } from '@cityledger/apps'
import { sandboxedAppServices } from './sandboxedServices.ts'
import { registerRuntimeMetrics } from './runtimeMetrics.ts'
import { Ledger } from '../chain/ledger.ts'
import { ledgerStore } from '../chain/storeAdapter.ts'
import { type Genesis, type NodeConfig, type PublicOnlyKey, validatorKeys } from '../config/index.ts'
import { type LogModule, type Logger, createLogger, moduleLogger } from '../log/index.ts'
import {
  type Metrics,
  createMetrics,
  createSubmitTracker,
  instrumentLedgerStore,
  instrumentVerifier,
  observeBlock,
  timedKv,
} from '../metrics/index.ts'
import { type Clock, type P2P, systemClock } from '../p2p/index.ts'
import { NodeRpcBackend } from './backend.ts'
import { Backlog } from './backlog.ts'
import { OfferHolds } from './offerHolds.ts'
import { BlockRetention } from './retention.ts'
import { ValidatorHistoryStore } from './validatorHistoryStore.ts'
import { type ConsensusNet, ConsensusDriver } from './driver.ts'
import type { EpochReplicas } from './epochReplicas.ts'
import { Journal } from './journal.ts'
import { nodeReplicas } from './nodeReplicas.ts'
import { type NodeLifecycle, nodeLifecycle } from './lifecycle.ts'
import { consensusNet, createNodeP2P, syncNet } from './network.ts'
import { openSigner, openStore, writeOrCheckGenesis } from './openSignerAndStore.ts'
import { createNodeRpcServer } from './rpcServer.ts'
import { PROTOCOL } from './protocols.ts'
import { stateSyncAtStart } from './stateSyncStart.ts'
import { Syncer } from './sync.ts'
import { TxGossip } from './gossip.ts'
import { type SignerSettings, failStop } from '../signer/index.ts'

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
  const signer = await openSigner({
    key,
    genesis,
    validators,
    publicKey,
    isValidator,
    settings: opts.signer,
    dataDir: opts.dataDir,
  })
  const { validatorSigner, closeSigner } = signer
  // sync.stateSync on an empty data folder: fill it from a certified recent state first.
  const synced = await stateSyncAtStart({
    config,
    genesis,
    key,
    validatorSigner,
    dataDir: opts.dataDir,
    logger: log('sync'),
    clock,
    metrics,
  }).catch(async (err) => {
    await closeSigner()
    throw err
  })
  const { kv, store } = await openStore({
    config,
    genesis,
    dataDir: opts.dataDir,
    metrics,
    wrapKv: opts.testHooks?.wrapKv,
    closeSigner,
    // The tree the state sync built, checked page by page: the open need not rebuild it.
    syncedState: synced?.state,
  })
  const runtime = createRuntime({
    services: opts.services ?? (opts.sandbox === false ? allServices : sandboxedAppServices()),
    // state.list reads the latest committed state in key order (the ledger's readers read the latest too).
    range: (prefix, after, limit) => store.state.range(prefix, after, limit),
    onBug: ({ service, method, error }) =>
      log('runtime').error({ service, method, err: String((error as Error)?.stack ?? error) }, 'service bug'),
  })
  if (metrics) registerRuntimeMetrics(metrics.registry, runtime)
  await writeOrCheckGenesis({
    genesis,
    store,
    kv,
    runtime,
    dataDir: opts.dataDir,
    closeSigner,
    log: log('store'),
  })

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
  // The validator set follows the chain (epochs): `replicas` holds the schedule once built below.
  let replicas: EpochReplicas | undefined
  const currentSetHex = [...validatorsHex]
  const ledger = await Ledger.open({
    chainId: genesis.chainId,
    validators,
    validatorsAt: (h) => (replicas ? validatorsAt(replicas.schedule, h) : validators),
    store: instrumentLedgerStore(await ledgerStore(store), metrics, currentSetHex),
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
  const p2p: P2P = createNodeP2P({
    config,
    key,
    validatorSigner,
    validatorsHex,
    consensusFrameBytes,
    logger,
    clock,
    metrics,
  })

  opts.testHooks?.onP2P?.(p2p)
  const wrapNet = (net: ConsensusNet): ConsensusNet =>
    opts.testHooks?.wrapConsensusNet
      ? opts.testHooks.wrapConsensusNet(net, { validatorsHex, publicKey })
      : net

  let backendRef: NodeRpcBackend | undefined
  let lastBlock: { height: number; time: number } | undefined = ledger.head
  const submits = metrics ? createSubmitTracker(metrics, () => clock.now()) : undefined
  // Set once everything is built: a fatal error before that stops nothing (nothing runs yet).
  let lifecycle: NodeLifecycle | undefined
  replicas = nodeReplicas({
    genesis,
    config,
    publicKey: key.publicKey,
    genesisValidators: validators,
    // A signer that fails stops the node (fatal) instead of leaving a round half done.
    sign: failStop(validatorSigner, (err) => lifecycle?.fatal(err)),
    inline,
    store,
    runtime,
    journal,
    logger: log('consensus'),
    onAllowed: (keys) =>
      void p2p
        .setAllowed(keys)
        .catch((err) => log('node').warn({ err: String(err) }, 'p2p allow list not updated')),
    onCurrentSet: (keys) => currentSetHex.splice(0, currentSetHex.length, ...keys),
  })
  const epochs = replicas
  // The schedule from the stored state now, so that p2p lets in the right set from its start.
  epochs.refresh()

  // The validator history this node serves to joiners (validatorHistoryStore.ts), built as it commits.
  const history = new ValidatorHistoryStore({
    kv: subKv(kv, STORE_PREFIX.validatorHistory),
    store,
    readChanges: (after) => runtime.validatorChanges({ get: (k) => store.state.get(k) }, after),
    schedule: () => epochs.schedule,
    logger: log('store'),
  })
  void history.update()
  // store.retainBlocks: prunes old block history in the background after commits (retention.ts);
  // the history's entries are built first, from blocks a prune may delete.
  // Heights offered to joiners by state sync are kept while they fetch them (offerHolds.ts).
  const holds = new OfferHolds()
  const retention = new BlockRetention({
    store,
    retainBlocks: config.store.retainBlocks,
    logger: log('store'),
    beforePrune: () => history.update(),
    holdFrom: () => holds.lowest(),
  })
  const driver = new ConsensusDriver({
    chainId: genesis.chainId,
    publicKey: key.publicKey,
    replicas: epochs,
    headCertificate: async () => {
      const c = ledger.head.height > 0 ? await store.getCertificate(ledger.head.height) : undefined
      return c ? decodeCertificate(c) : undefined
    },
    journal,
    ledger,
    mempool,
    net: wrapNet(consensusNet(p2p, () => epochs.current()?.validatorsHex ?? [])),
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
    emptyBlockIntervalMs: config.consensus.emptyBlocks
      ? Math.max(genesis.consensus.blockIntervalMs, Math.floor(genesis.consensus.viewChangeTimeoutMs / 3))
      : Math.max(genesis.consensus.blockIntervalMs, config.consensus.heartbeatMs),
    reportPending: !config.consensus.emptyBlocks,
    onCommitted: (c) => {
      history.committed()
      retention.committed(c.block.header.height)
      if (metrics) {
        observeBlock(metrics, c.block, lastBlock)
        lastBlock = { height: c.block.header.height, time: c.block.header.time }
        submits?.committed(c.txs)
      }
      backendRef?.committed(c)
    },
    onSyncNeeded: (from, to) =>
      void syncer.sync(to).catch((err) => log('sync').warn({ err: String(err), from, to }, 'sync failed')),
    onFatal: (err) => lifecycle?.fatal(err),
  })

  const syncer = new Syncer({
    chainId: genesis.chainId,
    schedule: () => epochs.schedule,
    ledger,
    net: syncNet(p2p),
    apply: async (height, block, digest, certificate) => {
      // An epoch switch after the block before is done first: it decides who takes this one.
      await driver.idle()
      const epoch = epochs.epochOf(height)
      if (epochs.run(epoch)) {
        driver.push({ type: 'syncBlock', height, block, digest, certificate }, epoch)
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

  const backlog = new Backlog({ blocks: config.mempool.backlogBlocks, minTxs: config.mempool.backlogMinTxs })
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
    validatorPeers: () => p2p.peers().filter((p) => currentSetHex.includes(p.publicKey)).length,
    validatorSet: () => currentSetHex,
    history: history.kv,
    peerList: () => p2p.peers().map((p) => ({ publicKey: p.publicKey, role: p.role, addrs: p.addrs })),
    catchingUp: () => syncer.catchingUp,
    started: () => lifecycle?.started() ?? false,
    submit: async (bytes) => {
      // Clients are refused while the node is a few blocks behind (gossiped txs are not: backlog.ts).
      backlog.check(mempool.held(), driver.blockTxsCap())
      const r = await gossip.submit(bytes)
      submits?.submitted(r.hash)
      return r
    },
  })
  backendRef = backend
  const rpc = createNodeRpcServer({ backend, config, logger, metrics })

  lifecycle = nodeLifecycle({
    publicKey,
    isValidator,
    genesis,
    ledger,
    store,
    kv,
    holds,
    journal,
    p2p,
    rpc,
    driver,
    syncer,
    gossip,
    verifier,
    inline,
    metrics,
    signer,
    log,
  })
  return {
    publicKey,
    ledger,
    rpcUrl: lifecycle.rpcUrl,
    p2pAddrs: () => p2p.multiaddrs(),
    start: lifecycle.start,
    stop: lifecycle.stop,
  }
}

export type { Tx }
