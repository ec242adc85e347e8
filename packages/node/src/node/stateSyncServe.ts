import {
  type ChainStore,
  CityError,
  type KvStore,
  type StateKeysCursor,
  ZERO_HASH,
  decodeCertificate,
  decodeStrict,
  encode,
  equalBytes,
  expectArray,
  expectBytes,
  expectUint,
  isCityError,
  readStateKeys,
  STORE_PREFIX,
  encodeStateProof,
  readStatePages,
  subKv,
  utf8,
  validatorCountKey,
} from '@cityledger/core'
import type { OfferHolds } from './offerHolds.ts'
import { readHistory } from './validatorHistoryStore.ts'
import { STATE_SYNC_ANSWER_BYTES, STATE_SYNC_MAX_HASHES, STATE_SYNC_REQUEST_MAX_BYTES } from './protocols.ts'

// The serving side of state sync (`/cityledger/statesync/1`). Requests and answers (msgpack arrays):
//   ['offer']                      -> [height, blockBytes, cert, nextHeaderBytes, nextCert, count, countProof] | []
//                                     count: the `_sys/validators/n` value after height (null: none),
//                                     countProof: its state proof under that root (encodeStateProof)
//   ['validators', fromSeq]        -> [entry...]  (validator history entries fromSeq, fromSeq + 1, ...)
//   ['pages', [hash32...]]         -> [page...]  (in order; fewer than asked past ~4 MiB; empty = not stored)
//   ['keys', height, kind, value]  -> [[key...], nextKind | null, nextValue | null]
// Every answer is read from the store for that request: nothing is kept per client.

/** Heights below the head an offer looks at for a block whose successor certifies a header (not a null fill). */
const OFFER_LOOKBACK = 8
/** Longest key a keys cursor may name. */
const MAX_CURSOR_KEY_BYTES = 8 * 1024
const MAX_KEYS_PER_ANSWER = 50_000
/** Validator history entries per answer at most (each is a few KiB to ~30 KiB for 128 validators). */
const MAX_HISTORY_PER_ANSWER = 64

const bad = (why: string) => new CityError('BAD_REQUEST', `state sync request: ${why}`, {}, true)

/** What serving needs: the chain store (blocks, certificates, roots) and its KvStore (pages, keys). */
export interface StateSyncSource {
  store: ChainStore
  kv: KvStore
  /** Told each height offered, so that retention keeps it while joiners fetch it (offerHolds.ts). */
  holds?: Pick<OfferHolds, 'offered'>
}

const retained = async <T>(p: Promise<T>): Promise<T | undefined> =>
  p.catch((err) => {
    if (isCityError(err, 'PRUNED')) return undefined
    throw err
  })

/** The highest height h (a few below the head at most) whose block h and h + 1 both certify headers. */
async function offer(src: StateSyncSource): Promise<Uint8Array> {
  const { store } = src
  const head = store.height()
  for (let h = head - 1; h >= Math.max(1, head - OFFER_LOOKBACK); h--) {
    const [block, cert, next, nextCert, root] = await Promise.all([
      retained(store.getBlock(h)),
      retained(store.getCertificate(h)),
      retained(store.getBlock(h + 1)),
      retained(store.getCertificate(h + 1)),
      retained(store.stateRoot(h)),
    ])
    if (!block || !cert || !next || !nextCert || !root) return encode([])
    const isNull = (c: Uint8Array) => equalBytes(decodeCertificate(c).blockHash, ZERO_HASH)
    if (isNull(cert) || isNull(nextCert)) continue
    const count = await src.store.state.prove(utf8.encode(validatorCountKey), h)
    src.holds?.offered(h)
    return encode([
      h,
      block.bytes,
      cert,
      next.headerBytes,
      nextCert,
      count.value ?? null,
      encodeStateProof(count.proof),
    ])
  }
  return encode([])
}

/** Answers one state-sync request; garbage is a `BAD_REQUEST` marked penalize. */
export async function serveStateSync(src: StateSyncSource, bytes: Uint8Array): Promise<Uint8Array> {
  let req: unknown
  try {
    req = decodeStrict(bytes, { maxBytes: STATE_SYNC_REQUEST_MAX_BYTES, maxDepth: 2 })
  } catch (err) {
    throw bad((err as Error).message)
  }
  if (!Array.isArray(req) || typeof req[0] !== 'string') throw bad('not [kind, ...]')
  try {
    if (req[0] === 'offer') return await offer(src)
    if (req[0] === 'pages') {
      const f = expectArray(req, 2, 'pages request')
      if (!Array.isArray(f[1]) || f[1].length > STATE_SYNC_MAX_HASHES)
        throw bad(`pages: at most ${STATE_SYNC_MAX_HASHES} hashes`)
      const hashes = f[1].map((h, i) => expectBytes(h, `hashes[${i}]`, 32))
      const pages = await readStatePages(src.kv, hashes)
      const out: Uint8Array[] = []
      let size = 0
      for (const p of pages) {
        if (out.length > 0 && size + (p?.length ?? 0) > STATE_SYNC_ANSWER_BYTES) break
        out.push(p ?? new Uint8Array(0))
        size += p?.length ?? 0
      }
      return encode(out)
    }
    if (req[0] === 'validators') {
      const f = expectArray(req, 2, 'validators request')
      const from = expectUint(f[1], 'fromSeq')
      if (from < 1) throw bad('validators: fromSeq starts at 1')
      const history = subKv(src.kv, STORE_PREFIX.validatorHistory)
      return encode(await readHistory(history, from, MAX_HISTORY_PER_ANSWER, STATE_SYNC_ANSWER_BYTES))
    }
    if (req[0] === 'keys') {
      const f = expectArray(req, 4, 'keys request')
      const height = expectUint(f[1], 'height')
      if (height > src.store.height()) throw bad(`keys: height ${height} is above the head`)
      const cursor: StateKeysCursor =
        f[2] === 'latest'
          ? ['latest', f[3] === null ? null : expectBytes(f[3], 'after', undefined, MAX_CURSOR_KEY_BYTES)]
          : f[2] === 'deleted'
            ? ['deleted', expectUint(f[3], 'fromHeight')]
            : (() => {
                throw bad('keys: cursor kind')
              })()
      const page = await readStateKeys(src.kv, height, cursor, MAX_KEYS_PER_ANSWER, STATE_SYNC_ANSWER_BYTES)
      return encode([page.keys, page.next?.[0] ?? null, page.next?.[1] ?? null])
    }
  } catch (err) {
    if (isCityError(err) && (err.code === 'BAD_REQUEST' || err.code === 'BAD_FIELD'))
      throw err.code === 'BAD_REQUEST' ? err : bad(err.message)
    throw err
  }
  throw bad(`unknown kind ${String(req[0]).slice(0, 32)}`)
}
