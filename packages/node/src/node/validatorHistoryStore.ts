// The node's copy of the validator history (validatorHistory.ts), kept for good in its own namespace of
// the store (`STORE_PREFIX.validatorHistory`, key: seq as 8 bytes): block and state history may be
// pruned, the evidence that a set announced the next may not, or no joiner could walk past it. An entry
// is built from the store soon after the block that certifies it commits (and always before a prune);
// a state-synced node saves the entries it walked, so it serves them too.
import {
  type ChainStore,
  type KvStore,
  type ValidatorChange,
  ZERO_HASH,
  decodeCertificate,
  encodeStateProof,
  equalBytes,
  isCityError,
  utf8,
  validatorChangeKey,
} from '@cityledger/core'
import type { ValidatorSchedule } from '@cityledger/consensus'
import type { Logger } from '../log/index.ts'
import { type HistoryEntry, encodeHistoryEntry } from './validatorHistory.ts'

/** seq as 8 bytes big-endian: byte order is numeric order. */
const seqKey = (seq: number): Uint8Array => {
  const k = new Uint8Array(8)
  new DataView(k.buffer).setBigUint64(0, BigInt(seq))
  return k
}
const readSeq = (k: Uint8Array): number =>
  k.length === 8 ? Number(new DataView(k.buffer, k.byteOffset, 8).getBigUint64(0)) : -1

/** Reads the stored entries `from`, `from + 1`, ... (at most `limit`, about `maxBytes`; at least one if any). */
export async function readHistory(
  kv: KvStore,
  from: number,
  limit: number,
  maxBytes: number,
): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  let size = 0
  for await (const [k, v] of kv.iterate({ gte: seqKey(from) })) {
    if (readSeq(k) !== from + out.length) break
    if (out.length >= limit || (out.length > 0 && size + v.length > maxBytes)) break
    out.push(v)
    size += v.length
  }
  return out
}

/** Stores entries (already walked: the caller checked them). */
export async function saveHistory(kv: KvStore, entries: readonly HistoryEntry[]): Promise<void> {
  if (entries.length === 0) return
  await kv.write(entries.map((e) => ({ type: 'put', key: seqKey(e.seq), value: encodeHistoryEntry(e) })))
}

export interface ValidatorHistoryStoreOptions {
  /** The history's own namespace (subKv of the node's store). */
  kv: KvStore
  store: Pick<ChainStore, 'height' | 'getBlock' | 'getCertificate' | 'state'>
  /** The runtime's records after `after` (Runtime.validatorChanges over the latest state). */
  readChanges: (after: number) => ValidatorChange[]
  /** The node's schedule (EpochReplicas): record i is epoch i. */
  schedule: () => ValidatorSchedule
  logger: Logger
}

/**
 * Builds and keeps the entries of this node's chain. `update()` adds the entries it can build now and
 * never fails (a missing block or state version is skipped: another height of the range may do, or a
 * later call); `committed()` starts one in the background when a record has no entry yet.
 *
 * @example
 * const history = new ValidatorHistoryStore({ kv: subKv(kv, STORE_PREFIX.validatorHistory), store, readChanges, schedule, logger })
 * onCommitted: () => history.committed()
 */
export class ValidatorHistoryStore {
  readonly #o: ValidatorHistoryStoreOptions
  /** Entries 1..#count are stored; undefined until the first update reads it. */
  #count: number | undefined
  #running: Promise<void> | undefined

  constructor(o: ValidatorHistoryStoreOptions) {
    this.#o = o
  }

  get kv(): KvStore {
    return this.#o.kv
  }

  /** Starts an update when a recorded change has no entry yet (cheap otherwise: one state read). */
  committed(): void {
    if (this.#running) return
    if (this.#count !== undefined && this.#o.readChanges(this.#count).length === 0) return
    void this.update()
  }

  /** Builds every entry it can now; resolves when done (joins a run in progress). */
  update(): Promise<void> {
    this.#running ??= this.#update()
      .catch((err) => {
        if (isCityError(err, 'STORE_CLOSED')) this.#o.logger.debug({}, 'validator history: the store closed')
        else this.#o.logger.warn({ err: String(err) }, 'validator history: update failed')
      })
      .finally(() => {
        this.#running = undefined
      })
    return this.#running
  }

  async #update(): Promise<void> {
    if (this.#count === undefined) {
      let n = 0
      for await (const [k] of this.#o.kv.iterate({})) {
        if (readSeq(k) !== n + 1) break
        n++
      }
      this.#count = n
    }
    for (const change of this.#o.readChanges(this.#count)) {
      const entry = await this.#build(change)
      if (!entry) return
      await saveHistory(this.#o.kv, [entry])
      this.#count = change.seq
      this.#o.logger.info(
        { seq: change.seq, height: decodeCertificate(entry.certificate).height },
        'validator history: entry stored',
      )
    }
  }

  /** The entry of `change` from a certified block of its range still in the store, if any. */
  async #build(change: ValidatorChange): Promise<HistoryEntry | undefined> {
    const { store } = this.#o
    const epoch = this.#o.schedule().epochs[change.seq]
    if (!epoch || epoch.epoch !== change.seq) return undefined
    const key = utf8.encode(validatorChangeKey(change.seq))
    const last = Math.min(epoch.firstHeight - 1, store.height())
    for (let b = change.executedAt + 1; b <= last; b++) {
      try {
        const certificate = await store.getCertificate(b)
        if (!certificate || equalBytes(decodeCertificate(certificate).blockHash, ZERO_HASH)) continue
        const block = await store.getBlock(b)
        const p = await store.state.prove(key, b - 1)
        if (!block || p.value === undefined || !equalBytes(p.root, block.header.prevStateRoot)) continue
        return {
          seq: change.seq,
          headerBytes: block.headerBytes,
          certificate,
          value: p.value,
          proof: encodeStateProof(p.proof),
        }
      } catch (err) {
        // Pruned block or state version: try the next height of the range.
        this.#o.logger.debug({ seq: change.seq, height: b, err: String(err) }, 'validator history: skipped')
      }
    }
    if (store.height() >= epoch.firstHeight)
      this.#o.logger.warn(
        { seq: change.seq, from: change.executedAt + 1, to: epoch.firstHeight - 1 },
        'validator history: no certified block of the range is in the store; joiners by state sync cannot walk past this change',
      )
    return undefined
  }
}
