import { CityError, type KeyPair, type Value, toHex } from '@cityledger/core'
import type { CityledgerClient, TxStatus } from '../client/index.ts'

/** One transaction of the story: who signs, what it calls. */
export interface DemoCall {
  who: KeyPair
  service: string
  method: string
  args: Value
}

/** One expectation checked at the end of the demo. */
export interface DemoCheck {
  name: string
  ok: boolean
  detail?: string
}

/**
 * Submits the demo's transactions to one node and keeps the signers' nonces. Nonces start from the
 * node's `_sys/nonce` (so a rerun against the same chain goes on where the last one stopped) and are
 * counted here afterwards; a tx the node refuses at admission consumed none, so the signer's nonce is
 * read again.
 */
export class DemoSession {
  readonly client: CityledgerClient
  readonly chainId: string
  readonly say: (line: string) => void
  readonly checks: DemoCheck[] = []
  /** Transactions admitted so far. */
  submitted = 0
  readonly #nonces = new Map<string, number>()
  readonly #timeoutMs: number

  constructor(o: {
    client: CityledgerClient
    chainId: string
    say: (line: string) => void
    timeoutMs: number
  }) {
    this.client = o.client
    this.chainId = o.chainId
    this.say = o.say
    this.#timeoutMs = o.timeoutMs
  }

  /**
   * The signer's next nonce. The first one comes from the node's `_sys/nonce` query; a node whose RPC
   * does not answer it gets nonce 1 tried, and a NONCE_TOO_LOW refusal names the committed nonce.
   */
  async #nextNonce(key: KeyPair): Promise<number> {
    const hex = toHex(key.publicKey)
    let last = this.#nonces.get(hex)
    if (last === undefined) {
      try {
        last = Number((await this.client.query('_sys', 'nonce', { signer: hex })).value)
      } catch {
        last = 0
      }
    }
    this.#nonces.set(hex, last + 1)
    return last + 1
  }

  async #submit(c: DemoCall, wait: boolean, retry = true): Promise<TxStatus> {
    const body = {
      chainId: this.chainId,
      service: c.service,
      method: c.method,
      args: c.args,
      signer: c.who.publicKey,
      nonce: await this.#nextNonce(c.who),
      expiry: 0,
    }
    try {
      const status = await this.client.submitTx(
        body,
        c.who.secretKey,
        wait ? { wait: 'commit', timeoutMs: this.#timeoutMs } : {},
      )
      this.submitted++
      return status
    } catch (err) {
      const e = err as { code?: string; message?: string }
      const committed = /committed nonce (\d+)|last used (\d+)/.exec(e.message ?? '')
      if (retry && e.code === 'NONCE_TOO_LOW' && committed) {
        this.#nonces.set(toHex(c.who.publicKey), Number(committed[1] ?? committed[2]))
        return this.#submit(c, wait, false)
      }
      this.#nonces.delete(toHex(c.who.publicKey))
      throw err
    }
  }

  /** Submits one tx, waits for its commit, and throws unless it succeeded. */
  async tx(c: DemoCall, story?: string): Promise<TxStatus> {
    const s = await this.#submit(c, true)
    this.#expectCommitted(c, s)
    if (story) this.say(`  ${story}\n      tx ${s.hash} (block ${s.height})`)
    return s
  }

  /** Submits independent txs together (they may share a block), then waits for all of them. */
  async batch(calls: { call: DemoCall; story: string }[]): Promise<TxStatus[]> {
    const admitted: TxStatus[] = []
    for (const { call } of calls) admitted.push(await this.#submit(call, false))
    const out: TxStatus[] = []
    for (const [i, a] of admitted.entries()) {
      const s = await this.client.waitForTx(a.hash, { timeoutMs: this.#timeoutMs })
      this.#expectCommitted(calls[i]!.call, s)
      this.say(`  ${calls[i]!.story}\n      tx ${s.hash} (block ${s.height})`)
      out.push(s)
    }
    return out
  }

  #expectCommitted(c: DemoCall, s: TxStatus): void {
    if (s.status === 'committed') return
    const what = `${c.service}.${c.method}`
    if (s.status === 'failed') {
      throw new CityError('DEMO_TX_FAILED', `${what} failed with ${s.code} (tx ${s.hash})`, {
        tx: s.hash,
        code: s.code,
      })
    }
    throw new CityError('DEMO_TX_TIMEOUT', `${what} not committed in time (status ${s.status})`, {
      tx: s.hash,
    })
  }

  /** A service query's JSON value (bytes as hex). */
  async query<T = unknown>(service: string, name: string, args: Record<string, string> = {}): Promise<T> {
    return (await this.client.query(service, name, args)).value as T
  }

  /** Waits until the node has committed `height` (blocks keep coming even without txs). */
  async waitHeight(height: number): Promise<number> {
    const deadline = performance.now() + this.#timeoutMs
    for (;;) {
      const h = (await this.client.status()).height
      if (h >= height) return h
      if (performance.now() > deadline)
        throw new CityError('DEMO_TIMEOUT', `height ${height} not reached (at ${h})`)
      await new Promise((r) => setTimeout(r, 150))
    }
  }

  /** Records an expectation; the demo fails at the end if any did not hold. */
  check(name: string, ok: boolean, detail?: string): void {
    this.checks.push(detail === undefined ? { name, ok } : { name, ok, detail })
  }
}
