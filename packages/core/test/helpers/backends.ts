// The two KvStore backends that every store contract test runs against. `reopen` gives a KvStore
// over the same data: a new LevelDB handle after closing the old one, or the same memory store.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type KvStore, openLevelKv, openMemoryKv } from '@cityledger/core'

export interface Backend {
  name: string
  kv: KvStore
  /** Closes `current` when the backend is durable, then opens the same data again. */
  reopen(current: { close(): Promise<void> }): Promise<KvStore>
  /** Removes everything the backend created (closing what is still open). */
  cleanup(): Promise<void>
}

export type BackendFactory = { name: string; create(): Promise<Backend> }

export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `cityledger-${label}-`))
}

export const BACKENDS: BackendFactory[] = [
  {
    name: 'memory',
    async create() {
      const kv = openMemoryKv()
      return { name: 'memory', kv, reopen: async () => kv, cleanup: async () => {} }
    },
  },
  {
    name: 'level',
    async create() {
      const dir = tempDir('kv')
      const opened: KvStore[] = []
      const open = async () => {
        const kv = await openLevelKv(join(dir, 'db'))
        opened.push(kv)
        return kv
      }
      const kv = await open()
      return {
        name: 'level',
        kv,
        reopen: async (current) => {
          await current.close()
          return open()
        },
        cleanup: async () => {
          for (const k of opened) await k.close().catch(() => {})
          rmSync(dir, { recursive: true, force: true })
        },
      }
    },
  },
]

/** Entries of `kv` whose key starts with the one-byte namespace `prefix` (e.g. STORE_PREFIX.stateNode). */
export async function countEntries(kv: KvStore, prefix: number): Promise<number> {
  let n = 0
  for await (const _ of kv.iterate({ gte: Uint8Array.of(prefix), lt: Uint8Array.of(prefix + 1) })) n++
  return n
}
