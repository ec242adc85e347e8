import { decodeMessage } from '../messages/codec.ts'
import type { ConsensusMessage } from '../messages/types.ts'

/**
 * `decodeMessage` for the simulator's own reads of messages (Byzantine replicas, lies, the amplification
 * check), memoised per bytes object and size limit: a Byzantine replica decodes its message once per
 * destination otherwise, and strict decoding re-encodes the whole message (megabytes with big blocks).
 *
 * Sound because message bytes are never written once built (the replica never writes into its inputs;
 * the simulator builds garbage and lies in fresh buffers), and decoding is a pure function of the bytes
 * and the limit. The results are shared, so they are frozen: a reader that tried to modify one would
 * throw instead of changing what the next reader sees. The simulator's replicas get `decodeForReplica`
 * (the same cache, errors kept): the replica never modifies a message it decoded, and a frozen one would
 * make it throw if it did. The node's replicas decode for themselves.
 */
/** A decode that threw (its error kept to throw again). */
class Failed {
  readonly error: unknown
  constructor(error: unknown) {
    this.error = error
  }
}
const cache = new WeakMap<Uint8Array, Map<number, ConsensusMessage | Failed>>()

/** The decoded message, or undefined where `decodeMessage` throws. `maxBytes` as in `decodeMessage`. */
export function decodeShared(bytes: Uint8Array, maxBytes?: number): ConsensusMessage | undefined {
  const m = lookup(bytes, maxBytes)
  return m instanceof Failed ? undefined : m
}

/** `decodeMessage` as a replica's `ReplicaConfig.decodeMessage`: memoised, its error thrown again. */
export function decodeForReplica(bytes: Uint8Array, maxBytes: number): ConsensusMessage {
  const m = lookup(bytes, maxBytes)
  if (m instanceof Failed) throw m.error
  return m
}

function lookup(bytes: Uint8Array, maxBytes: number | undefined): ConsensusMessage | Failed {
  const key = maxBytes ?? -1
  let byLimit = cache.get(bytes)
  if (!byLimit) cache.set(bytes, (byLimit = new Map()))
  let m = byLimit.get(key)
  if (m === undefined) {
    try {
      m = deepFreeze(decodeMessage(bytes, maxBytes === undefined ? {} : { maxBytes }))
    } catch (error) {
      m = new Failed(error)
    }
    byLimit.set(key, m)
  }
  return m
}

/** Freezes objects and arrays all the way down (byte arrays cannot be frozen; nobody writes bytes). */
function deepFreeze<T>(v: T): T {
  if (typeof v !== 'object' || v === null || ArrayBuffer.isView(v) || Object.isFrozen(v)) return v
  for (const x of Object.values(v)) deepFreeze(x)
  return Object.freeze(v)
}
