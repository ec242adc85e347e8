import {
  CityError,
  type CommitCertificate,
  ZERO_HASH,
  blockHashFromBytes,
  decodeCertificate,
  decodeStrict,
  encode,
  equalBytes,
  expectArray,
  expectBytes,
  expectUint,
  isCityError,
} from '@cityledger/core'
import { type ValidatorSchedule, verifyCertificateAt, verifyCommitCertificate } from '@cityledger/consensus'
import type { Ledger } from '../chain/ledger.ts'
import type { Logger } from '../log/index.ts'

/** What sync needs from the store to serve peers. */
export interface SyncSource {
  height(): number
  blockBytes(height: number): Promise<Uint8Array | undefined>
  certificate(height: number): Promise<Uint8Array | undefined>
}

/** The request/response transport (the p2p layer's `request` on the sync protocol). */
export interface SyncNet {
  peers(): string[]
  request(peer: string, bytes: Uint8Array, timeoutMs: number): Promise<Uint8Array>
  penalize(peer: string, reason: string): void
}

function safeHash(bytes: Uint8Array, expect: Uint8Array): boolean {
  try {
    return equalBytes(blockHashFromBytes(bytes), expect)
  } catch {
    return false
  }
}

/** Blocks behind the best peer before the node reports itself as catching up. */
export const CATCHING_UP_LAG = 8

export const SYNC_LIMITS = { maxBlocksPerResponse: 64, maxResponseBytes: 32 * 1024 * 1024 }

// Requests: ['status'] -> [height]; ['blocks', from, count] -> [[blockBytes, certBytes]...]

/** Answers a peer's sync request. Throws a CityError with `penalize` for garbage. */
export async function serveSync(source: SyncSource, bytes: Uint8Array): Promise<Uint8Array> {
  const req = decodeStrict(bytes, { maxBytes: 64, maxDepth: 1 })
  if (!Array.isArray(req) || typeof req[0] !== 'string')
    throw new CityError('BAD_REQUEST', 'sync request', {}, true)
  if (req[0] === 'status') return encode([source.height()])
  if (req[0] === 'blocks') {
    const f = expectArray(req, 3, 'sync blocks request')
    const from = expectUint(f[1], 'from')
    const count = Math.min(expectUint(f[2], 'count'), SYNC_LIMITS.maxBlocksPerResponse)
    const out: Uint8Array[][] = []
    let size = 0
    for (let h = Math.max(1, from); h < from + count && h <= source.height(); h++) {
      // A pruned height (store.retainBlocks) is missing like one above the head: the peer tries another.
      const [stored, c] = await Promise.all([source.blockBytes(h), source.certificate(h)]).catch((err) => {
        if (isCityError(err, 'PRUNED')) return []
        throw err
      })
      if (!stored || !c) break
      // Heights filled by a NEW-VIEW's null request travel as empty bytes: the certificate is for the null digest.
      const b = equalBytes(decodeCertificate(c).blockHash, ZERO_HASH) ? new Uint8Array(0) : stored
      size += b.length + c.length
      if (out.length > 0 && size > SYNC_LIMITS.maxResponseBytes) break
      out.push([b, c])
    }
    return encode(out)
  }
  throw new CityError('BAD_REQUEST', `unknown sync request ${req[0]}`, {}, true)
}

export interface SyncerOptions {
  chainId: string
  /**
   * The schedule as executed so far: each certificate is checked against the set of its height (blocks
   * arrive in height order, so a change is executed before a certificate of its new epoch is checked).
   */
  schedule?: () => ValidatorSchedule
  /** A fixed validator set, used when `schedule` is not given. */
  validators?: Uint8Array[]
  ledger: Ledger
  net: SyncNet
  /**
   * Hands a block whose certificate checked out to consensus (a `syncBlock` input: the replica commits
   * it and the driver executes it) and resolves once the queue has processed it.
   */
  apply: (height: number, block: Uint8Array, digest: Uint8Array, cert: CommitCertificate) => Promise<void>
  verify: Parameters<typeof verifyCommitCertificate>[3]
  logger: Logger
  onProgress?: (height: number, target: number) => void
}

/**
 * Block sync: asks peers how high they are, fetches what this node misses with its certificates,
 * checks each certificate against the validator set and each block against the head (parent, state
 * root, tx root, signatures), executes and commits it. A peer that serves a bad block or certificate
 * is penalised and the next peer is tried.
 */
export class Syncer {
  private readonly o: SyncerOptions
  private running: Promise<number> | undefined
  catchingUp = false

  constructor(o: SyncerOptions) {
    this.o = o
  }

