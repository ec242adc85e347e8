import type { FastifyInstance, FastifyReply } from 'fastify'
import { toHex } from '@cityledger/core'
import type { RpcBackend } from './backend.ts'
import { rpcError } from './errors.ts'
import {
  PARAM_ERRORS,
  jsonForm,
  parseHash,
  parseHeight,
  parseQueryArgs,
  parseServiceQuery,
} from './params.ts'
import { err, hashParams, hex, ok, ref, uint } from './schemas.ts'

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

/**
 * Bounds of one `GET /v1/validators/history` answer: most entries, and most encoded entry bytes (the
 * first entry always goes; an entry is a header, a certificate and a state proof, a few KiB).
 */
export const VALIDATOR_HISTORY_PAGE = Object.freeze({ maxEntries: 64, maxBytes: 4 * 1024 * 1024 })

export interface ChainRoutesOptions {
  backend: RpcBackend
  limits: { maxRangeBlocks: number; maxRangeBytes: number }
}

const RANGE_PARAMS = new Set(['from', 'to'])
const HISTORY_PARAMS = new Set(['from'])

const height = { ...uint, minimum: 1 }
// Every route but health and metrics counts against a client's rate.
const limited = err('RATE_LIMITED: too many requests from this address (see Retry-After)')
const list = (key: string, item: string) => ({
  type: 'object',
  properties: { [key]: { type: 'array', items: ref(item) } },
})

/** The route schemas (see schemas.ts): the OpenAPI document is generated from them. */
const SCHEMAS = {
  status: {
    operationId: 'getStatus',
    tags: ['chain'],
    summary: 'Node status',
    response: { 200: ok('status', ref('NodeStatus')), 429: limited },
  },
  genesis: {
    operationId: 'getGenesis',
    tags: ['chain'],
    summary: 'The genesis the node runs, as a genesis.json file has it, and its hash',
    description:
      'genesis is the file form: service configs keep their "0x" hex byte strings, consensus defaults are ' +
      'filled in, notes such as $comment are dropped. Saved as genesis.json it hashes to genesisHash, the ' +
      'hash GET /v1/status reports.',
    response: { 200: ok('genesis', ref('Genesis')), 429: limited },
  },
  blocks: {
    operationId: 'listBlocks',
    tags: ['chain'],
    summary: 'Committed blocks from..to in height order (at most maxRangeBlocks, default 100)',
    description:
      'to defaults to from + maxRangeBlocks - 1 and is capped at the head. An answer also stops, after ' +
      'its first block, once the blocks read pass maxRangeBytes of encoded blocks (default 8 MiB); when it ' +
      'stops before the requested (capped) to, next is the height to ask for next. Both bounds are ' +
      'rpc.maxRangeBlocks and rpc.maxRangeBytes in config.json.',
    querystring: {
      type: 'object',
      required: ['from'],
      properties: {
        from: { ...height, description: 'first height' },
        to: { ...height, description: 'last height' },
      },
    },
    response: {
      200: ok('blocks', ref('BlockRange')),
      400: err('BAD_REQUEST: from missing or not a height, to below from, or an unknown parameter'),
      404: err('NOT_FOUND: from is above the head'),
      410: err('PRUNED: from is below the lowest kept height (status.lowestHeight)'),
    },
  },
  latest: {
    operationId: 'getLatestBlock',
    tags: ['chain'],
    summary: 'Latest committed block',
    response: { 200: ok('block', ref('Block')), 404: err('NOT_FOUND: no block yet') },
  },
  block: {
    operationId: 'getBlock',
    tags: ['chain'],
    summary: 'Committed block at a height',
    params: { type: 'object', required: ['height'], properties: { height: uint } },
    response: {
      200: ok('block', ref('Block')),
      400: err('BAD_REQUEST'),
      404: err('NOT_FOUND'),
      410: err('PRUNED: the height is below the lowest kept (status.lowestHeight)'),
    },
  },
  blockByHash: {
    operationId: 'getBlockByHash',
    tags: ['chain'],
    summary: 'Committed block by hash',
    params: hashParams,
    response: { 200: ok('block', ref('Block')), 400: err('BAD_HEX'), 404: err('NOT_FOUND') },
  },
  validators: {
    operationId: 'listValidators',
    tags: ['chain'],
    summary: 'Current validator set',
    response: { 200: ok('validators', list('validators', 'Validator')), 429: limited },
  },
  validatorHistory: {
    operationId: 'listValidatorHistory',
    tags: ['chain'],
    summary: 'The validator history from change from on: the evidence of each validator-set change',
    description:
      'entries are the encoded history entries (msgpack [seq, headerBytes, certificate, value, proof], hex) ' +
      'of changes from, from + 1, ... that this node holds, at most 64 and about 4 MiB per answer (the first ' +
      'always goes); ask again from the next seq until the answer is empty. Entry n holds a block header ' +
      'certified by the set before change n and a state proof of the change record under its root: a ' +
      'client walks them from its own genesis set (walkValidatorHistory) to learn the set of any height.',
    querystring: {
      type: 'object',
      properties: { from: { ...uint, description: 'first change number (default 1)' } },
    },
    response: {
      200: ok('entries', {
        type: 'object',
        properties: { entries: { type: 'array', items: hex } },
      }),
      400: err('BAD_REQUEST: from not a number >= 1, or an unknown parameter'),
      429: limited,
    },
  },
  peers: {
    operationId: 'listPeers',
    tags: ['chain'],
    summary: 'Peers connected now',
    response: { 200: ok('peers', list('peers', 'Peer')), 429: limited },
  },
  query: {
    operationId: 'queryService',
    tags: ['chain'],
    summary: 'Read-only service query; query-string parameters are the arguments (strings)',
    params: {
      type: 'object',
      required: ['service', 'query'],
      properties: { service: { type: 'string' }, query: { type: 'string' } },
    },
    response: {
      200: ok('answer', ref('QueryResult')),
      400: err('bad arguments'),
      404: err('UNKNOWN_SERVICE, UNKNOWN_QUERY'),
    },
  },
  openapi: {
    operationId: 'getOpenApi',
    tags: ['operations'],
    summary: 'This document',
    response: { 200: ok('OpenAPI 3.1', { type: 'object' }), 429: limited },
  },
}

