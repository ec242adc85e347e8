import type { FastifyInstance, FastifyReply } from 'fastify'
import { toHex } from '@cityledger/core'
import type { RpcBackend } from './backend.ts'
import { rpcError } from './errors.ts'
import { openApiDocument } from './openapi.ts'
import { jsonForm, parseHash, parseHeight, parseQueryArgs, parseServiceQuery } from './params.ts'

/** Bounds of one `GET /v1/blocks?from=&to=` answer. */
export const BLOCK_RANGE_DEFAULTS = Object.freeze({
  /** Most blocks in one answer; `to` defaults to `from + maxRangeBlocks - 1`. */
  maxRangeBlocks: 100,
  /**
   * Most encoded block bytes read for one answer (the JSON carries tx hashes, not the txs, so it is
   * smaller). The first block is always sent, whatever its size.
   */
  maxRangeBytes: 8 * 1024 * 1024,
})

export interface ChainRoutesOptions {
  backend: RpcBackend
  limits: { maxRangeBlocks: number; maxRangeBytes: number }
}

const RANGE_PARAMS = new Set(['from', 'to'])

/**
 * Read-only routes over the committed chain: status, genesis, blocks (one, by hash, a range),
 * validators, peers, service queries, and the OpenAPI document. Every answer is the backend's value in JSON form; a block that is not there
 * is 404 NOT_FOUND.
 */
export function registerChainRoutes(app: FastifyInstance, opts: ChainRoutesOptions): void {
  const { backend, limits } = opts

  app.get('/v1/status', async () => jsonForm(await backend.status()))

  // The genesis object is passed through as the file has it ("0x" hex in service configs), not
  // through jsonForm's bytes-to-hex: saved as genesis.json it must hash to genesisHash.
  app.get('/v1/genesis', async () => await backend.genesis())

  const sendBlock = (reply: FastifyReply, block: unknown, what: string): void => {
    if (block === undefined) throw rpcError('NOT_FOUND', `no block ${what}`)
    void reply.send(jsonForm(block))
  }
  app.get('/v1/blocks/latest', async (_request, reply) =>
    sendBlock(reply, await backend.block('latest'), 'committed yet'),
  )
  app.get('/v1/blocks/:height', async (request, reply) => {
    const height = parseHeight((request.params as { height: string }).height)
    sendBlock(reply, await backend.block(height), `at height ${height}`)
  })
  app.get('/v1/blocks/hash/:hash', async (request, reply) => {
    const hash = parseHash((request.params as { hash: string }).hash, 'hash')
    sendBlock(reply, await backend.blockByHash(hash), `with hash ${toHex(hash)}`)
  })

  app.get('/v1/blocks', async (request) => {
    const q = (request.query ?? {}) as Record<string, unknown>
    for (const k of Object.keys(q))
      if (!RANGE_PARAMS.has(k))
        throw rpcError('BAD_REQUEST', `unknown query parameter ${JSON.stringify(k.slice(0, 64))} (from, to)`)
    if (q.from === undefined) throw rpcError('BAD_REQUEST', 'from: required (first height of the range)')
    const from = parseHeight(q.from, 'from')
    if (from < 1) throw rpcError('BAD_REQUEST', 'from: heights start at 1')
    const to = q.to === undefined ? undefined : parseHeight(q.to, 'to')
    if (to !== undefined && to < from)
      throw rpcError('BAD_REQUEST', `to (${to}) is below from (${from}): the range is inverted`)
    const head = (await backend.status()).height
    if (from > head) throw rpcError('NOT_FOUND', `no block at height ${from} (the chain is at ${head})`)
    // Without `to` the client asks for everything up to the head, so a cut answer says `next` too.
    const want = Math.min(to ?? head, head)
    const last = Math.min(want, from + limits.maxRangeBlocks - 1)
    const r = await backend.blockRange(from, last, limits.maxRangeBytes)
    const next = r.next ?? (last < want ? last + 1 : undefined)
    return jsonForm(next === undefined ? { blocks: r.blocks } : { blocks: r.blocks, next })
  })

  app.get('/v1/validators', async () => ({ validators: jsonForm(await backend.validators()) }))

  app.get('/v1/peers', async () => ({ peers: jsonForm(await backend.peers()) }))

  app.get('/v1/services/:service/:query', async (request) => {
    const p = request.params as { service: string; query: string }
    const { service, query } = parseServiceQuery(p.service, p.query)
    const args = parseQueryArgs(request.query)
    return jsonForm(await backend.query(service, query, args))
  })

  app.get('/v1/openapi.json', async () => openApiDocument)
}
