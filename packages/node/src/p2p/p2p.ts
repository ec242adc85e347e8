import { EventEmitter } from 'node:events'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { Connection, Libp2p, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { PeerAccess } from './access.ts'
import type { BackoffPolicy } from './backoff.ts'
import { type Clock, systemClock } from './clock.ts'
import { keepOneConnection, RequestSlots } from './connections.ts'
import { p2pError } from './errors.ts'
import { encodeFrame } from './frame.ts'
import { createGater } from './gater.ts'
import { normalizeValidatorKey, peerIdFromValidatorKey, validatorKeyOfPeerId } from './identity.ts'
import { InboundGate } from './inboundGate.ts'
import { checkOptions, parseAddr, positive } from './options.ts'
import { checkLimits, checkOutgoing } from './limits.ts'
import { type Logger, noopLogger } from './logger.ts'
import { OutboundStreams } from './outbound.ts'
import { PeerScores } from './penalties.ts'
import { Reconnector } from './reconnect.ts'
import { sendRequest } from './request.ts'
import type {
  DenyReason,
  MessageHandler,
  P2P,
  P2PEventMap,
  P2POptions,
  PeerInfo,
  PenaltyWeights,
  ProtocolLimits,
  RequestOptions,
} from './types.ts'

export { checkLimits } from './limits.ts'

export { DEFAULT_LIMITS, DEFAULT_PENALTY_WEIGHTS } from './options.ts'

/**
 * Internal protocol that confirms a connection we dialled. With Noise XX the dialer finishes its handshake
 * before the listener has seen (and gated) the dialer's key, so an outbound connection looks open even when
 * the remote is about to refuse it. Negotiating one stream proves the remote accepted us.
 */
export const READY_PROTOCOL = '/cityledger/ready/1'

/**
 * Creates the validator's p2p endpoint (not started). See `P2P` for the operations and `P2POptions`
 * for the configuration.
 *
 * @example
 * const p2p = createP2P({ keyPair, listen: ['/ip4/0.0.0.0/tcp/26656'], bootstrap, allowed })
 * await p2p.handle('/cityledger/consensus/1', ({ peer, data }) => replica.receive(peer, data))
 * await p2p.start()
 * await p2p.broadcast('/cityledger/consensus/1', voteBytes)
 */
export function createP2P(options: P2POptions): P2P {
  return new P2PNode(options)
}

interface Registration {
  handler: MessageHandler
  limits?: ProtocolLimits
}

class P2PNode implements P2P {
  readonly publicKey: string
  readonly peerId: string
  readonly events = new EventEmitter<P2PEventMap>()

  private readonly privateKey: PrivateKey
  private readonly listen: string[]
  private readonly bootstrap: Map<string, string[]>
  /** Who may connect, and each role's limits (access.ts). */
  private readonly access: PeerAccess
  private readonly partialMaxAgeMs: number
  /** Inbound streams: their per-peer caps, rate buckets and unfinished-frame bytes (inboundGate.ts). */
  private readonly inbound: InboundGate
  /** Our requests in flight per `peer protocol`, and those waiting for a slot. */
  private readonly requestSlots = new RequestSlots()
  private readonly weights: PenaltyWeights
  private readonly backoff: BackoffPolicy
  private readonly requestTimeoutMs: number
  private readonly maxQueuedFrames: number
  private readonly inboundConnectionThreshold: number
  private readonly clock: Clock
  private readonly log: Logger
  private readonly scores: PeerScores
  private readonly handlers = new Map<string, Registration>()
  /** Peers with a connection both sides accepted: what `peers()` lists and sends may use. */
  private readonly ready = new Set<string>()
  private readonly confirming = new WeakMap<Connection, Promise<void>>()
  private readonly outbound: OutboundStreams
  private readonly reconnector: Reconnector
  private node: Libp2p | undefined
  private starting: Promise<void> | undefined

  constructor(options: P2POptions) {
    const o = checkOptions(options)
    this.privateKey = o.privateKey
    this.publicKey = o.publicKey
    this.peerId = o.peerId
    this.listen = o.listen
    this.bootstrap = o.bootstrap
    this.partialMaxAgeMs = o.partialPolicy.maxAgeMs
    this.weights = o.weights
    this.backoff = o.backoff
    this.requestTimeoutMs = o.requestTimeoutMs
    this.maxQueuedFrames = o.maxQueuedFrames
    this.inboundConnectionThreshold = o.inboundConnectionThreshold
    this.clock = options.clock ?? systemClock
    this.log = (options.logger ?? noopLogger).child({ module: 'p2p' })
    this.scores = new PeerScores(options.penalties ?? {}, this.clock)
    this.access = new PeerAccess({
      self: this.publicKey,
      allowed: o.allowed,
      observers: o.observers,
      limits: o.limits,
      defaultLimits: o.defaultLimits,
      observerLimits: o.observerLimits,
      partialPolicy: o.partialPolicy,
      isBanned: (key) => this.scores.isBanned(key),
      handlerLimits: (protocol) => this.handlers.get(protocol)?.limits,
      handled: () => this.handlers.keys(),
    })
    this.inbound = new InboundGate({
      clock: this.clock,
      log: this.log,
      weights: this.weights,
      maxQueuedFrames: this.maxQueuedFrames,
      partialMaxAgeMs: this.partialMaxAgeMs,
      partialBudget: (key) => this.access.partialBudget(key),
      admitKey: (key) => this.access.admitKey(key),
      limitsOf: (key, protocol) => this.access.limitsOf(key, protocol),
      handlerOf: (protocol) => this.handlers.get(protocol)?.handler,
      penalize: (key, reason, weight) => this.penalize(key, reason, weight),
    })
    this.outbound = new OutboundStreams(
      (peer, protocol, signal) => this.openStream(peer, protocol, signal),
      o.maxPendingSends,
      this.log,
    )
    this.reconnector = new Reconnector(this.bootstrap.keys(), {
      clock: this.clock,
      policy: this.backoff,
      log: this.log,
      dial: async (peer) => {
        const node = this.node
        if (!node) throw p2pError('P2P_NOT_STARTED', 'p2p is stopped')
        const conn = await node.dial(peerIdFromValidatorKey(peer))
        await this.confirm(conn)
      },
      isConnected: (peer) => this.isConnected(peer),
      bannedUntil: (peer) => this.scores.bannedUntil(peer),
      onDialFailed: (peer, error, attempt, retryInMs) =>
        this.events.emit('dial:failed', { peer, error, attempt, retryInMs }),
    })
  }

  // ---- lifecycle --------------------------------------------------------------------------------

  async start(): Promise<void> {
    if (this.starting) return this.starting
    if (this.node) return
    this.starting = this.doStart().finally(() => {
      this.starting = undefined
    })
    return this.starting
  }

  private async doStart(): Promise<void> {
    const node = await createLibp2p({
      privateKey: this.privateKey,
      addresses: { listen: this.listen },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux({ maxInboundStreams: 64, maxOutboundStreams: 64 })],
      connectionGater: createGater(
        (peerId) => this.admit(peerId),
        (peerId, reason, direction) => this.onDenied(peerId, reason, direction),
      ),
      connectionManager: { inboundConnectionThreshold: this.inboundConnectionThreshold },
      start: false,
    })
    node.addEventListener('connection:open', this.onConnectionOpen)
    node.addEventListener('peer:disconnect', this.onPeerDisconnect)
    try {
      await node.handle(
        READY_PROTOCOL,
        (stream) => void stream.close().catch((err: Error) => stream.abort(err)),
        { maxInboundStreams: 2, maxOutboundStreams: 2 },
      )
      for (const protocol of this.handlers.keys())
        await node.handle(protocol, this.inbound.handler(protocol), this.access.streamOptions(protocol))
      for (const [key, addrs] of this.bootstrap) {
        await node.peerStore.merge(peerIdFromValidatorKey(key), {
          multiaddrs: addrs.map((a) => parseAddr(a, 'bootstrap')),
        })
      }
      // Set before listening: peers that connect during start must find the node to be marked ready.
      this.node = node
      await node.start()
    } catch (err) {
      this.node = undefined
      node.removeEventListener('connection:open', this.onConnectionOpen)
      node.removeEventListener('peer:disconnect', this.onPeerDisconnect)
      await Promise.resolve()
        .then(() => node.stop())
        .catch(() => {})
      throw err
    }
    this.log.info({ peerId: this.peerId, addrs: this.multiaddrs() }, 'p2p started')
    this.reconnector.start()
  }

  async stop(): Promise<void> {
    if (this.starting) await this.starting.catch(() => {})
    const node = this.node
    if (!node) return
    this.node = undefined
    this.ready.clear()
    this.reconnector.stop()
    this.outbound.closeAll()
    try {
      await node.stop()
    } finally {
      node.removeEventListener('connection:open', this.onConnectionOpen)
      node.removeEventListener('peer:disconnect', this.onPeerDisconnect)
      this.log.info({}, 'p2p stopped')
    }
  }

  multiaddrs(): string[] {
    return this.node ? this.node.getMultiaddrs().map((a) => a.toString()) : []
  }

  // ---- protocols --------------------------------------------------------------------------------

  async handle(protocol: string, handler: MessageHandler, limits?: ProtocolLimits): Promise<void> {
    if (typeof protocol !== 'string' || !protocol.startsWith('/'))
      throw p2pError('P2P_BAD_OPTIONS', `protocol must be a string starting with '/', got ${protocol}`)
    if (typeof handler !== 'function') throw p2pError('P2P_BAD_OPTIONS', 'handler must be a function')
    const known = this.handlers.has(protocol)
    this.handlers.set(protocol, {
      handler,
      limits: limits && checkLimits(limits, `handle('${protocol}').limits`),
    })
    if (this.node && !known)
      await this.node.handle(protocol, this.inbound.handler(protocol), this.access.streamOptions(protocol))
  }

  async send(peer: string, protocol: string, data: Uint8Array): Promise<void> {
    const key = normalizeValidatorKey(peer)
    this.requireNode()
    this.checkOutgoing(protocol, data)
    this.access.requirePermitted(key, protocol)
    await this.outbound.send(key, protocol, encodeFrame(data))
  }

  async broadcast(protocol: string, data: Uint8Array): Promise<string[]> {
    this.requireNode()
    this.checkOutgoing(protocol, data)
    const frame = encodeFrame(data)
    const targets = this.peers()
      .map((p) => p.publicKey)
      .filter((k) => this.access.limitsOf(k, protocol) !== undefined)
    const results = await Promise.allSettled(targets.map((peer) => this.outbound.send(peer, protocol, frame)))
    const sent: string[] = []
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') sent.push(targets[i]!)
      else this.log.debug({ peer: targets[i], protocol, err: String(r.reason) }, 'broadcast to peer failed')
    })
    return sent
  }

  async request(
    peer: string,
    protocol: string,
    data: Uint8Array,
    options: RequestOptions = {},
  ): Promise<Uint8Array> {
    const key = normalizeValidatorKey(peer)
    this.requireNode()
    const limits = this.checkOutgoing(protocol, data)
    this.access.requirePermitted(key, protocol)
    const timeoutMs = positive(options.timeoutMs ?? this.requestTimeoutMs, 'timeoutMs')
    if (options.signal?.aborted) throw p2pError('P2P_ABORTED', 'request aborted by the caller')

    return sendRequest({
      peer: key,
      protocol,
      data,
      limits,
      timeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
      clock: this.clock,
      slots: this.requestSlots,
      openStream: (signal) => this.openStream(key, protocol, signal),
      penalizeResponse: (err) =>
        this.penalize(key, `${err.code} in response on ${protocol}`, this.weights.badFrame),
    })
  }

  // ---- peers and penalties ----------------------------------------------------------------------

  penalize(peer: string, reason: string, weight: number = this.weights.default): void {
    const key = normalizeValidatorKey(peer)
    if (key === this.publicKey || this.scores.isBanned(key)) return
    const r = this.scores.add(key, weight)
    this.log.debug({ peer: key, reason, weight, score: r.score }, 'peer penalised')
    this.events.emit('peer:penalized', { peer: key, reason, weight, score: r.score })
    if (r.banned && r.bannedUntil !== undefined) {
      this.log.warn({ peer: key, reason, score: r.score, banMs: this.scores.policy.banMs }, 'peer banned')
      this.events.emit('peer:banned', { peer: key, reason, until: r.bannedUntil })
      this.disconnect(key)
    }
  }

  score(peer: string): number {
    return this.scores.score(normalizeValidatorKey(peer))
  }

  peers(): PeerInfo[] {
    const node = this.node
    if (!node) return []
    const byPeer = new Map<string, string[]>()
    for (const conn of node.getConnections()) {
      if (conn.status !== 'open') continue
      const key = validatorKeyOfPeerId(conn.remotePeer)
      if (key === undefined || !this.ready.has(key) || this.access.admitKey(key) !== undefined) continue
      const addrs = byPeer.get(key) ?? []
      addrs.push(conn.remoteAddr.toString())
      byPeer.set(key, addrs)
    }
    return [...byPeer.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([publicKey, addrs]) => ({
        publicKey,
        addrs,
        bootstrap: this.bootstrap.has(publicKey),
        role: this.access.roleOf(publicKey) ?? 'validator',
      }))
  }

  bufferedBytes(peer: string): number {
    return this.inbound.heldBytes(normalizeValidatorKey(peer))
  }

  partialBudget(peer: string): number {
    return this.access.partialBudget(normalizeValidatorKey(peer))
  }

  limitsOf(peer: string, protocol: string): ProtocolLimits | undefined {
    return this.access.limitsOf(normalizeValidatorKey(peer), protocol)
  }

  async setAllowed(keys: string[]): Promise<void> {
    if (!Array.isArray(keys)) throw p2pError('P2P_BAD_OPTIONS', 'allowed must be an array of hex public keys')
    this.access.setAllowed(new Set(keys.map((k, i) => normalizeValidatorKey(k, `allowed[${i}]`))))
    const node = this.node
    if (!node) return
    const drop = new Set<string>()
    for (const conn of node.getConnections()) {
      const key = validatorKeyOfPeerId(conn.remotePeer)
      if (key === undefined || this.access.roleOf(key) === undefined) drop.add(conn.remotePeer.toString())
    }
    for (const conn of node.getConnections())
      if (drop.has(conn.remotePeer.toString()))
        await conn.close().catch(() => conn.abort(new Error('no longer allowed')))
  }

  // ---- internals --------------------------------------------------------------------------------

  private requireNode(): Libp2p {
    if (!this.node) throw p2pError('P2P_NOT_STARTED', 'p2p is not started')
    return this.node
  }

  private checkOutgoing(protocol: string, data: Uint8Array): ProtocolLimits {
    return checkOutgoing(protocol, data, this.access.limitsFor(protocol))
  }

  private admit(peerId: PeerId): DenyReason | undefined {
    const key = validatorKeyOfPeerId(peerId)
    return key === undefined ? 'not-allowed' : this.access.admitKey(key)
  }

  private onDenied(peerId: PeerId, reason: DenyReason, direction: 'inbound' | 'outbound'): void {
    const peer = validatorKeyOfPeerId(peerId)
    this.log.debug({ peer: peer ?? peerId.toString(), reason, direction }, 'connection denied')
    this.events.emit('connection:denied', { peer, reason, direction })
  }

  private isConnected(key: string): boolean {
    return this.openConnection(key) !== undefined
  }

  /** An open connection to a peer that has accepted us (see READY_PROTOCOL). */
  private openConnection(key: string): Connection | undefined {
    if (!this.ready.has(key)) return undefined
    return this.node?.getConnections(peerIdFromValidatorKey(key)).find((c) => c.status === 'open')
  }

  /**
   * Resolves once the connection is known to be accepted by both sides, then marks the peer ready.
   * Inbound connections passed our gater after the dialer chose us; outbound ones need one negotiated stream.
   */
  private confirm(conn: Connection): Promise<void> {
    let p = this.confirming.get(conn)
    if (p) return p
    p = (async () => {
      const key = validatorKeyOfPeerId(conn.remotePeer)
      if (key === undefined || this.access.admitKey(key) !== undefined) {
        conn.abort(new Error('peer not allowed'))
        throw p2pError('P2P_NOT_ALLOWED', 'peer not allowed')
      }
      if (conn.direction === 'outbound') {
        const stream = await conn.newStream(READY_PROTOCOL)
        void stream.close().catch((err: Error) => stream.abort(err))
      }
      if (conn.status === 'open' && this.node) this.markReady(key)
    })()
    this.confirming.set(conn, p)
    p.catch(() => {})
    return p
  }

  private markReady(key: string): void {
    if (this.ready.has(key)) return
    this.ready.add(key)
    this.reconnector.connected(key)
    this.log.info({ peer: key }, 'peer connected')
    this.events.emit('peer:connect', { peer: key })
  }

  /** A new stream on an existing connection: sends and requests never dial on their own. */
  private async openStream(key: string, protocol: string, signal?: AbortSignal): Promise<Stream> {
    const conn = this.openConnection(key)
    if (!conn) throw p2pError('P2P_NOT_CONNECTED', `not connected to ${key.slice(0, 16)}`, { peer: key })
    try {
      return await conn.newStream(protocol, signal ? { signal } : {})
    } catch (err) {
      if (signal?.aborted) throw signal.reason
      throw p2pError(
        'P2P_STREAM_ERROR',
        `cannot open ${protocol} to ${key.slice(0, 16)}: ${(err as Error).message}`,
        {
          peer: key,
          protocol,
          cause: (err as Error).name,
        },
      )
    }
  }

  /** Drops every connection to a banned peer at once. */
  private disconnect(key: string): void {
    this.outbound.closePeer(key)
    const node = this.node
    if (!node) return
    // A hard reset: a graceful close would wait on the peer to close its streams.
    const err = new Error('peer banned')
    for (const conn of node.getConnections(peerIdFromValidatorKey(key))) conn.abort(err)
  }

  private readonly onConnectionOpen = (evt: CustomEvent<Connection>): void => {
    const conn = evt.detail
    if (!this.keepOneConnection(conn)) return
    this.confirm(conn).catch((err: Error) => {
      this.log.debug(
        { peer: validatorKeyOfPeerId(conn.remotePeer), direction: conn.direction, err: String(err) },
        'connection not confirmed',
      )
      // The remote refused us (or vanished): do not keep a half-accepted connection around.
      if (conn.status === 'open') conn.abort(err)
    })
  }

  /** One connection per peer key (see keepOneConnection). False when `conn` itself was dropped. */
  private keepOneConnection(conn: Connection): boolean {
    const node = this.node
    const key = validatorKeyOfPeerId(conn.remotePeer)
    if (!node || key === undefined) return true
    return keepOneConnection(node.getConnections(conn.remotePeer), conn, this.publicKey, key, this.log)
  }

  private readonly onPeerDisconnect = (evt: CustomEvent<PeerId>): void => {
    const key = validatorKeyOfPeerId(evt.detail)
    if (key === undefined) return
    this.outbound.closePeer(key)
    if (this.ready.delete(key)) {
      this.log.info({ peer: key }, 'peer disconnected')
      this.events.emit('peer:disconnect', { peer: key })
    }
    if (this.node) this.reconnector.disconnected(key)
  }
}