/**
 * Read-only routes over the committed chain: status, genesis, blocks (one, by hash, a range),
 * validators and their history, peers, service queries, and the OpenAPI document. Every answer is the backend's value in JSON form; a block that is not there
 * is 404 NOT_FOUND.
 */
export function registerChainRoutes(app: FastifyInstance, opts: ChainRoutesOptions): void {
  const { backend, limits } = opts

  app.get('/v1/status', { schema: SCHEMAS.status }, async () => jsonForm(await backend.status()))

  // The genesis object is passed through as the file has it ("0x" hex in service configs), not
  // through jsonForm's bytes-to-hex: saved as genesis.json it must hash to genesisHash.
  app.get('/v1/genesis', { schema: SCHEMAS.genesis }, async () => await backend.genesis())

  const sendBlock = (reply: FastifyReply, block: unknown, what: string): void => {
    if (block === undefined) throw rpcError('NOT_FOUND', `no block ${what}`)
    void reply.send(jsonForm(block))
  }
  app.get('/v1/blocks/latest', { schema: SCHEMAS.latest }, async (_request, reply) =>
    sendBlock(reply, await backend.block('latest'), 'committed yet'),
  )
  app.get('/v1/blocks/:height', { schema: SCHEMAS.block }, async (request, reply) => {
    const height = parseHeight((request.params as { height: string }).height)
    sendBlock(reply, await backend.block(height), `at height ${height}`)
  })
  app.get('/v1/blocks/hash/:hash', { schema: SCHEMAS.blockByHash }, async (request, reply) => {
    const hash = parseHash((request.params as { hash: string }).hash, 'hash')
    sendBlock(reply, await backend.blockByHash(hash), `with hash ${toHex(hash)}`)
  })

  app.get('/v1/blocks', { schema: SCHEMAS.blocks }, async (request) => {
    const q = (request.query ?? {}) as Record<string, unknown>
    for (const k of Object.keys(q))
      if (!RANGE_PARAMS.has(k))
        throw rpcError('BAD_REQUEST', `unknown query parameter ${JSON.stringify(k.slice(0, 64))} (from, to)`)
    if (q.from === undefined) throw rpcError('BAD_REQUEST', `from: ${PARAM_ERRORS.fromRequired}`)
    const from = parseHeight(q.from, 'from')
    if (from < 1) throw rpcError('BAD_REQUEST', `from: ${PARAM_ERRORS.fromBelowOne}`)
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

  app.get('/v1/validators', { schema: SCHEMAS.validators }, async () => ({
    validators: jsonForm(await backend.validators()),
  }))

  app.get('/v1/validators/history', { schema: SCHEMAS.validatorHistory }, async (request) => {
    const q = (request.query ?? {}) as Record<string, unknown>
    for (const k of Object.keys(q))
      if (!HISTORY_PARAMS.has(k))
        throw rpcError('BAD_REQUEST', `unknown query parameter ${JSON.stringify(k.slice(0, 64))} (from)`)
    const from = q.from === undefined ? 1 : parseHeight(q.from, 'from')
    if (from < 1) throw rpcError('BAD_REQUEST', 'from: validator changes are numbered from 1')
    const { maxEntries, maxBytes } = VALIDATOR_HISTORY_PAGE
    return { entries: jsonForm(await backend.validatorHistory(from, maxEntries, maxBytes)) }
  })

  app.get('/v1/peers', { schema: SCHEMAS.peers }, async () => ({ peers: jsonForm(await backend.peers()) }))

  app.get('/v1/services/:service/:query', { schema: SCHEMAS.query }, async (request) => {
    const p = request.params as { service: string; query: string }
    const { service, query } = parseServiceQuery(p.service, p.query)
    const args = parseQueryArgs(request.query)
    return jsonForm(await backend.query(service, query, args))
  })

  // Generated from the route schemas once every route is in (the first request comes after start).
  app.get('/v1/openapi.json', { schema: SCHEMAS.openapi }, async () => app.swagger())
}
