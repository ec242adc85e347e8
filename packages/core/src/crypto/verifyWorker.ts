/*
 * Worker thread of the verifier pool (started by verifierPool.ts, one per pool slot). It answers
 * `{ id, buffer }` chunk messages with `{ id, verdicts }`, verdicts in the order of the chunk, using the
 * same native verify function (precheck included) as the inline verifier. Any exception kills the
 * worker on purpose: the pool rejects the batches in flight and starts a fresh one.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { verifyChunk } from './chunk.ts'
import { type NativeBackend, nativeVerifyFunction } from './nativeBackend.ts'

interface ChunkMessage {
  id: number
  buffer: ArrayBuffer
}

const port = parentPort
if (!port) throw new Error('verifyWorker.ts must run as a worker thread')
const { backend } = workerData as { backend: NativeBackend }

const verifyOne = await nativeVerifyFunction(backend)
port.on('message', (msg: ChunkMessage) => {
  const verdicts = verifyChunk(msg.buffer, verifyOne)
  port.postMessage({ id: msg.id, verdicts }, [verdicts.buffer])
})
port.postMessage({ ready: true })
