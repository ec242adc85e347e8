// A node's start, stop and fatal stop over the parts createNode assembled. Start opens the network and
// catches up; stop shuts the parts down in reverse order, once, however often it is called.
import { type ChainStore, type KvStore, type SignatureVerifier, decodeCertificate } from '@cityledger/core'
import type { Ledger } from '../chain/ledger.ts'
import type { Genesis } from '../config/index.ts'
import type { LogModule, Logger } from '../log/index.ts'
import type { Metrics } from '../metrics/index.ts'
import type { P2P } from '../p2p/index.ts'
import type { RpcServer } from '../rpc/index.ts'
import type { ConsensusDriver } from './driver.ts'
import { REBROADCAST, type TxGossip } from './gossip.ts'
import type { Journal } from './journal.ts'
import { handleProtocols } from './network.ts'
import type { OfferHolds } from './offerHolds.ts'
import type { NodeSigner } from './openSignerAndStore.ts'
import type { Syncer } from './sync.ts'

/** Everything start and stop act on. */
export interface LifecycleParts {
  publicKey: string
  isValidator: boolean
  genesis: Genesis
  ledger: Ledger
  store: ChainStore
  kv: KvStore
  /** Heights offered to state sync, held from pruning (offerHolds.ts). */
  holds: OfferHolds
  journal: Journal
  p2p: P2P
  rpc: RpcServer
  driver: ConsensusDriver
  syncer: Syncer
  gossip: TxGossip
  verifier: SignatureVerifier
  inline: SignatureVerifier
  metrics: Metrics | undefined
  signer: NodeSigner
  log: (module: LogModule) => Logger
}

/** The node's lifecycle; `started()` is true from the end of a good start until stop begins. */
export interface NodeLifecycle {
  start(): Promise<void>
  stop(): Promise<void>
  /** Logs the first fatal error, stops the node and emits `cityledger:fatal` on the process. */
  fatal(err: Error): void
  started(): boolean
  /** RPC base URL once started, '' before. */
  rpcUrl(): string
}

export function nodeLifecycle(parts: LifecycleParts): NodeLifecycle {
  const { publicKey, genesis, ledger, store, journal, p2p, rpc, driver, syncer, gossip, metrics, log } = parts
  let started = false
  let rpcUrl = ''
  let syncTimer: ReturnType<typeof setInterval> | undefined
  let gossipTimer: ReturnType<typeof setInterval> | undefined
  let stopping: Promise<void> | undefined
  let fatalError: Error | undefined

  async function start(): Promise<void> {
    await handleProtocols(p2p, { driver, gossip, store, kv: parts.kv, holds: parts.holds })
    await p2p.start()
    const addr = await rpc.start()
    rpcUrl = addr.url
    metrics?.height.set(ledger.head.height)
    log('node').info(
      {
        publicKey,
        rpc: rpcUrl,
        p2p: p2p.multiaddrs(),
        height: ledger.head.height,
        validator: parts.isValidator,
      },
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
      await stop()
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
  }

  function stop(): Promise<void> {
    stopping ??= (async () => {
      started = false
      if (syncTimer) clearInterval(syncTimer)
      if (gossipTimer) clearInterval(gossipTimer)
      driver.stop()
      await rpc.stop().catch(() => {})
      await p2p.stop().catch(() => {})
      await driver.idle().catch(() => {})
      await parts.verifier.close().catch(() => {})
      await parts.inline.close().catch(() => {})
      await store.close().catch(() => {})
      await parts.kv.close().catch(() => {})
      await parts.signer.closeSigner()
      log('node').info({ height: ledger.head.height }, 'node stopped')
    })()
    return stopping
  }

  function fatal(err: Error): void {
    // The first cause is the one to read: a signer failure also fails the consensus step it was in.
    if (fatalError) return
    fatalError = err
    const code = (err as { code?: string }).code
    if (code === 'SIGNER_FAILED' || code === 'DOUBLE_SIGN' || code === 'SIGNER_STATE')
      log('node').fatal(
        { code, signer: parts.signer.validatorSigner.name, err: err.message },
        'validator signer failed: stopping the node (no vote was signed)',
      )
    else if (code === 'SERVICE_UPGRADE_REQUIRED' || code === 'SERVICE_VERSION_MISMATCH')
      log('node').fatal(
        { code, upgrade: (err as { details?: object }).details, err: err.message },
        `stopping: this node's code does not run the service version the chain runs. ${err.message}`,
      )
    else log('node').fatal({ err: String(err.stack ?? err) }, 'fatal: stopping the node')
    // The process hears of it at once (not once stopped): its handler (run.ts) bounds how long the
    // stop may take, so a stop that hangs cannot keep a broken node running.
    const stopped = stop()
    process.emit('cityledger:fatal' as never, err as never)
    void stopped
  }

  return { start, stop, fatal, started: () => started, rpcUrl: () => rpcUrl }
}
