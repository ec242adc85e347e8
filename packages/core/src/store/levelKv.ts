import type { Level } from 'level'
import { StoreError, corrupt } from './errors.ts'
import { ManifestDamage, liveTables } from './levelManifest.ts'
import { TableDamage, checkTables } from './levelTables.ts'
import { checkOps, checkRange } from './checkOps.ts'
import type { KvOp, KvRange, KvStore, KvWriteOptions } from './kv.ts'

type Db = Level<Uint8Array, Uint8Array>
type Compactable = { compactRange(start: Uint8Array, end: Uint8Array): Promise<void> }

// classic-level hands back Buffers even with the 'view' encoding: give callers plain Uint8Arrays.
const plain = (b: Uint8Array): Uint8Array =>
  b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength)

/** The value of every entry of a `keysOnly` scan (shared: nobody may write into it). */
const NO_VALUE = new Uint8Array(0)

function levelCode(err: unknown): string {
  const e = err as { code?: string; cause?: { code?: string } } | null
  return `${e?.code ?? ''} ${e?.cause?.code ?? ''}`
}

function wrap(err: unknown, doing: string): StoreError {
  if (err instanceof StoreError) return err
  const code = levelCode(err)
  const msg = (err as Error)?.message ?? String(err)
  if (code.includes('LEVEL_LOCKED')) {
    return new StoreError('STORE_LOCKED', `${doing}: the database is in use by another process (${msg})`)
  }
  if (code.includes('LEVEL_CORRUPTION'))
    return new StoreError('STORE_CORRUPT', `${doing}: LevelDB reports corruption (${msg})`)
  if (code.includes('LEVEL_DATABASE_NOT_OPEN') && !code.includes('LEVEL_IO_ERROR')) {
    return new StoreError('STORE_CLOSED', `${doing}: store is closed (${msg})`)
  }
  return new StoreError('STORE_IO', `${doing}: ${msg}`, { levelCode: code.trim() })
}

/** LevelDB tuning; the defaults suit blocks that write tens of thousands of records. */
export interface LevelKvOptions {
  /** Memtable size, bytes (default 32 MiB: a big block then does not force a flush every commit). */
  writeBufferSize?: number
  /** Block cache, bytes (default 32 MiB). */
  cacheSize?: number
  /** Target size of table files, bytes (default 8 MiB: fewer files to open and compact). */
  maxFileSize?: number
  /**
   * Check every table file against its block checksums when opening (default true): LevelDB (as
   * classic-level opens it) verifies no checksum, so damage would surface only on the read that
   * touches it. Costs one read of the whole store at start.
   */
  checkTables?: boolean
}

/**
 * Opens (creating if missing) a LevelDB database at `path` as a KvStore. Batches go through LevelDB's
 * write batch, which is atomic; `sync: true` makes the write durable before the promise resolves.
 * Fails with `STORE_LOCKED` when another process holds the folder, and with `STORE_CORRUPT` naming the
 * file when a table file fails its checksums (see `checkTables`).
 */
