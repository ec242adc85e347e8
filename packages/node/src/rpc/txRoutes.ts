import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { toHex } from '@cityledger/core'
import type { RpcBackend, TxStatus } from './backend.ts'
import { rpcError } from './errors.ts'
import { expectObject } from './json.ts'
import { jsonForm, parseHash, parseHexBytes, parseTimeout, parseWait } from './params.ts'
import { ROUTE_SCHEMAS } from './schemas.ts'

export interface TxRoutesOptions {
  backend: RpcBackend
  /** Open `wait=commit` waits; the server aborts them all when it stops. */
  waits: Set<AbortController>
  /** Largest envelope, bytes (`RpcLimits.maxBodyBytes`). */
  maxBodyBytes: number
  /** Longest `wait=commit`, ms. */
  maxWaitMs: number
}

/**
 * The single-tx routes: `POST /v1/txs` (envelope bytes), `POST /v1/txs/json` (hex in JSON) and
 * `GET /v1/txs/:hash`, each with `?wait=commit` to hold the answer until the tx is committed or failed.
 */
export function registerTxRoutes(app: FastifyInstance, opts: TxRoutesOptions): void {
  const { backend, waits } = opts
  const limits = { maxBodyBytes: opts.maxBodyBytes, maxWaitMs: opts.maxWaitMs }

  /** Waits for a commit, giving up early when the client goes away or the server stops. */
  const waitForCommit = async (
    reply: FastifyReply,
    hash: Uint8Array,
    timeoutMs: number,
  ): Promise<TxStatus> => {
    const ac = new AbortController()
    const onClose = (): void => ac.abort()
    waits.add(ac)
    reply.raw.once('close', onClose)
    try {
      return await backend.waitForTx(hash, { timeoutMs, signal: ac.signal })
    } finally {
      waits.delete(ac)
      reply.raw.off('close', onClose)
    }
  }

  const sendStatus = (reply: FastifyReply, status: TxStatus, pendingCode: number): void => {
    const done = status.status === 'committed' || status.status === 'failed'
    void reply.code(done ? 200 : pendingCode).send(jsonForm(status))
  }

  const submit = async (request: FastifyRequest, reply: FastifyReply, bytes: Uint8Array): Promise<void> => {
    const q = (request.query ?? {}) as Record<string, unknown>
    const wait = parseWait(q.wait)
    const timeoutMs = parseTimeout(q.timeoutMs, limits.maxWaitMs)
    if (!backend.ready()) throw rpcError('NOT_READY', 'node is starting or catching up; retry later')
    const { hash } = await backend.submitTx(bytes)
    if (!wait) {
      void reply.code(202).send({ hash: toHex(hash) })
      return
    }
    sendStatus(reply, await waitForCommit(reply, hash, timeoutMs), 202)
  }

  app.post('/v1/txs', { schema: ROUTE_SCHEMAS.submitTx }, async (request, reply) => {
    const body = request.body
    if (body === undefined || body === null || (Buffer.isBuffer(body) && body.length === 0)) {
      throw rpcError('BAD_REQUEST', 'empty body: expected the envelope bytes')
    }
    if (!Buffer.isBuffer(body))
      throw rpcError(
        'UNSUPPORTED_MEDIA_TYPE',
        'POST /v1/txs takes application/octet-stream; use /v1/txs/json for JSON',
      )
    // A copy: fastify may hand out a slice of a shared pool buffer.
    await submit(request, reply, new Uint8Array(body))
  })

  app.post('/v1/txs/json', { schema: ROUTE_SCHEMAS.submitTxJson }, async (request, reply) => {
    if (Buffer.isBuffer(request.body))
      throw rpcError('UNSUPPORTED_MEDIA_TYPE', 'POST /v1/txs/json takes application/json')
    const body = expectObject(request.body, 'body')
    for (const k of Object.keys(body))
      if (k !== 'envelope')
        throw rpcError('BAD_REQUEST', `body: unknown field ${JSON.stringify(k.slice(0, 64))}`)
    await submit(request, reply, parseHexBytes(body.envelope, 'envelope', limits.maxBodyBytes))
  })

  app.get('/v1/txs/:hash', { schema: ROUTE_SCHEMAS.getTx }, async (request, reply) => {
    const hash = parseHash((request.params as { hash: string }).hash, 'hash')
    const q = (request.query ?? {}) as Record<string, unknown>
    const wait = parseWait(q.wait)
    const timeoutMs = parseTimeout(q.timeoutMs, limits.maxWaitMs)
    const status = wait ? await waitForCommit(reply, hash, timeoutMs) : await backend.txStatus(hash)
    sendStatus(reply, status, 200)
  })
}
