import { Agent, request } from 'node:http'
import { type Tx, encode } from '@cityledger/core'

/** Envelopes per `POST /v1/txs/batch` request, at most (the node takes up to 512). */
export const BATCH_TXS = 256
/** Bytes of envelopes per request, at most (the node takes up to 4 MiB). */
export const BATCH_BYTES = 1024 * 1024
/**
 * Batches in flight per node at once. Each signer's txs always take the same lane, and a lane sends
 * its next batch only after the previous one was answered, so a signer's nonces arrive in order.
 */
export const LANES_PER_NODE = 8

/**
 * Refusals that say "later", not "never" (the mempool's back-pressure, the rate limit, a node still
 * starting): the txs are sent again, in order. A load generator with pre-signed nonces must: a nonce
 * it drops leaves every later nonce of its signer behind a gap for good (they wait, are refused
 * NONCE_GAP beyond the signer's window, and leave the pool after maxGapWaitBlocks).
 */
export const RETRYABLE = new Set(['MEMPOOL_FULL', 'RATE_LIMITED', 'OVERLOADED', 'NOT_READY'])
/**
 * A request that died without an answer: the connection was reset or closed under it (a keep-alive
 * socket the node closed just as a batch was written). Sent again, in order; an envelope the node did
 * admit before the reset comes back DUPLICATE_TX, which counts as accepted.
 */
export const CONNECTION_LOST = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED'])
/** Pause of a lane before it sends refused-for-now txs again, ms. */
export const RETRY_MS = 200
/**
 * A lane refused again waits twice as long each time, up to this (reset by a batch with no refusal):
 * with a fixed 200 ms pause, an overloaded network got ~6,500 resent txs a second on top of the load
 * and stopped committing (10 view changes in 20 s at 3,000 tx/s offered).
 */
export const MAX_RETRY_MS = 5_000

/** Which node gets a tx: by signer over every node, or everything to node 0 (the first primary). */
export type NodeOf = (tx: Tx, nodes: number) => number

interface Queued {
  tx: Tx
  onAccepted: (at: number) => void
}

interface Lane {
  node: number
  queue: Queued[]
  busy: boolean
  scheduled: boolean
  /** The pause before the lane's next send after a refusal (doubles while refusals go on). */
  backoffMs?: number
}

/**
 * Posts envelopes in batches (`POST /v1/txs/batch`, the binary form) over keep-alive connections: per
 * node `LANES_PER_NODE` lanes, one batch in flight per lane; whatever is submitted while a lane's batch
 * is in flight goes into its next batch (so batches grow with the load, and the wait counts in the
 * latency). `abort()` drops whatever has not been answered.
 */
export class Submitter {
  readonly rejected: Record<string, number> = {}
  accepted = 0
  /** Submitted and not answered yet (queued or in a request). */
  inFlight = 0
  /** Offered but dropped by `abort()` before it was sent. */
  abandoned = 0
  /** Sends again after a retryable refusal, by code (one tx sent three times counts twice). */
  readonly retried: Record<string, number> = {}
  /** Batch requests sent, and the envelopes they carried (mean batch size = envelopes / requests). */
  requests = 0
  envelopes = 0
  private aborted = false
  private readonly targets: { host: string; port: number; agent: Agent }[]
  private readonly lanes: Lane[][]
  private idleWaiters: (() => void)[] = []
  private readonly nodeOf: NodeOf
  private readonly retryMs: number

  constructor(rpc: string[], nodeOf: NodeOf, opts: { retryMs?: number } = {}) {
    this.nodeOf = nodeOf
    this.retryMs = opts.retryMs ?? RETRY_MS
    this.targets = rpc.map((u) => {
      const url = new URL(u)
      return {
        host: url.hostname,
        port: Number(url.port),
        agent: new Agent({ keepAlive: true, maxSockets: LANES_PER_NODE }),
      }
    })
    this.lanes = rpc.map((_, node) =>
      Array.from({ length: LANES_PER_NODE }, () => ({ node, queue: [], busy: false, scheduled: false })),
    )
  }

  submit(tx: Tx, onAccepted: (at: number) => void): void {
    if (this.aborted) {
      this.abandoned++
      return
    }
    const node = this.nodeOf(tx, this.targets.length)
    const lane = this.lanes[node]![(tx.body.signer[1] ?? 0) % LANES_PER_NODE]!
    this.inFlight++
    lane.queue.push({ tx, onAccepted })
    // After this tick: everything the schedule submits in one tick shares a batch.
    if (!lane.busy && !lane.scheduled) {
      lane.scheduled = true
      setImmediate(() => {
        lane.scheduled = false
        void this.send(lane)
      })
    }
  }

