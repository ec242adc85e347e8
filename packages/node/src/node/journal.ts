import { CityError, type KvOp, type KvStore, type Value, decodeStrict, encode } from '@cityledger/core'
import { type JournalEntry, compactJournal } from '@cityledger/consensus'

const seqKey = (n: number): Uint8Array => {
  const k = new Uint8Array(8)
  new DataView(k.buffer).setBigUint64(0, BigInt(n))
  return k
}

/** Key of the journal's epoch tag (not 8 bytes long, so never an entry's key). */
const EPOCH_KEY = new TextEncoder().encode('epoch')

/**
 * The consensus journal on disk: what this validator signed, appended durably (synced) before any
 * message that depends on it is sent, so a restart never makes it contradict itself. A journal that
 * does not decode stops the node with JOURNAL_CORRUPT: it is never skipped.
 */
export class Journal {
  private readonly kv: KvStore
  private entries: JournalEntry[]
  /** Key sequence number of each entry. */
  private seqs: number[]
  private next: number
  private epochTag: number
  private base: Uint8Array | undefined

  private constructor(
    kv: KvStore,
    entries: JournalEntry[],
    seqs: number[],
    epoch: number,
    base: Uint8Array | undefined,
  ) {
    this.kv = kv
    this.epochTag = epoch
    this.base = base
    this.entries = entries
    this.seqs = seqs
    this.next = (seqs.at(-1) ?? -1) + 1
  }

  /** `kv` is the journal's own namespace (subKv of the node's store). */
  static async open(kv: KvStore): Promise<Journal> {
    const entries: JournalEntry[] = []
    const seqs: number[] = []
    let last = -1
    let epoch = 0
    let base: Uint8Array | undefined
    for await (const [key, value] of kv.iterate({})) {
      if (key.length === EPOCH_KEY.length && key.every((b, i) => b === EPOCH_KEY[i])) {
        // An epoch (written before the base digest was kept), or [epoch, base checkpoint digest].
        const t = decodeStrict(value, { maxBytes: 64, maxDepth: 2 })
        const [e, d] = Array.isArray(t) && t.length === 2 ? t : [t, undefined]
        const isEpoch = typeof e === 'number' && Number.isSafeInteger(e) && e >= 0
        if (!isEpoch || (Array.isArray(t) && !(d instanceof Uint8Array && d.length === 32)))
          throw new CityError('JOURNAL_CORRUPT', 'consensus journal: the epoch tag is not an epoch')
        epoch = e as number
        base = d as Uint8Array | undefined
        continue
      }
      if (key.length !== 8)
        throw new CityError('JOURNAL_CORRUPT', `consensus journal: key of ${key.length} bytes`)
      const seq = Number(new DataView(key.buffer, key.byteOffset, 8).getBigUint64(0))
      if (seq <= last) throw new CityError('JOURNAL_CORRUPT', 'consensus journal: entries out of order')
      last = seq
      try {
        const v = decodeStrict(value, { maxBytes: 64 * 1024 * 1024, maxDepth: 16 }) as Record<string, Value>
        if (v === null || typeof v !== 'object' || typeof v.type !== 'string') throw new Error('not an entry')
        entries.push(v as unknown as JournalEntry)
        seqs.push(seq)
      } catch (err) {
        throw new CityError(
          'JOURNAL_CORRUPT',
          `consensus journal entry ${seq} does not decode (${(err as Error).message}); refusing to start`,
          { seq },
        )
      }
    }
    return new Journal(kv, entries, seqs, epoch, base)
  }

  all(): readonly JournalEntry[] {
    return this.entries
  }

  /** The epoch whose replica writes this journal. */
  get epoch(): number {
    return this.epochTag
  }

  /**
   * The checkpoint digest of the epoch's base height, kept with the tag: a restart inside the epoch needs
   * it, and the base block and state root may be pruned by then (`store.retainBlocks`).
   */
  get baseDigest(): Uint8Array | undefined {
    return this.base
  }

  /**
   * Empties the journal and tags it with `epoch` and its base checkpoint digest (one atomic, synced
   * batch): a new epoch's replica starts.
   */
  async reset(epoch: number, baseDigest?: Uint8Array): Promise<void> {
    const ops: KvOp[] = this.seqs.map((seq) => ({ type: 'del', key: seqKey(seq) }))
    const tag = baseDigest ? [epoch, Uint8Array.from(baseDigest)] : epoch
    ops.push({ type: 'put', key: EPOCH_KEY, value: encode(tag) })
    await this.kv.write(ops, { sync: true })
    this.entries = []
    this.seqs = []
    this.epochTag = epoch
    this.base = baseDigest && Uint8Array.from(baseDigest)
  }

  /** Durable once the promise resolves. */
  async append(entry: JournalEntry): Promise<void> {
    const seq = this.next++
    await this.kv.write([{ type: 'put', key: seqKey(seq), value: encode(entry) }], { sync: true })
    this.entries.push(entry)
    this.seqs.push(seq)
  }

  /** Rewrites the journal without what the stable checkpoint made useless (one atomic batch). */
  async compact(stableHeight: number): Promise<void> {
    const kept = compactJournal(this.entries, stableHeight)
    if (kept.length === this.entries.length) return
    const ops: KvOp[] = this.seqs.map((seq) => ({ type: 'del', key: seqKey(seq) }))
    const base = this.next
    kept.forEach((e, i) => ops.push({ type: 'put', key: seqKey(base + i), value: encode(e) }))
    await this.kv.write(ops, { sync: true })
    this.entries = kept
    this.seqs = kept.map((_, i) => base + i)
    this.next = base + kept.length
  }
}
