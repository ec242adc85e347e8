import { CodecError } from '../codec/msgpack.ts'
import { type Tx, decodeTx, txSignatureCheck } from '../codec/tx.ts'
import { CityError } from '../errors/index.ts'
import { MempoolError } from './errors.ts'
import { BoundedHashSet, type HashLike, hashKey } from './hashSet.ts'
import { SIGNATURE_BATCH_SIZE, SignatureBatcher } from './signatureBatcher.ts'
import type {
  AddResult,
  Mempool,
  MempoolOptions,
  MempoolStats,
  MempoolUpdate,
  ReapLimits,
  RemovalReason,
  UpdateResult,
} from './types.ts'
import { VerifiedCache } from './verifiedCache.ts'

/** Committed hashes remembered for duplicate detection, by default. */
export const RECENT_CAPACITY = 100_000
/** Blocks a tx may wait behind a missing nonce of its signer before it is dropped, by default. */
export const GAP_WAIT_BLOCKS = 20

interface Entry {
  tx: Tx
  key: string
  signerKey: string
  size: number
  /** Arrival order; entries are inserted into `entries` in this order too. */
  seq: number
  /** Committed height when it arrived (how long it has waited behind a gap). */
  since: number
  /** `admitting` holds its slot (hash, nonce, capacity) while the signature is checked. */
  state: 'admitting' | 'pending'
}

interface SignerQueue {
  key: string
  signer: Uint8Array
  byNonce: Map<number, Entry>
}

function positiveInt(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
    throw new CityError('BAD_CONFIG', `${field}: expected a positive integer, got ${String(v)}`, { field })
  }
  return v
}

function asCityError(err: unknown, fallback: 'CHECK_FAILED' | 'VERIFIER_FAILED' | 'INTERNAL'): CityError {
  if (err instanceof CityError) return err
  const message = err instanceof Error ? err.message : String(err)
  return new MempoolError(fallback, message, { cause: message })
}

const noRemovals = (): Record<RemovalReason, number> => ({
  committed: 0,
  nonce: 0,
  expired: 0,
  check: 0,
  gap: 0,
})

