import { existsSync, renameSync, rmSync, rmdirSync } from 'node:fs'
import {
  CityError,
  type KvStore,
  StateSyncBuilder,
  type StateKeysCursor,
  type SyncTarget,
  type SyncedState,
  STORE_PREFIX,
  decodeStrict,
  encode,
  expectArray,
  expectBytes,
  expectUint,
  isCityError,
  openLevelKv,
  subKv,
  toHex,
} from '@cityledger/core'
import type { Logger } from '../log/index.ts'
import { STATE_SYNC_MAX_HASHES } from './protocols.ts'
import { HistoryWalk, type OfferContext, checkOffer, decodeOffer } from './stateSyncOffer.ts'
import { saveHistory } from './validatorHistoryStore.ts'
import type { SyncNet } from './sync.ts'

// The joining side of state sync: offers from peers, each checked against the validator set of its
// height (stateSyncOffer.ts); then the state tree of the best offer fetched page by page (each page
// checked against its hash, so against the certified root), then the keys; a peer whose answer does not check out is penalised and dropped
// for the rest of the run, and its request goes to another peer. See stateSyncServe.ts for the wire.

export type StateSyncRunErrorCode = 'STATE_SYNC_NO_OFFER' | 'STATE_SYNC_NO_PEERS'

export interface StateSyncOptions extends OfferContext {
  /** Peers to ask (validators), request/response and penalties: the sync protocol's view, on statesync. */
  net: SyncNet
  logger: Logger
  /** Page requests in flight at once (over different peers when there are several). Default 6. */
  parallel?: number
  /** Hashes per page request (at most `STATE_SYNC_MAX_HASHES`). */
  batch?: number
  timeoutMs?: number
  /** A progress line every this many pages. */
  logEvery?: number
  /**
   * Least time between two requests to one peer, ms (default 40: 25 a second, the protocol's rate limit
   * for observers, which a peer penalises above it; validators may send 50 a second).
   */
  minRequestIntervalMs?: number
  /** Waits `ms` (default: a timer); tests pass one that returns at once. */
  sleep?: (ms: number) => Promise<void>
}

/** Failed requests in a row (not bad answers, which drop at once) after which a peer is dropped. */
const MAX_STRIKES = 3

/**
 * Requests in flight to one peer at most: the streams a validator gives an observer on state sync
 * (`observerProtocolLimits`; a joining node is an observer until it is added). More at once are reset
 * by the peer, and a run with one peer to serve it dropped that peer after 3 resets.
 */
export const STATE_SYNC_PEER_IN_FLIGHT = 2

/** What one run did (logged at the end and returned). */
export interface StateSyncResult {
  height: number
  stateRoot: string
  pages: number
  pageBytes: number
  keys: number
  keyBytes: number
  requests: number
  /** Bytes of every answer read (pages, keys, offers). */
  bytes: number
  /** Peers dropped for a bad answer, with the reason. */
  dropped: { peer: string; reason: string }[]
  ms: number
}

/** A run's figures, and the state tree it built (undefined: the store's open rebuilds it). */
export interface StateSyncRun {
  result: StateSyncResult
  state: SyncedState | undefined
}

const noOffer = (why: string) => new CityError<StateSyncRunErrorCode>('STATE_SYNC_NO_OFFER', why)

/**
 * Builds the store of the best certified offer of the peers into `kv` (empty). Throws
 * `STATE_SYNC_NO_OFFER` when no peer offers a checked height, `STATE_SYNC_NO_PEERS` when every peer
 * that offered it was dropped before the end; the builder's errors otherwise.
 */
export async function runStateSync(o: StateSyncOptions, kv: KvStore): Promise<StateSyncResult> {
  return (await syncState(o, kv)).result
}

