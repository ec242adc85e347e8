import { p2pError } from './errors.ts'
import { DEFAULT_MAX_STREAMS, partialBudgetFor } from './limits.ts'
import type { DenyReason, PartialFramePolicy, PeerRole, ProtocolLimits } from './types.ts'

/** What `PeerAccess` decides from. */
export interface PeerAccessOptions {
  /** Our own key: never admitted. */
  self: string
  allowed: Set<string>
  observers: Set<string>
  /** Limits configured per protocol (`P2POptions.limits`), below those a handler registers with. */
  limits: Map<string, ProtocolLimits>
  defaultLimits: ProtocolLimits
  /** The protocols open to observers, with their limits; every other one is closed to them. */
  observerLimits: Map<string, ProtocolLimits>
  partialPolicy: Required<PartialFramePolicy>
  isBanned(key: string): boolean
  /** The limits a handler was registered with (`P2P.handle`), if any. */
  handlerLimits(protocol: string): ProtocolLimits | undefined
  /** Every protocol with a handler. */
  handled(): Iterable<string>
}

/**
 * Who may connect (a validator in the allow-list or an observer, not banned, not ourselves) and what
 * each role may use: the limits of each protocol for a validator, only `observerLimits`' protocols
 * for an observer. The allow-list follows the validator set (`setAllowed`).
 */
export class PeerAccess {
  readonly #o: PeerAccessOptions
  #allowed: Set<string>

  constructor(o: PeerAccessOptions) {
    this.#o = o
    this.#allowed = o.allowed
  }

  setAllowed(keys: Set<string>): void {
    this.#allowed = keys
  }

  roleOf(key: string): PeerRole | undefined {
    if (this.#allowed.has(key)) return 'validator'
    if (this.#o.observers.has(key)) return 'observer'
    return undefined
  }

  /** Why a peer may not connect right now, or undefined when it may. */
  admitKey(key: string): DenyReason | undefined {
    if (key === this.#o.self || this.roleOf(key) === undefined) return 'not-allowed'
    if (this.#o.isBanned(key)) return 'banned'
    return undefined
  }

  /** A validator's limits on `protocol`. */
  limitsFor(protocol: string): ProtocolLimits {
    return this.#o.handlerLimits(protocol) ?? this.#o.limits.get(protocol) ?? this.#o.defaultLimits
  }

  /** The limits of `protocol` for `key`'s role; undefined when the peer or the protocol is not open to it. */
  limitsOf(key: string, protocol: string): ProtocolLimits | undefined {
    const role = this.roleOf(key)
    if (role === undefined) return undefined
    return role === 'observer' ? this.#o.observerLimits.get(protocol) : this.limitsFor(protocol)
  }

  /** Bytes of unfinished frames `key` may have buffered at once. */
  partialBudget(key: string): number {
    const { partialPolicy, observerLimits, limits } = this.#o
    if (partialPolicy.maxBytesPerPeer > 0) return partialPolicy.maxBytesPerPeer
    if (this.roleOf(key) === 'observer') return partialBudgetFor(observerLimits.values())
    const protocols = new Set([...this.#o.handled(), ...limits.keys()])
    return partialBudgetFor([...protocols].map((p) => this.limitsFor(p)))
  }

  /** Throws unless `key` is connected-able now and `protocol` is open to its role. */
  requirePermitted(key: string, protocol: string): void {
    if (this.admitKey(key) !== undefined)
      throw p2pError('P2P_NOT_ALLOWED', `peer ${key.slice(0, 16)} is not allowed or is banned`, { peer: key })
    if (this.limitsOf(key, protocol) === undefined)
      throw p2pError('P2P_NOT_ALLOWED', `${protocol} is not open to observer ${key.slice(0, 16)}`, {
        peer: key,
        protocol,
      })
  }

  /** libp2p's own per-connection stream caps, from the largest of the roles' `maxStreams`. */
  streamOptions(protocol: string): { maxInboundStreams: number; maxOutboundStreams: number } {
    // Twice our own per-peer cap (InboundGate): a backstop that leaves room for streams still closing.
    const n =
      2 *
      Math.max(
        this.limitsFor(protocol).maxStreams ?? DEFAULT_MAX_STREAMS,
        this.#o.observerLimits.get(protocol)?.maxStreams ?? 0,
      )
    return { maxInboundStreams: n, maxOutboundStreams: n }
  }
}