  /** Syncs up to the highest peer (at least `target` if given). Concurrent calls share one run. */
  sync(target = 0): Promise<number> {
    if (!this.running) {
      this.running = this.run(target).finally(() => {
        this.running = undefined
        this.catchingUp = false
      })
    }
    return this.running
  }

  private async peerHeights(): Promise<[string, number][]> {
    const out: [string, number][] = []
    await Promise.all(
      this.o.net.peers().map(async (peer) => {
        try {
          const res = decodeStrict(await this.o.net.request(peer, encode(['status']), 5000), {
            maxBytes: 64,
            maxDepth: 1,
          })
          out.push([peer, expectUint(expectArray(res, 1, 'status')[0], 'height')])
        } catch {}
      }),
    )
    return out.sort((a, b) => b[1] - a[1])
  }

  private async run(minTarget: number): Promise<number> {
    const { ledger, logger } = this.o
    let peers = await this.peerHeights()
    let target = Math.max(minTarget, peers[0]?.[1] ?? 0)
    if (target <= ledger.head.height) return ledger.head.height
    // A block or two behind is normal between commits; only a real lag refuses new txs (503).
    this.catchingUp = target - ledger.head.height > CATCHING_UP_LAG
    logger.info({ from: ledger.head.height, target }, 'catching up')
    let failures = 0
    while (ledger.head.height < target && failures < 3 * Math.max(1, peers.length)) {
      const candidates = peers.filter(([, h]) => h > ledger.head.height)
      if (candidates.length === 0) break
      const [peer] = candidates[failures % candidates.length]!
      try {
        const applied = await this.fetchFrom(peer)
        if (applied === 0) failures++
        this.o.onProgress?.(ledger.head.height, target)
        if (ledger.head.height % 100 === 0 || ledger.head.height >= target) {
          logger.info({ height: ledger.head.height, target }, 'sync progress')
        }
      } catch (err) {
        failures++
        logger.warn({ peer, err: (err as Error).message }, 'sync from peer failed')
      }
      if (ledger.head.height >= target) {
        peers = await this.peerHeights()
        target = Math.max(target, peers[0]?.[1] ?? 0)
      }
      // Within a few blocks of the best peer the node is live again, even while this run chases a
      // chain that keeps moving: it must not go on refusing txs (NOT_READY) for the whole run.
      this.catchingUp = target - ledger.head.height > CATCHING_UP_LAG
    }
    logger.info({ height: ledger.head.height }, 'sync done')
    return ledger.head.height
  }

  private async fetchFrom(peer: string): Promise<number> {
    const { ledger } = this.o
    const from = ledger.head.height + 1
    const res = decodeStrict(
      await this.o.net.request(peer, encode(['blocks', from, SYNC_LIMITS.maxBlocksPerResponse]), 30_000),
      {
        maxBytes: SYNC_LIMITS.maxResponseBytes + 1024 * 1024,
        maxDepth: 2,
      },
    )
    if (!Array.isArray(res)) throw new CityError('BAD_RESPONSE', 'sync response')
    let applied = 0
    for (const [i, item] of res.entries()) {
      const pair = expectArray(item, 2, 'sync item')
      const blockBytes = expectBytes(pair[0], 'block')
      const certBytes = expectBytes(pair[1], 'certificate')
      // Consensus may have committed these meanwhile (a validator that lags does both): not the peer's fault.
      if (from + i <= ledger.head.height) continue
      const ok = await this.applyOne(peer, blockBytes, certBytes)
      if (!ok) return applied
      applied++
    }
    return applied
  }

  private async applyOne(peer: string, blockBytes: Uint8Array, certBytes: Uint8Array): Promise<boolean> {
    const { ledger } = this.o
    const height = ledger.head.height + 1
    let cert: CommitCertificate
    try {
      cert = decodeCertificate(certBytes)
    } catch {
      this.o.net.penalize(peer, 'sync:bad-certificate')
      return false
    }
    const verdict = this.o.schedule
      ? verifyCertificateAt(cert, this.o.schedule(), this.o.chainId, this.o.verify)
      : verifyCommitCertificate(cert, this.o.validators ?? [], this.o.chainId, this.o.verify)
    if (!verdict.ok || cert.height !== height) {
      this.o.net.penalize(peer, `sync:certificate:${verdict.ok ? 'height' : verdict.code}`)
      return false
    }
    const isNull = equalBytes(cert.blockHash, ZERO_HASH)
    if (isNull ? blockBytes.length !== 0 : !safeHash(blockBytes, cert.blockHash)) {
      this.o.net.penalize(peer, 'sync:block-not-certified')
      return false
    }
    await this.o.apply(height, blockBytes, cert.blockHash, cert)
    if (ledger.head.height < height) {
      this.o.logger.warn({ height, peer }, 'synced block was not committed')
      return false
    }
    return true
  }
}
