import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { packChunk } from './chunk.ts'
import { VerifierError, assertCheck, closedError } from './errors.ts'
import {
  type NativeBackend,
  type NativeBackendChoice,
  loadNativeBackend,
  nativeVerifyFunction,
} from './nativeBackend.ts'
import type { SignatureCheck, SignatureVerifier } from './verifier.ts'

/** Options of `createVerifierPool`. */
export interface VerifierPoolOptions {
  /** Worker threads. Default: `defaultPoolSize({ nodesOnMachine })`. */
  size?: number
  /** Validators sharing this machine, used only when `size` is not given (default 1). */
  nodesOnMachine?: number
  /** Native library of the workers and of the inline `verify` (default `'auto'`). */
  backend?: NativeBackendChoice
  /** At most this many chunks are in the workers at once; more callers wait (default `4 * size`). */
  maxQueue?: number
  /** Signatures per chunk message (default 256). */
  chunkSize?: number
  /** Another worker script speaking the same protocol. For tests that simulate crashes only. */
  workerUrl?: URL
}

/** What the pool is doing now, and high-water marks since it started (for metrics and tests). */
export interface VerifierPoolStats {
  backend: NativeBackend
  size: number
  maxQueue: number
  chunkSize: number
  /** Chunks sent to a worker and not yet answered (never above `maxQueue`). */
  outstanding: number
  /** Highest `outstanding` ever seen. */
  maxOutstanding: number
  /** Chunks waiting for a free place (back-pressure). */
  waiting: number
  chunksDone: number
  /** Workers that died and were replaced. */
  workerRestarts: number
}

/** A pool verifier (name `'pool'`) with its statistics. */
export interface VerifierPool extends SignatureVerifier {
  readonly backend: NativeBackend
  readonly size: number
  stats(): VerifierPoolStats
}

/**
 * Workers for one validator when `nodesOnMachine` validators share this machine:
 * `max(1, floor(availableParallelism / nodesOnMachine))`, so four validators on two cores run one
 * worker each instead of two.
 */
export function defaultPoolSize(opts: { nodesOnMachine?: number } = {}): number {
  const nodes = opts.nodesOnMachine ?? 1
  if (!Number.isInteger(nodes) || nodes < 1) {
    throw new VerifierError('VERIFIER_BAD_OPTIONS', `nodesOnMachine must be an integer >= 1, got ${nodes}`)
  }
  return Math.max(1, Math.floor(availableParallelism() / nodes))
}

export const DEFAULT_CHUNK_SIZE = 256
/** Below this many checks per chunk, splitting a batch across workers costs more than it gains. */
const MIN_SPLIT = 16
/** Workers that die before they are ready this many times in a row mean the backend cannot run. */
const MAX_STARTUP_FAILURES = 3

interface Job {
  count: number
  resolve(verdicts: Uint8Array): void
  reject(err: Error): void
}

interface Slot {
  worker: Worker
  ready: boolean
  jobs: Map<number, Job>
  lastError?: Error
}

interface Waiter {
  resolve(): void
  reject(err: Error): void
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback
  if (!Number.isInteger(v) || v < 1)
    throw new VerifierError('VERIFIER_BAD_OPTIONS', `${name} must be an integer >= 1, got ${v}`, {
      [name]: v,
    })
  return v
}

/** Splits `n` checks into ranges of at most `chunkSize`, using every worker when the batch allows. */
function chunkRanges(n: number, chunkSize: number, workers: number): Array<[number, number]> {
  if (n === 0) return []
  let chunks = Math.ceil(n / chunkSize)
  if (chunks < workers) chunks = Math.max(chunks, Math.min(workers, Math.floor(n / MIN_SPLIT)))
  const per = Math.ceil(n / chunks)
  const out: Array<[number, number]> = []
  for (let s = 0; s < n; s += per) out.push([s, Math.min(n, s + per)])
  return out
}

/**
 * A verifier that checks batches on worker threads with a native library (the hot path: transactions
 * at admission and in proposed blocks). Verdicts are the validity rule's, identical to the other
 * verifiers'. `verify` (one signature, synchronous) runs inline on the same native backend.
 *
 * - `verifyBatch` splits the checks into chunks of `chunkSize`, packs each into one transferred buffer,
 *   and answers in the order of its input.
 * - back-pressure: at most `maxQueue` chunks are in the workers; further chunks (of any caller) wait in
 *   FIFO order, so memory stays bounded by what callers hold, and slow verification slows admission.
 * - a worker that dies rejects its batches with `VERIFIER_WORKER_CRASHED` and is replaced.
 * - `close()` terminates the workers and rejects whatever is pending with `VERIFIER_CLOSED`.
 *
 * @example
 * const pool = await createVerifierPool({ nodesOnMachine: 4 })
 * const verdicts = await pool.verifyBatch(checks)
 * await pool.close()
 */
