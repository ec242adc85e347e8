import type { SignatureCheck, SignatureVerifier } from '../crypto/verifier.ts'

/** Default largest batch handed to the verifier at once. */
export const SIGNATURE_BATCH_SIZE = 256

interface Pending {
  check: SignatureCheck
  resolve: (ok: boolean) => void
  reject: (err: unknown) => void
}

/**
 * Collects single signature checks into batches: everything queued in the same tick goes to one
 * `verifier.verifyBatch` call (flushed on `setImmediate`, never on a wall-clock timer), and a batch is
 * sent at once when it reaches `maxBatch`. Verdicts come back to each caller in order.
 */
export class SignatureBatcher {
  readonly maxBatch: number
  /** Calls made to `verifyBatch`. */
  batches = 0
  /** Signatures handed to the verifier. */
  checked = 0
  private readonly verifier: SignatureVerifier
  private queue: Pending[] = []
  private scheduled: ReturnType<typeof setImmediate> | undefined

  constructor(verifier: SignatureVerifier, maxBatch: number = SIGNATURE_BATCH_SIZE) {
    this.verifier = verifier
    this.maxBatch = maxBatch
  }

  /** True when the signature is valid; rejects only when the verifier itself fails. */
  verify(check: SignatureCheck): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.queue.push({ check, resolve, reject })
      if (this.queue.length >= this.maxBatch) this.flush()
      else if (this.scheduled === undefined) this.scheduled = setImmediate(() => this.flush())
    })
  }

  /** Sends what is queued now. */
  flush(): void {
    if (this.scheduled !== undefined) {
      clearImmediate(this.scheduled)
      this.scheduled = undefined
    }
    const items = this.queue
    if (items.length === 0) return
    this.queue = []
    this.batches++
    this.checked += items.length
    let verdicts: Promise<boolean[]>
    try {
      verdicts = this.verifier.verifyBatch(items.map((i) => i.check))
    } catch (err) {
      verdicts = Promise.reject(err)
    }
    verdicts.then(
      (res) => {
        if (!Array.isArray(res) || res.length !== items.length) {
          const err = new Error(
            `invariant broken: ${this.verifier.name}.verifyBatch answered ${String(res?.length)} verdicts for ${items.length} checks`,
          )
          for (const i of items) i.reject(err)
          return
        }
        for (let k = 0; k < items.length; k++) items[k]!.resolve(res[k] === true)
      },
      (err: unknown) => {
        for (const i of items) i.reject(err)
      },
    )
  }
}