/** `runStateSync`, keeping the state tree it built for the store's open (`ChainStore.open`'s `syncedState`). */
export async function syncState(o: StateSyncOptions, kv: KvStore): Promise<StateSyncRun> {
  const started = performance.now()
  const { net, logger } = o
  const timeoutMs = o.timeoutMs ?? 30_000
  const batch = Math.min(o.batch ?? STATE_SYNC_MAX_HASHES, STATE_SYNC_MAX_HASHES)
  const dropped: StateSyncResult['dropped'] = []
  let bytes = 0
  let requests = 0
  const interval = o.minRequestIntervalMs ?? 40
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)))
  const nextAt = new Map<string, number>()
  const strikes = new Map<string, number>()
  const busy = new Map<string, number>()
  const ask = async (peer: string, req: unknown[]): Promise<Uint8Array> => {
    busy.set(peer, (busy.get(peer) ?? 0) + 1)
    try {
      const now = performance.now()
      const at = Math.max(now, nextAt.get(peer) ?? 0)
      nextAt.set(peer, at + interval)
      if (at > now) await sleep(at - now)
      requests++
      const res = await net.request(peer, encode(req), timeoutMs)
      bytes += res.length
      return res
    } finally {
      busy.set(peer, busy.get(peer)! - 1)
    }
  }
  /** `reason` is `kind: detail`; the penalty names the kind only (metrics count penalties by reason). */
  const drop = (peer: string, reason: string, penalize: boolean): void => {
    live.delete(peer)
    dropped.push({ peer, reason })
    if (penalize) net.penalize(peer, `state-sync:${reason.split(':')[0]}`)
    logger.warn({ peer, reason }, 'state sync: peer dropped')
  }

  // Offers: fetched from every peer at once, then checked one by one against the validator set of their
  // height, walked from the genesis set with the peers' history entries (stateSyncOffer.ts).
  const live = new Map<string, number>()
  let target: SyncTarget | undefined
  const answers = await Promise.all(
    net.peers().map(async (peer) => {
      try {
        return { peer, res: await ask(peer, ['offer']) }
      } catch (err) {
        logger.warn({ peer, err: String(err) }, 'state sync: no offer')
        return undefined
      }
    }),
  )
  const walk = new HistoryWalk(o)
  for (const a of answers) {
    if (!a) continue
    const { peer, res } = a
    try {
      const offer = decodeOffer(res)
      if (!offer) continue
      await walk.extend(offer.count, (from) => ask(peer, ['validators', from]))
      const t = checkOffer(o, walk.chain, offer)
      live.set(peer, t.height)
      if (!target || t.height > target.height) target = t
    } catch (err) {
      const kind = isCityError(err, 'BAD_VALIDATOR_HISTORY') ? 'bad-history' : 'bad-offer'
      if (isCityError(err, 'P2P_TIMEOUT') || isCityError(err, 'P2P_STREAM_ERROR')) {
        logger.warn({ peer, err: String(err) }, 'state sync: no validator history')
        continue
      }
      dropped.push({ peer, reason: `${kind}: ${(err as Error).message}` })
      net.penalize(peer, `state-sync:${kind}`)
      logger.warn({ peer, reason: `${kind}: ${(err as Error).message}` }, 'state sync: peer dropped')
    }
  }
  if (!target) throw noOffer(`no peer of ${net.peers().length} offered a certified state`)
  const t = target
  // An offer of h means a head of at least h + 1: a peer one below the target has its pages and keys too.
  for (const [peer, h] of live) if (h < t.height - 1) live.delete(peer)
  logger.info({ height: t.height, stateRoot: toHex(t.stateRoot), peers: live.size }, 'state sync: target')
  const builder = await StateSyncBuilder.create(kv, t)
  const noPeers = () =>
    new CityError<StateSyncRunErrorCode>(
      'STATE_SYNC_NO_PEERS',
      `every peer serving height ${t.height} was dropped (${dropped.map((d) => `${d.peer.slice(0, 16)}: ${d.reason}`).join('; ')})`,
      { dropped },
    )
  let turn = 0
  /** The next live peer in turn with room for a request (undefined: every one is at its cap). */
  const nextPeer = (): string | undefined => {
    const peers = [...live.keys()]
    if (peers.length === 0) throw noPeers()
    for (let k = 0; k < peers.length; k++) {
      const peer = peers[turn++ % peers.length]!
      if ((busy.get(peer) ?? 0) < STATE_SYNC_PEER_IN_FLIGHT) return peer
    }
    return undefined
  }

  /** Requests the live peers have room for now (each up to `STATE_SYNC_PEER_IN_FLIGHT`). */
  const freeSlots = (): number => {
    let n = 0
    for (const peer of live.keys()) n += Math.max(0, STATE_SYNC_PEER_IN_FLIGHT - (busy.get(peer) ?? 0))
    return n
  }

  // Pages, a few requests in flight; a failed request's hashes go back on the frontier.
  const logEvery = o.logEvery ?? 5000
  let nextLog = logEvery
  const fetchPages = async (peer: string, hashes: Uint8Array[]): Promise<void> => {
    let res: Uint8Array
    try {
      res = await ask(peer, ['pages', hashes])
    } catch (err) {
      builder.returnHashes(hashes)
      // A timeout drops the peer; another failure (a stream reset, a refusal) only after a few in a row.
      const n = (strikes.get(peer) ?? 0) + 1
      strikes.set(peer, n)
      if (!live.has(peer)) return
      if (isCityError(err, 'P2P_TIMEOUT')) drop(peer, 'timeout', false)
      else if (n >= MAX_STRIKES) drop(peer, `request-failed: ${(err as Error).message}`, false)
      return
    }
    strikes.delete(peer)
    try {
      const pages = decodeStrict(res, { maxBytes: res.length, maxDepth: 1 })
      if (!Array.isArray(pages) || pages.length === 0 || pages.length > hashes.length)
        throw new CityError('STATE_SYNC_BAD_PAGE', 'not a list of pages for the hashes asked', {}, true)
      // An empty page: the peer no longer stores it (it pruned that version): not a lie, no penalty.
      const gone = pages.findIndex((p) => p instanceof Uint8Array && p.length === 0)
      if (gone >= 0) {
        builder.returnHashes(hashes)
        if (live.has(peer)) drop(peer, `not-stored: page ${toHex(hashes[gone]!)}`, false)
        return
      }
      // A shorter answer (the responder's byte cap): the rest goes back.
      builder.returnHashes(hashes.slice(pages.length))
      builder.addPages(hashes.slice(0, pages.length), pages as Uint8Array[])
    } catch (err) {
      if (live.has(peer)) drop(peer, `bad-page: ${(err as Error).message}`, true)
      return
    }
    await builder.settled()
    if (builder.progress.pages >= nextLog) {
      // One line however many marks an answer passed.
      while (nextLog <= builder.progress.pages) nextLog += logEvery
      logger.info({ ...builder.progress, bytes }, 'state sync: progress')
    }
  }
  /** Decodes a keys answer: the keys and the cursor to go on from (undefined: all sent). */
  const keysAnswer = (answer: Uint8Array): { keys: Uint8Array[]; next: StateKeysCursor | undefined } => {
    const res = decodeStrict(answer, { maxBytes: answer.length, maxDepth: 2 })
    const [keys, kind, value] = expectArray(res, 3, 'keys answer')
    if (!Array.isArray(keys)) throw new CityError('BAD_RESPONSE', 'keys: not a list')
    if (kind === null) return { keys: keys as Uint8Array[], next: undefined }
    if (kind === 'latest')
      return { keys: keys as Uint8Array[], next: ['latest', expectBytes(value, 'after')] }
    if (kind === 'deleted')
      return { keys: keys as Uint8Array[], next: ['deleted', expectUint(value, 'fromHeight')] }
    throw new CityError('BAD_RESPONSE', 'keys: cursor kind')
  }
  const askKeys = (peer: string, c: StateKeysCursor) => ask(peer, ['keys', t.height, c[0], c[1]])
  // A failed write of the store under construction fails the run: it is no fault of the peer.
  let storeError: Error | undefined
  const settle = () =>
    builder.settled().catch((err: Error) => {
      storeError = err
      throw err
    })

  const inFlight = new Set<Promise<void>>()
  const pagesPending = () => builder.needsPages || inFlight.size > 0
  // Keys during the pages: a peer's, from the start, while pages are still coming (a key whose leaf has
  // not come yet waits for it in the builder); another peer's from the start if it is dropped. The keys
  // phase goes on from where this stopped.
  let early: { peer: string; cursor: StateKeysCursor | undefined; seen: number } | undefined
  let pagesOver = false
  const earlyKeys = async (): Promise<void> => {
    while (pagesPending() && !pagesOver) {
      const peer = [...live.keys()][0]
      if (peer === undefined) return
      const e: NonNullable<typeof early> = { peer, cursor: ['latest', null], seen: 0 }
      early = e
      try {
        while (e.cursor && pagesPending() && !pagesOver && live.has(peer)) {
          const r = keysAnswer(await askKeys(peer, e.cursor))
          e.seen += Math.max(1, r.keys.length)
          builder.addKeys(r.keys)
          await settle()
          e.cursor = r.next
        }
        if (live.has(peer)) return
      } catch (err) {
        e.cursor = undefined
        if (storeError) return
        if (live.has(peer)) drop(peer, `keys: ${(err as Error).message}`, !isCityError(err, 'P2P_TIMEOUT'))
      }
    }
  }
  const earlyDone = earlyKeys()
  try {
    while (builder.needsPages || inFlight.size > 0) {
      const parallel = o.parallel ?? 6
      while (builder.needsPages && inFlight.size < parallel) {
        const peer = nextPeer()
        if (peer === undefined) break
        // The frontier is shared out over the free slots (near the root it holds a few hashes only): the
        // slots the live peers have room for, not `parallel` (one peer has 2, and a share of a sixth made
        // requests of a few pages each, spaced by the request interval).
        const slots = Math.min(parallel - inFlight.size, freeSlots())
        const share = Math.max(1, Math.min(batch, Math.ceil(builder.frontierSize / Math.max(1, slots))))
        const p: Promise<void> = fetchPages(peer, builder.nextHashes(share)).finally(() => inFlight.delete(p))
        inFlight.add(p)
      }
      // Every peer at its cap with keys requests alone: wait for one to answer (a real timer: the
      // `sleep` option may return at once, and this loop must let the answers in).
      if (inFlight.size > 0) await Promise.race(inFlight)
      else if (builder.needsPages) await new Promise<void>((r) => setTimeout(r, 5))
    }
  } finally {
    // On failure too: no request may go on writing into a store the caller is about to close.
    pagesOver = true
    await Promise.allSettled([...inFlight, earlyDone])
  }
  if (storeError) throw storeError

  // Keys: one peer at a time (in the order they offered), from the start (the first peer from where it
  // stopped during the pages); keys already matched stay. The next answer is asked for before this one
  // is matched and written (unless this one may be the last needed): one request ahead, no more.
  turn = 0
  let resume = early?.cursor && live.has(early.peer) ? early : undefined
  while (builder.needsKeys) {
    // Nothing else is in flight now: every live peer has room.
    const peer = resume ? resume.peer : (nextPeer() ?? [...live.keys()][0]!)
    // A peer may send keys of later heights too, not endless ones: at most twice the leaves plus 100,000.
    let budget = 2 * builder.progress.leaves + 100_000 - (resume?.seen ?? 0)
    let next: Promise<Uint8Array> | undefined = askKeys(peer, resume?.cursor ?? ['latest', null])
    resume = undefined
    try {
      while (next) {
        const answer = await next
        next = undefined
        const { keys, next: cursor } = keysAnswer(answer)
        budget -= Math.max(1, keys.length)
        if (budget < 0) throw new CityError('BAD_RESPONSE', 'more keys than the state can hold')
        const ahead = cursor !== undefined && builder.missingKeys > keys.length
        if (ahead) next = askKeys(peer, cursor)
        builder.addKeys(keys)
        await settle()
        if (!ahead && cursor && builder.needsKeys) next = askKeys(peer, cursor)
        if (!builder.needsKeys) break
      }
      if (builder.needsKeys) drop(peer, `keys-incomplete: ${builder.missingKeys} keys not sent`, true)
    } catch (err) {
      if (storeError) throw storeError
      if (live.has(peer)) drop(peer, `keys: ${(err as Error).message}`, !isCityError(err, 'P2P_TIMEOUT'))
    } finally {
      // An answer asked ahead and not needed: nothing reads it (the request ends with the sync's p2p).
      next?.catch(() => {})
    }
  }
  const state = await builder.finish()
  // The history walked, so that this node serves it in turn (its blocks below the target are not kept).
  await saveHistory(subKv(kv, STORE_PREFIX.validatorHistory), walk.entries)
  const p = builder.progress
  const result: StateSyncResult = {
    height: t.height,
    stateRoot: toHex(t.stateRoot),
    pages: p.pages,
    pageBytes: p.pageBytes,
    keys: p.keys,
    keyBytes: p.keyBytes,
    requests,
    bytes,
    dropped,
    ms: Math.round(performance.now() - started),
  }
  logger.info({ ...result, dropped: dropped.length }, 'state sync: done')
  return { result, state }
}

/**
 * State sync into the LevelDB folder `dataDir` (which must not hold a store yet): built in
 * `<dataDir>.statesync-partial` and renamed at the end, so a failed or interrupted run leaves nothing
 * that a later start would use. Returns the figures and the state tree built (pass it to the store's
 * open as `syncedState`).
 */
export async function stateSyncToFolder(o: StateSyncOptions, dataDir: string): Promise<StateSyncRun> {
  const partial = `${dataDir}.statesync-partial`
  rmSync(partial, { recursive: true, force: true })
  try {
    const kv = await openLevelKv(partial)
    let run: StateSyncRun
    try {
      run = await syncState(o, kv)
    } finally {
      await kv.close()
    }
    // An empty folder may be there already (rmdir refuses anything else).
    if (existsSync(dataDir)) rmdirSync(dataDir)
    renameSync(partial, dataDir)
    return run
  } catch (err) {
    rmSync(partial, { recursive: true, force: true })
    throw err
  }
}