export async function createVerifierPool(opts: VerifierPoolOptions = {}): Promise<VerifierPool> {
  const size =
    opts.size === undefined
      ? defaultPoolSize(opts.nodesOnMachine === undefined ? {} : { nodesOnMachine: opts.nodesOnMachine })
      : positiveInt('size', opts.size, 1)
  const maxQueue = positiveInt('maxQueue', opts.maxQueue, 4 * size)
  const chunkSize = positiveInt('chunkSize', opts.chunkSize, DEFAULT_CHUNK_SIZE)
  const backend = await loadNativeBackend(opts.backend ?? 'auto')
  const verifyInline = await nativeVerifyFunction(backend)
  // `.ts` when run from source (Node strips the types), `.js` in the built package.
  const workerUrl =
    opts.workerUrl ??
    new URL(import.meta.url.endsWith('.ts') ? './verifyWorker.ts' : './verifyWorker.js', import.meta.url)

  let closed = false
  let broken: VerifierError | undefined
  let nextId = 1
  let outstanding = 0
  let maxOutstanding = 0
  let chunksDone = 0
  let workerRestarts = 0
  let startupFailures = 0
  const waiters: Waiter[] = []
  const slots: Slot[] = []

  const failJobs = (slot: Slot, err: Error) => {
    const jobs = [...slot.jobs.values()]
    slot.jobs.clear()
    for (const job of jobs) job.reject(err)
  }

  const spawn = (index: number): void => {
    const worker = new Worker(workerUrl, { workerData: { backend } })
    worker.unref() // an idle pool never keeps the process alive; busy workers are ref'd in dispatch
    const slot: Slot = { worker, ready: false, jobs: new Map() }
    slots[index] = slot
    worker.on('message', (msg: { id?: number; verdicts?: Uint8Array; ready?: boolean }) => {
      if (msg.ready) {
        slot.ready = true
        startupFailures = 0
        return
      }
      const job = slot.jobs.get(msg.id!)
      if (!job) return
      slot.jobs.delete(msg.id!)
      if (slot.jobs.size === 0) worker.unref()
      const verdicts = msg.verdicts
      if (!(verdicts instanceof Uint8Array) || verdicts.length !== job.count) {
        job.reject(
          new VerifierError(
            'VERIFIER_WORKER_CRASHED',
            'worker answered a chunk with the wrong number of verdicts',
          ),
        )
        return
      }
      job.resolve(verdicts)
    })
    worker.on('error', (err) => {
      slot.lastError = err // 'exit' follows and does the cleanup
    })
    worker.on('exit', (code) => {
      if (closed) {
        failJobs(slot, closedError('pool'))
        return
      }
      const err = new VerifierError(
        'VERIFIER_WORKER_CRASHED',
        `verifier worker ${index} exited (code ${code})${slot.lastError ? `: ${slot.lastError.message}` : ''}`,
        { worker: index, exitCode: code },
      )
      failJobs(slot, err)
      if (!slot.ready && ++startupFailures >= MAX_STARTUP_FAILURES) {
        broken = new VerifierError(
          'VERIFIER_BACKEND_UNAVAILABLE',
          `verifier workers fail to start: ${err.message}`,
        )
        return
      }
      workerRestarts++
      spawn(index)
    })
  }
  for (let i = 0; i < size; i++) spawn(i)

  // The semaphore behind back-pressure: one place per chunk in the workers.
  const acquire = (): Promise<void> => {
    if (closed) return Promise.reject(closedError('pool'))
    if (outstanding < maxQueue) {
      outstanding++
      if (outstanding > maxOutstanding) maxOutstanding = outstanding
      return Promise.resolve()
    }
    return new Promise((resolve, reject) => waiters.push({ resolve, reject }))
  }
  const release = (): void => {
    const next = waiters.shift()
    if (next)
      next.resolve() // the place passes on; outstanding is unchanged
    else outstanding--
  }

  const dispatch = (buffer: ArrayBuffer, count: number): Promise<Uint8Array> => {
    if (broken) return Promise.reject(broken)
    if (closed) return Promise.reject(closedError('pool'))
    let slot = slots[0]!
    for (const s of slots) if (s.jobs.size < slot.jobs.size) slot = s
    const id = nextId++
    return new Promise<Uint8Array>((resolve, reject) => {
      slot.jobs.set(id, { count, resolve, reject })
      slot.worker.ref()
      slot.worker.postMessage({ id, buffer }, [buffer])
    })
  }

  const verifyBatch = async (checks: readonly SignatureCheck[]): Promise<boolean[]> => {
    if (closed) throw closedError('pool')
    if (broken) throw broken
    checks.forEach(assertCheck)
    const out = new Array<boolean>(checks.length)
    let failure: Error | undefined
    const pending: Promise<void>[] = []
    for (const [start, end] of chunkRanges(checks.length, chunkSize, size)) {
      await acquire() // rejects once the pool is closed
      if (failure) {
        release()
        break
      }
      const done = dispatch(packChunk(checks, start, end), end - start).then(
        (verdicts) => {
          chunksDone++
          for (let i = 0; i < verdicts.length; i++) out[start + i] = verdicts[i] === 1
        },
        (err: Error) => {
          failure ??= err
        },
      )
      pending.push(done.finally(release))
    }
    await Promise.all(pending)
    if (failure) throw failure
    return out
  }

  return {
    name: 'pool',
    backend,
    size,
    verify(check) {
      if (closed) throw closedError('pool')
      assertCheck(check)
      return verifyInline(check.publicKey, check.message, check.signature)
    },
    verifyBatch,
    stats: () => ({
      backend,
      size,
      maxQueue,
      chunkSize,
      outstanding,
      maxOutstanding,
      waiting: waiters.length,
      chunksDone,
      workerRestarts,
    }),
    async close() {
      if (closed) return
      closed = true
      for (const w of waiters.splice(0)) w.reject(closedError('pool'))
      await Promise.all(slots.map((s) => s.worker.terminate()))
      for (const s of slots) failJobs(s, closedError('pool'))
    },
  }
}