export async function openLevelKv(path: string, options: LevelKvOptions = {}): Promise<KvStore> {
  if (typeof path !== 'string' || path === '')
    throw new StoreError('STORE_BAD_INPUT', 'path: expected a folder path')
  // Checked before LevelDB opens the folder: its start-up compaction reads tables, and a damaged one
  // can abort the process (classic-level's LevelDB keeps its assertions). A refused folder is left as
  // it was. Only the tables the manifest lists are checked: others are a crash's leftovers (maybe
  // partial), which LevelDB deletes when it opens.
  if (options.checkTables !== false) {
    try {
      const tables = liveTables(path)
      if (tables) await checkTables(path, tables)
    } catch (err) {
      const advice = 'restore the data folder from a backup or resync the node'
      if (err instanceof TableDamage) throw corrupt(`LevelDB table ${err.message}`, advice, { path })
      if (err instanceof ManifestDamage) throw corrupt(`LevelDB manifest ${err.message}`, advice, { path })
      throw wrap(err, `checking the tables of ${path}`)
    }
  }
  // Loaded here, not at import: programs that only build and sign txs (the light client) never load
  // LevelDB's native library.
  const { Level } = await import('level')
  const db: Db = new Level<Uint8Array, Uint8Array>(path, {
    keyEncoding: 'view',
    valueEncoding: 'view',
    writeBufferSize: options.writeBufferSize ?? 32 * 1024 * 1024,
    cacheSize: options.cacheSize ?? 32 * 1024 * 1024,
    maxFileSize: options.maxFileSize ?? 8 * 1024 * 1024,
  })
  try {
    await db.open()
  } catch (err) {
    throw wrap(err, `opening ${path}`)
  }
  let closed = false
  const live = (): void => {
    if (closed) throw new StoreError('STORE_CLOSED', 'store is closed')
  }

  return {
    async get(key: Uint8Array): Promise<Uint8Array | undefined> {
      live()
      if (!(key instanceof Uint8Array)) throw new StoreError('STORE_BAD_INPUT', 'key: expected bytes')
      try {
        const v = await db.get(key)
        return v === undefined ? undefined : plain(v)
      } catch (err) {
        throw wrap(err, 'get')
      }
    },
    async getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
      live()
      keys.forEach((k, i) => {
        if (!(k instanceof Uint8Array)) throw new StoreError('STORE_BAD_INPUT', `keys[${i}]: expected bytes`)
      })
      if (keys.length === 0) return []
      try {
        const vs = await db.getMany(keys as Uint8Array[])
        return vs.map((v) => (v === undefined ? undefined : plain(v)))
      } catch (err) {
        throw wrap(err, 'getMany')
      }
    },
    async write(ops: readonly KvOp[], options: KvWriteOptions = {}): Promise<void> {
      live()
      checkOps(ops)
      if (ops.length === 0) return
      // The chained batch is several times faster than db.batch(array) for large blocks.
      const batch = db.batch()
      try {
        for (const op of ops) {
          if (op.type === 'put') batch.put(op.key, op.value)
          else batch.del(op.key)
        }
        await batch.write({ sync: options.sync === true })
      } catch (err) {
        await batch.close().catch(() => {})
        throw wrap(err, 'write')
      }
    },
    iterate(range: KvRange): AsyncIterable<[Uint8Array, Uint8Array]> {
      live()
      checkRange(range)
      const opts: { gte?: Uint8Array; lt?: Uint8Array; reverse?: boolean; limit?: number; values?: false } =
        {}
      if (range.gte) opts.gte = range.gte
      if (range.lt) opts.lt = range.lt
      if (range.reverse) opts.reverse = true
      if (range.limit !== undefined) opts.limit = range.limit
      const keysOnly = range.keysOnly === true
      if (keysOnly) opts.values = false
      return {
        async *[Symbol.asyncIterator]() {
          const it = db.iterator(opts)
          // One chunk ahead: LevelDB reads the next chunk (on its own thread) while this one is used.
          // A scan of a million entries (opening a store) waited ~1.5 s for reads before.
          let next: Promise<unknown> | undefined = it.nextv(1000)
          try {
            for (;;) {
              let chunk: [Uint8Array, Uint8Array][]
              try {
                chunk = (await next) as [Uint8Array, Uint8Array][]
              } catch (err) {
                throw wrap(err, 'iterate')
              } finally {
                next = undefined
              }
              if (chunk.length === 0) return
              next = it.nextv(1000)
              if (keysOnly) for (const [k] of chunk) yield [plain(k), NO_VALUE] as [Uint8Array, Uint8Array]
              else for (const [k, v] of chunk) yield [plain(k), plain(v)] as [Uint8Array, Uint8Array]
            }
          } finally {
            // A consumer that stops early: the read ahead finishes (or fails) before the iterator closes.
            await next?.catch(() => {})
            await it.close().catch(() => {})
          }
        },
      }
    },
    async compact(range: { gte: Uint8Array; lt: Uint8Array }): Promise<void> {
      live()
      checkRange(range)
      try {
        // `level` types the browser-compatible surface; in Node the database is a ClassicLevel.
        await (db as unknown as Compactable).compactRange(range.gte, range.lt)
      } catch (err) {
        throw wrap(err, 'compact')
      }
    },
    async close(): Promise<void> {
      if (closed) return
      closed = true
      try {
        await db.close()
      } catch (err) {
        throw wrap(err, 'close')
      }
    },
  }
}