/** Creates a mempool; see `Mempool` and `MempoolOptions`. */
export function createMempool(options: MempoolOptions): Mempool {
  const { chainId, verifier } = options
  // Called through `options` so that methods of a node object keep their `this`.
  const committedNonce = (signer: Uint8Array): number => options.committedNonce(signer)
  const height = (): number => options.height()
  const check =
    options.check === undefined
      ? undefined
      : (tx: Tx): void => {
          try {
            options.check!(tx)
          } catch (err) {
            throw asCityError(err, 'CHECK_FAILED')
          }
        }
  if (typeof chainId !== 'string')
    throw new CityError('BAD_CONFIG', 'chainId: expected a string', { field: 'chainId' })
  const maxTxs = positiveInt(options.limits?.maxTxs, 'limits.maxTxs')
  const maxBytes = positiveInt(options.limits?.maxBytes, 'limits.maxBytes')
  const maxTxBytes = positiveInt(options.limits?.maxTxBytes, 'limits.maxTxBytes')
  const maxPerSigner = positiveInt(options.limits?.maxPerSigner, 'limits.maxPerSigner')
  const maxGapWait = positiveInt(
    options.limits?.maxGapWaitBlocks ?? GAP_WAIT_BLOCKS,
    'limits.maxGapWaitBlocks',
  )
  const verifiedCache = options.verifiedCache ?? new VerifiedCache()
  const batcher = new SignatureBatcher(
    verifier,
    positiveInt(options.maxSignatureBatch ?? SIGNATURE_BATCH_SIZE, 'maxSignatureBatch'),
  )
  const recent = new BoundedHashSet(positiveInt(options.recentCapacity ?? RECENT_CAPACITY, 'recentCapacity'))

  // Every held tx (admitting or pending) in arrival order.
  const entries = new Map<string, Entry>()
  const signers = new Map<string, SignerQueue>()
  const listeners = new Set<(tx: Tx) => void>()
  let seq = 0
  let heldCount = 0
  let heldBytes = 0
  let pendingCount = 0
  let pendingBytes = 0
  const counters = {
    added: 0,
    rejected: {} as Record<string, number>,
    removed: noRemovals(),
    cacheHits: 0,
    listenerErrors: 0,
  }

  const expired = (tx: Tx, h: number): boolean => tx.body.expiry !== 0 && tx.body.expiry <= h

  function refuse(err: unknown): CityError {
    const e = asCityError(err, 'INTERNAL')
    counters.rejected[e.code] = (counters.rejected[e.code] ?? 0) + 1
    return e
  }

  /** The synchronous checks, in the documented order; on success the tx holds its slot. */
  function reserve(bytes: Uint8Array): Entry {
    if (!(bytes instanceof Uint8Array)) throw new CodecError('MALFORMED', 'tx: expected a byte array')
    if (bytes.length > maxTxBytes) {
      throw new MempoolError('TX_TOO_LARGE', `tx is ${bytes.length} bytes, limit ${maxTxBytes}`, {
        size: bytes.length,
        limit: maxTxBytes,
      })
    }
    // Decoded byte fields are views into the input: copy a view of a larger buffer (a network read),
    // or every pending tx would keep its whole read buffer alive.
    const input = bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice()
    const tx = decodeTx(input, maxTxBytes)
    const { body } = tx
    if (body.chainId !== chainId) {
      throw new MempoolError('WRONG_CHAIN', `tx is for chain ${body.chainId}, this is ${chainId}`, {
        expected: chainId,
        got: body.chainId,
      })
    }
    const h = height()
    if (expired(tx, h)) {
      throw new MempoolError('TX_EXPIRED', `tx expired at height ${body.expiry}, height is ${h}`, {
        expiry: body.expiry,
        height: h,
      })
    }
    const key = hashKey(tx.hash)
    if (entries.has(key) || recent.has(key))
      throw new MempoolError('DUPLICATE_TX', `tx ${key} is already known`, { hash: key })
    const committed = committedNonce(body.signer)
    if (body.nonce <= committed) {
      throw new MempoolError(
        'NONCE_TOO_LOW',
        `nonce ${body.nonce} is not above committed nonce ${committed}`,
        { nonce: body.nonce, committed },
      )
    }
    const queue = signers.get(hashKey(body.signer))
    if (queue?.byNonce.has(body.nonce)) {
      throw new MempoolError('NONCE_TAKEN', `signer already has a pending tx with nonce ${body.nonce}`, {
        nonce: body.nonce,
      })
    }
    if (body.nonce > committed + maxPerSigner) {
      // Every nonce of the window is held: the signer is early, not wrong (retry after a commit).
      if (queue && queue.byNonce.size >= maxPerSigner) {
        throw new MempoolError(
          'MEMPOOL_FULL',
          `signer has ${queue.byNonce.size} txs pending, the most one signer may hold; retry after a commit`,
          { signerPending: queue.byNonce.size, maxPerSigner },
        )
      }
      throw new MempoolError(
        'NONCE_GAP',
        `nonce ${body.nonce} is more than ${maxPerSigner} ahead of committed nonce ${committed}`,
        {
          nonce: body.nonce,
          committed,
          maxAhead: maxPerSigner,
        },
      )
    }
    const size = tx.bytes.length
    if (heldCount + 1 > maxTxs || heldBytes + size > maxBytes) {
      throw new MempoolError('MEMPOOL_FULL', `mempool is full (${heldCount} txs, ${heldBytes} bytes)`, {
        txs: heldCount,
        bytes: heldBytes,
        maxTxs,
        maxBytes,
      })
    }
    // Entries of one signer share its queue's key string (100k pending txs, 10k signers: 90k fewer strings).
    const signerKey = queue ? queue.key : hashKey(body.signer)
    const entry: Entry = { tx, key, signerKey, size, seq: seq++, since: h, state: 'admitting' }
    entries.set(key, entry)
    if (queue) queue.byNonce.set(body.nonce, entry)
    else
      signers.set(signerKey, { key: signerKey, signer: body.signer, byNonce: new Map([[body.nonce, entry]]) })
    heldCount++
    heldBytes += size
    return entry
  }

  function release(entry: Entry): void {
    entries.delete(entry.key)
    const queue = signers.get(entry.signerKey)
    if (queue && queue.byNonce.get(entry.tx.body.nonce) === entry) {
      queue.byNonce.delete(entry.tx.body.nonce)
      if (queue.byNonce.size === 0) signers.delete(entry.signerKey)
    }
    heldCount--
    heldBytes -= entry.size
    if (entry.state === 'pending') {
      pendingCount--
      pendingBytes -= entry.size
    }
  }

  /** After the signature passed: the state may have moved meanwhile (a commit), so look again. */
  function finish(entry: Entry): void {
    const { tx } = entry
    if (recent.has(entry.key))
      throw new MempoolError('DUPLICATE_TX', `tx ${entry.key} was committed`, { hash: entry.key })
    const committed = committedNonce(tx.body.signer)
    if (tx.body.nonce <= committed) {
      throw new MempoolError(
        'NONCE_TOO_LOW',
        `nonce ${tx.body.nonce} is not above committed nonce ${committed}`,
        {
          nonce: tx.body.nonce,
          committed,
        },
      )
    }
    const h = height()
    if (expired(tx, h)) {
      throw new MempoolError('TX_EXPIRED', `tx expired at height ${tx.body.expiry}, height is ${h}`, {
        expiry: tx.body.expiry,
        height: h,
      })
    }
    check?.(tx)
  }

  async function admit(entry: Entry): Promise<{ hash: Uint8Array }> {
    let ok: boolean
    if (verifiedCache.has(entry.key)) {
      counters.cacheHits++
      // Still yield: outcomes must not depend on the cache, so every admission finishes after the
      // synchronous checks of all adds made in the same tick, exactly as a verified one would.
      ok = await Promise.resolve(true)
    } else {
      try {
        ok = await batcher.verify(txSignatureCheck(entry.tx))
      } catch (err) {
        release(entry)
        throw refuse(asCityError(err, 'VERIFIER_FAILED'))
      }
    }
    if (!ok) {
      release(entry)
      throw refuse(
        new MempoolError('BAD_SIGNATURE', `tx ${entry.key}: signature does not verify`, { hash: entry.key }),
      )
    }
    // Validity of these exact bytes' signature is permanent, whatever happens to the tx next.
    verifiedCache.add(entry.key)
    try {
      finish(entry)
    } catch (err) {
      release(entry)
      throw refuse(err)
    }
    entry.state = 'pending'
    pendingCount++
    pendingBytes += entry.size
    counters.added++
    for (const l of listeners) {
      try {
        l(entry.tx)
      } catch {
        counters.listenerErrors++
      }
    }
    return { hash: entry.tx.hash }
  }

  function add(bytes: Uint8Array): Promise<{ hash: Uint8Array }> {
    let entry: Entry
    try {
      entry = reserve(bytes)
    } catch (err) {
      return Promise.reject(refuse(err))
    }
    return admit(entry)
  }

  function addMany(list: readonly Uint8Array[]): Promise<AddResult[]> {
    return Promise.all(
      list.map((bytes) =>
        add(bytes).then(
          ({ hash }): AddResult => ({ ok: true, hash }),
          (error: CityError): AddResult => ({ ok: false, error }),
        ),
      ),
    )
  }

  function reap(limits: ReapLimits): Tx[] {
    const wantTxs = limits?.maxTxs
    const wantBytes = limits?.maxBytes
    if (typeof wantTxs !== 'number' || !(wantTxs >= 0))
      throw new TypeError('reap.maxTxs: expected a number >= 0')
    if (typeof wantBytes !== 'number' || !(wantBytes >= 0))
      throw new TypeError('reap.maxBytes: expected a number >= 0')
    const out: Tx[] = []
    if (wantTxs === 0) return out
    // Each signer's cursor walks its contiguous run of pending nonces from committed + 1.
    let active: { queue: SignerQueue; entry: Entry }[] = []
    for (const queue of signers.values()) {
      const first = queue.byNonce.get(committedNonce(queue.signer) + 1)
      if (first?.state === 'pending') active.push({ queue, entry: first })
    }
    let bytes = 0
    while (active.length > 0) {
      // One round: every signer with something left gives its next tx, oldest arrival first.
      active.sort((a, b) => a.entry.seq - b.entry.seq)
      const next: typeof active = []
      for (const cursor of active) {
        if (out.length >= wantTxs) return out
        const { entry } = cursor
        // A tx that does not fit ends its signer's run (nonces cannot be skipped); smaller ones of others may fit.
        if (bytes + entry.size > wantBytes) continue
        out.push(entry.tx)
        bytes += entry.size
        const following = cursor.queue.byNonce.get(entry.tx.body.nonce + 1)
        if (following?.state === 'pending') next.push({ queue: cursor.queue, entry: following })
      }
      active = next
    }
    return out
  }

  function update(u: MempoolUpdate): UpdateResult {
    if (!Array.isArray(u?.committed))
      throw new TypeError('update.committed: expected an array of Txs or 32-byte hashes')
    if (!Number.isSafeInteger(u.height) || u.height < 0)
      throw new TypeError('update.height: expected a non-negative integer')
    // Validate everything before changing anything.
    const keys = u.committed.map((item, i) => {
      if (item instanceof Uint8Array) {
        if (item.length !== 32)
          throw new TypeError(`update.committed[${i}]: expected a 32-byte hash, got ${item.length} bytes`)
        return hashKey(item)
      }
      if (!(item?.hash instanceof Uint8Array))
        throw new TypeError(`update.committed[${i}]: expected a Tx or a hash`)
      return hashKey(item.hash)
    })
    const result: UpdateResult = { removed: noRemovals(), rechecked: 0, checkFailures: {} }
    const drop = (entry: Entry, reason: RemovalReason) => {
      release(entry)
      result.removed[reason]++
      counters.removed[reason]++
    }
    for (const key of keys) {
      recent.add(key)
      const entry = entries.get(key)
      // An admitting entry is settled by `finish`, which sees the hash in `recent`.
      if (entry?.state === 'pending') drop(entry, 'committed')
    }
    const nonces = new Map<string, number>()
    // Arrival order, so the service check sees transactions as they came.
    for (const entry of entries.values()) {
      if (entry.state !== 'pending') continue
      let committed = nonces.get(entry.signerKey)
      if (committed === undefined) {
        committed = committedNonce(entry.tx.body.signer)
        nonces.set(entry.signerKey, committed)
      }
      if (entry.tx.body.nonce <= committed) drop(entry, 'nonce')
      else if (expired(entry.tx, u.height)) drop(entry, 'expired')
      else if (check) {
        result.rechecked++
        try {
          check(entry.tx)
        } catch (err) {
          const code = (err as CityError).code
          result.checkFailures[code] = (result.checkFailures[code] ?? 0) + 1
          drop(entry, 'check')
        }
      }
    }
    dropStuck(u.height, nonces, drop)
    return result
  }

  /**
   * Drops pending txs that waited more than `maxGapWait` blocks behind a missing nonce of their
   * signer: a block may only hold a signer's next nonce, so they could not be included meanwhile,
   * and they must not hold capacity for ever.
   */
  function dropStuck(
    height: number,
    nonces: Map<string, number>,
    drop: (e: Entry, r: RemovalReason) => void,
  ) {
    const stuck: Entry[] = []
    for (const queue of signers.values()) {
      let next = (nonces.get(queue.key) ?? committedNonce(queue.signer)) + 1
      let run = 0
      while (queue.byNonce.has(next)) {
        next++
        run++
      }
      if (run === queue.byNonce.size) continue
      for (const [nonce, entry] of queue.byNonce) {
        if (nonce > next && entry.state === 'pending' && height - entry.since > maxGapWait) stuck.push(entry)
      }
    }
    for (const entry of stuck) drop(entry, 'gap')
  }

  function pendingEntry(hash: HashLike): Entry | undefined {
    const entry = entries.get(hashKey(hash))
    return entry?.state === 'pending' ? entry : undefined
  }

  return {
    verifiedCache,
    add,
    addMany,
    reap,
    update,
    size: () => pendingCount,
    held: () => heldCount,
    bytes: () => pendingBytes,
    has: (hash) => pendingEntry(hash) !== undefined,
    get: (hash) => pendingEntry(hash)?.tx,
    stats: (): MempoolStats => ({
      txs: pendingCount,
      bytes: pendingBytes,
      admitting: heldCount - pendingCount,
      added: counters.added,
      rejected: { ...counters.rejected },
      removed: { ...counters.removed },
      signatures: { batches: batcher.batches, checked: batcher.checked, cacheHits: counters.cacheHits },
      listenerErrors: counters.listenerErrors,
    }),
    onAdded(listener) {
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    },
  }
}
