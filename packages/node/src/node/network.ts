// The node's p2p layer: libp2p with the validator set as its allow list, the views of it that the
// consensus driver and the syncer are given, and the handlers of the node's three protocols.
import type { ChainStore, KeyPair, KvStore } from '@cityledger/core'
import type { NodeConfig, PublicOnlyKey } from '../config/index.ts'
import { type Logger, levelledLogger } from '../log/index.ts'
import type { Metrics } from '../metrics/index.ts'
import { type Clock, DEFAULT_PENALTY_WEIGHTS, type P2P, createP2P } from '../p2p/index.ts'
import { type OpenedSigner, libp2pKeyOfSigner } from '../signer/index.ts'
import type { ConsensusDriver, ConsensusNet } from './driver.ts'
import type { TxGossip } from './gossip.ts'
import { PROTOCOL, observerProtocolLimits, protocolLimits } from './protocols.ts'
import type { OfferHolds } from './offerHolds.ts'
import { serveStateSync } from './stateSyncServe.ts'
import { type SyncNet, serveSync } from './sync.ts'

/**
 * libp2p for a node: its identity is `key`, or the signer's libp2p key when key.json holds only the
 * public key. Penalties are counted into the metrics by reason.
 */
export function createNodeP2P(o: {
  config: NodeConfig
  key: KeyPair | PublicOnlyKey
  validatorSigner: OpenedSigner
  validatorsHex: string[]
  consensusFrameBytes: number
  /** The parent logger: p2p takes a child `{ module }` itself. */
  logger: Logger
  clock: Clock
  metrics: Metrics | undefined
}): P2P {
  const { config, validatorsHex, consensusFrameBytes } = o
  const p2p: P2P = createP2P({
    ...(o.key.secretKey
      ? { keyPair: o.key as KeyPair }
      : { identity: libp2pKeyOfSigner(o.validatorSigner.signer) }),
    listen: config.p2p.listen,
    bootstrap: config.p2p.peers,
    allowed: validatorsHex,
    // Observers may sync and gossip txs at lower limits; consensus is closed to them.
    observers: config.p2p.observers.map((k) => k.toLowerCase()).filter((k) => !validatorsHex.includes(k)),
    limits: protocolLimits({ consensusFrameBytes }),
    observerLimits: observerProtocolLimits({ consensusFrameBytes }),
    logger: levelledLogger(o.logger, 'p2p', config.log.modules),
    clock: o.clock,
  })
  p2p.events.on(
    'peer:penalized' as never,
    ((e: { reason: string }) =>
      o.metrics?.penalties.inc({ reason: e.reason.split(':')[0] ?? 'other' })) as never,
  )
  return p2p
}

/**
 * What the consensus driver sends through: validator `i` is `validatorsHex()[i]` (the current epoch's
 * set; a fixed array works too); send errors are dropped.
 */
export function consensusNet(
  p2p: P2P,
  validatorsHex: readonly string[] | (() => readonly string[]),
): ConsensusNet {
  const set = typeof validatorsHex === 'function' ? validatorsHex : () => validatorsHex
  const sendKey = (key: string | undefined, bytes: Uint8Array) => {
    if (key !== undefined) void p2p.send(key, PROTOCOL.consensus, bytes).catch(() => {})
  }
  return {
    broadcast: (bytes) => void p2p.broadcast(PROTOCOL.consensus, bytes).catch(() => {}),
    send: (i, bytes) => sendKey(set()[i], bytes),
    sendKey,
    // A message dropped from a full driver queue costs what a rate-limited frame does.
    penalize: (peer, reason) =>
      p2p.penalize(
        peer,
        reason,
        reason.startsWith('queue:') ? DEFAULT_PENALTY_WEIGHTS.rateLimited : undefined,
      ),
  }
}

/**
 * What the syncer asks through: it syncs from connected validators only (the keys the allow list lets in
 * as validators: the current and announced sets), never from observers.
 */
export function syncNet(p2p: P2P): SyncNet {
  return {
    peers: () =>
      p2p
        .peers()
        .filter((p) => p.role === 'validator')
        .map((p) => p.publicKey),
    request: (peer, bytes, timeoutMs) => p2p.request(peer, PROTOCOL.sync, bytes, { timeoutMs }),
    penalize: (peer, reason) => p2p.penalize(peer, reason),
  }
}

/** Registers the consensus, txs, sync and state-sync handlers; `start()` calls it before `p2p.start()`. */
export async function handleProtocols(
  p2p: P2P,
  o: { driver: ConsensusDriver; gossip: TxGossip; store: ChainStore; kv: KvStore; holds?: OfferHolds },
): Promise<void> {
  const { driver, gossip, store, kv, holds } = o
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
  await p2p.handle(PROTOCOL.stateSync, (m) =>
    serveStateSync({ store, kv, ...(holds ? { holds } : {}) }, m.data),
  )
}

/** `syncNet` on the state-sync protocol (validators only, as block sync). */
export function stateSyncNet(p2p: P2P): SyncNet {
  return {
    ...syncNet(p2p),
    request: (peer, bytes, timeoutMs) => p2p.request(peer, PROTOCOL.stateSync, bytes, { timeoutMs }),
  }
}