  private async send(lane: Lane): Promise<void> {
    if (lane.busy || lane.queue.length === 0) return
    if (this.aborted) {
      this.drop(lane)
      return
    }
    lane.busy = true
    let bytes = 0
    let take = 0
    while (take < lane.queue.length && take < BATCH_TXS) {
      const size = lane.queue[take]!.tx.bytes.length
      if (take > 0 && bytes + size > BATCH_BYTES) break
      bytes += size
      take++
    }
    const batch = lane.queue.splice(0, take)
    this.requests++
    this.envelopes += batch.length
    // Refused for now, in batch order: they go back to the front of the lane.
    const again: Queued[] = []
    const later = (q: Queued, code: string) => {
      this.retried[code] = (this.retried[code] ?? 0) + 1
      again.push(q)
    }
    try {
      const { status, body } = await this.post(lane.node, encode(batch.map((q) => q.tx.bytes)))
      const at = performance.now()
      if (status === 200) {
        const results = (JSON.parse(body) as { results?: { hash?: string; error?: { code?: string } }[] })
          .results
        batch.forEach((q, i) => {
          const r = results?.[i]
          const code = r?.error?.code ?? 'BAD_RESPONSE'
          // DUPLICATE_TX: this load never sends a tx twice but after a lost connection (see above).
          if (typeof r?.hash === 'string' || code === 'DUPLICATE_TX') {
            this.accepted++
            q.onAccepted(at)
          } else if (RETRYABLE.has(code)) later(q, code)
          else this.reject(code, 1)
        })
      } else {
        let code = `HTTP_${status}`
        try {
          code = (JSON.parse(body) as { error?: { code?: string } }).error?.code ?? code
        } catch {}
        if (RETRYABLE.has(code)) for (const q of batch) later(q, code)
        else this.reject(code, batch.length)
      }
    } catch (err) {
      const code = this.aborted ? 'ABANDONED' : ((err as { code?: string }).code ?? 'REQUEST_FAILED')
      if (CONNECTION_LOST.has(code)) for (const q of batch) later(q, code)
      else this.reject(code, batch.length)
    } finally {
      this.settled(batch.length - again.length)
    }
    if (again.length > 0) {
      // The lane pauses (it stays busy), so no later nonce of these signers overtakes them.
      lane.queue.unshift(...again)
      const pause = lane.backoffMs ?? this.retryMs
      lane.backoffMs = Math.min(pause * 2, Math.max(this.retryMs, MAX_RETRY_MS))
      await new Promise((r) => setTimeout(r, pause))
    } else lane.backoffMs = undefined
    lane.busy = false
    if (lane.queue.length > 0) await this.send(lane)
  }

  private reject(code: string, n: number): void {
    this.rejected[code] = (this.rejected[code] ?? 0) + n
  }

  private drop(lane: Lane): void {
    const n = lane.queue.length
    lane.queue = []
    this.abandoned += n
    this.settled(n)
  }

  private settled(n: number): void {
    this.inFlight -= n
    if (this.inFlight === 0) {
      const waiters = this.idleWaiters
      this.idleWaiters = []
      for (const w of waiters) w()
    }
  }

  private post(node: number, payload: Uint8Array): Promise<{ status: number; body: string }> {
    const t = this.targets[node]!
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: t.host,
          port: t.port,
          agent: t.agent,
          method: 'POST',
          path: '/v1/txs/batch',
          headers: { 'content-type': 'application/octet-stream', 'content-length': payload.length },
        },
        (res) => {
          let body = ''
          res.setEncoding('utf8')
          res.on('data', (c: string) => (body += c))
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
          res.on('error', reject)
        },
      )
      req.on('error', reject)
      req.end(payload)
    })
  }

  /** Resolves once every submitted tx was answered (or dropped). */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve()
    return new Promise((r) => this.idleWaiters.push(r))
  }

  /** Stops sending: queued txs are dropped, open requests are cut. */
  async abort(): Promise<void> {
    this.aborted = true
    for (const node of this.lanes) for (const lane of node) if (!lane.busy) this.drop(lane)
    for (const t of this.targets) t.agent.destroy()
    await this.idle()
  }

  close(): void {
    for (const t of this.targets) t.agent.destroy()
  }
}
