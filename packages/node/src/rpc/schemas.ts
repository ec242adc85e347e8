/**
 * The JSON Schemas of RPC v1: the shared answer shapes (registered with `addSchema`, they become the
 * OpenAPI document's `components.schemas`) and the route schemas of the routes in server.ts, sse and
 * batch (the chain routes carry theirs in chainRoutes.ts). @fastify/swagger generates the document
 * served at `GET /v1/openapi.json` from them (see openapi.ts).
 *
 * Request schemas describe the parameters as clients send them; the route handlers still parse every
 * value themselves (their error codes and messages are the contract). Response schemas document the
 * answers only: they never filter or coerce a body (openapi.ts serialises with JSON.stringify).
 */

export const hex = { type: 'string', pattern: '^[0-9a-f]*$', description: 'lowercase hex' }
export const hash = { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'SHA-256, lowercase hex' }
export const uint = { type: 'integer', minimum: 0 }
/** A reference to one of `COMPONENT_SCHEMAS` by its `$id`. */
export const ref = (name: string) => ({ $ref: `${name}#` })
const json = (schema: unknown) => ({ 'application/json': { schema } })
export const ok = (description: string, schema: unknown) => ({ description, content: json(schema) })
export const err = (description: string) => ({ description, content: json(ref('Error')) })

/** A hash in a path: either case is accepted (a bad one is 400 BAD_HEX). */
export const hashParams = {
  type: 'object',
  required: ['hash'],
  properties: {
    hash: { type: 'string', pattern: '^[0-9a-fA-F]{64}$', description: 'SHA-256, 64 hex characters' },
  },
}

const waitQuery = {
  type: 'object',
  properties: {
    wait: { type: 'string', enum: ['commit'], description: 'wait until committed or failed' },
    timeoutMs: { ...uint, description: 'wait at most this long (capped by the server)' },
  },
}

const submitResponses = {
  200: ok('with wait=commit: the tx was committed or failed', ref('TxStatus')),
  202: ok('admitted to the mempool (with wait=commit: still pending when the wait ended)', {
    oneOf: [ref('Submitted'), ref('TxStatus')],
  }),
  400: err('malformed, badly signed or rejected by the service check (see the code)'),
  409: err('DUPLICATE_TX: the same envelope is already known'),
  413: err('TX_TOO_LARGE: body over the size limit'),
  415: err('UNSUPPORTED_MEDIA_TYPE'),
  429: err('MEMPOOL_FULL or RATE_LIMITED'),
  503: err('NOT_READY: the node is starting or catching up'),
}

const binary = (description?: string) => ({
  'application/octet-stream': {
    schema: { type: 'string', format: 'binary', ...(description ? { description } : {}) },
  },
})

/** Route schemas of the routes registered in server.ts and batch.ts, by route. */
export const ROUTE_SCHEMAS = {
  submitTx: {
    operationId: 'submitTx',
    tags: ['txs'],
    summary: 'Submit a signed transaction envelope',
    querystring: waitQuery,
    body: { content: binary('the envelope bytes') },
    response: submitResponses,
  },
  submitTxJson: {
    operationId: 'submitTxJson',
    tags: ['txs'],
    summary: 'Submit a signed transaction envelope given as hex in JSON',
    querystring: waitQuery,
    body: {
      content: json({
        type: 'object',
        required: ['envelope'],
        properties: { envelope: hex },
        additionalProperties: false,
      }),
    },
    response: submitResponses,
  },
  submitTxBatch: {
    operationId: 'submitTxBatch',
    tags: ['txs'],
    summary: 'Submit many signed envelopes at once; one result per envelope, in order',
    description:
      'Each envelope gets exactly the admission of POST /v1/txs (same codes and messages); one refused ' +
      'envelope never fails the others. At most maxBatchTxs envelopes (default 512) and maxBatchBytes ' +
      'bytes (default 4 MiB binary; the JSON form may be twice that plus quoting). No wait=commit.',
    body: {
      content: {
        ...json({ type: 'array', items: hex, minItems: 1, description: 'hex envelopes' }),
        ...binary('canonical msgpack array of envelope byte strings (the gossip batch form)'),
      },
    },
    response: {
      200: ok('one result per envelope, in request order', ref('BatchResults')),
      400: err('BAD_REQUEST: not an array, empty, or an element of the wrong type'),
      413: err('TOO_LARGE: more envelopes or bytes than the limits'),
      415: err('UNSUPPORTED_MEDIA_TYPE'),
      429: err('RATE_LIMITED (a batch is one request)'),
      503: err('NOT_READY: the node is starting or catching up'),
    },
  },
  getTx: {
    operationId: 'getTx',
    tags: ['txs'],
    summary: 'Status and result of a transaction (long-polls with wait=commit)',
    params: hashParams,
    querystring: waitQuery,
    response: { 200: ok('status', ref('TxStatus')), 400: err('BAD_HEX') },
  },
  streamEvents: {
    operationId: 'streamEvents',
    tags: ['events'],
    summary:
      'Server-Sent Events in commit order: per block `event: block` (Block, certificate included) with ' +
      '`id: <height>`, then `event: event` (service event with height, and tx and index for tx events) with ' +
      "`id: <height>/<n>`, n the position among the block's events from 0. A stream resumes after the " +
      'message named by the Last-Event-ID header (wins over fromHeight) or from fromHeight, replaying ' +
      'stored blocks (at most maxEventReplayBlocks, default 1000, else 410 RESUME_TOO_OLD), then goes on live. A ' +
      'stream too far behind is disconnected; it reconnects with Last-Event-ID.',
    headers: {
      type: 'object',
      properties: {
        'last-event-id': {
          type: 'string',
          pattern: '^([0-9]+(/[0-9]+)?)?$',
          description: 'resume after this message: <height> or <height>/<n>',
        },
      },
    },
    querystring: {
      type: 'object',
      properties: {
        fromHeight: { ...uint, description: 'replay from this block on' },
        types: {
          type: 'string',
          pattern: '^(block|event)(,(block|event))?$',
          description: 'comma list of message types (default both)',
        },
        service: { type: 'string', description: 'comma list: service events of these services only' },
        eventType: {
          type: 'string',
          description: 'comma list: service events of these types only (e.g. transfer.done)',
        },
      },
    },
    response: {
      200: {
        description: 'event stream',
        content: { 'text/event-stream': { schema: { type: 'string' } } },
      },
      400: err('BAD_REQUEST: bad Last-Event-ID, fromHeight or filter'),
      410: err(
        'RESUME_TOO_OLD: the resume point is further back than the replay bound; PRUNED: below the lowest kept height',
      ),
      503: err('TOO_MANY_SUBSCRIBERS'),
    },
  },
  getHealth: {
    operationId: 'getHealth',
    tags: ['operations'],
    summary:
      'Health: 503 with reasons while starting or catching up, for a validator with fewer validator peers ' +
      'than a quorum needs besides itself (none for a set of one), and for an observer without peers',
    response: { 200: ok('healthy', ref('Health')), 503: ok('unhealthy', ref('Health')) },
  },
  getMetrics: {
    operationId: 'getMetrics',
    tags: ['operations'],
    summary: 'Prometheus metrics',
    response: {
      200: { description: 'exposition text', content: { 'text/plain': { schema: { type: 'string' } } } },
    },
  },
} as const

/** The answer shapes, each with its `$id` (its name under `components.schemas`). */
export const COMPONENT_SCHEMAS: Record<string, unknown>[] = [
  {
    $id: 'Error',
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: { code: { type: 'string' }, message: { type: 'string' } },
      },
    },
  },
  { $id: 'Submitted', type: 'object', required: ['hash'], properties: { hash } },
  {
    $id: 'BatchResults',
    type: 'object',
    required: ['results'],
    properties: {
      results: {
        type: 'array',
        items: { oneOf: [ref('Submitted'), ref('Error')] },
        description: 'admitted: { hash }; refused: { error: { code, message } } as POST /v1/txs gives',
      },
    },
  },
  {
    $id: 'TxStatus',
    type: 'object',
    required: ['hash', 'status'],
    properties: {
      hash,
      status: { type: 'string', enum: ['pending', 'committed', 'failed', 'unknown'] },
      height: uint,
      index: uint,
      code: { type: 'string' },
      message: { type: 'string' },
      events: { type: 'array', items: ref('Event') },
      tx: ref('TxBody'),
    },
  },
  {
    $id: 'TxBody',
    type: 'object',
    description: 'the signed tx body, decoded (committed, failed and pending txs)',
    required: ['chainId', 'service', 'method', 'args', 'signer', 'nonce', 'expiry'],
    properties: {
      chainId: { type: 'string' },
      service: { type: 'string' },
      method: { type: 'string' },
      args: { description: 'the arguments in JSON form, byte strings as lowercase hex' },
      signer: hex,
      nonce: uint,
      expiry: { ...uint, description: 'last height the tx may be included at; 0 = none' },
    },
  },
  {
    $id: 'BlockRange',
    type: 'object',
    required: ['blocks'],
    properties: {
      blocks: { type: 'array', items: ref('Block') },
      next: { ...uint, description: 'present when cut short: the first height left out' },
    },
  },
  {
    $id: 'Genesis',
    type: 'object',
    required: ['genesisHash', 'genesis'],
    properties: {
      genesisHash: hash,
      genesis: {
        type: 'object',
        required: ['chainId', 'genesisTime', 'validators', 'consensus', 'services'],
        properties: {
          chainId: { type: 'string' },
          genesisTime: uint,
          validators: {
            type: 'array',
            items: {
              type: 'object',
              required: ['name', 'publicKey'],
              properties: { name: { type: 'string' }, publicKey: hex },
            },
          },
          consensus: { type: 'object' },
          services: { type: 'object', description: 'service genesis configs; byte strings as "0x" hex' },
        },
      },
    },
  },
  {
    $id: 'Event',
    type: 'object',
    properties: { service: { type: 'string' }, type: { type: 'string' }, data: {} },
  },
  {
    $id: 'NodeStatus',
    type: 'object',
    required: [
      'chainId',
      'nodeId',
      'height',
      'view',
      'stateRoot',
      'catchingUp',
      'peers',
      'version',
      'genesisHash',
      'latestBlockHash',
      'latestBlockTime',
      'lowestHeight',
    ],
    properties: {
      chainId: { type: 'string' },
      nodeId: hex,
      height: uint,
      view: uint,
      stateRoot: hash,
      catchingUp: { type: 'boolean' },
      peers: uint,
      version: { type: 'string', description: 'the @cityledger/node version the node runs' },
      genesisHash: hash,
      latestBlockHash: { ...hash, description: 'hash of block height (the genesis hash at height 0)' },
      latestBlockTime: { ...uint, description: 'block time of block height, ms (the genesis time at 0)' },
      lowestHeight: {
        ...uint,
        description: 'lowest height whose block this node keeps (1 unless pruned); below it 410 PRUNED',
      },
    },
  },
  {
    $id: 'Block',
    type: 'object',
    required: ['hash', 'header', 'txs', 'certificate'],
    properties: {
      hash,
      header: {
        type: 'object',
        properties: {
          chainId: { type: 'string' },
          height: uint,
          view: uint,
          time: uint,
          parentHash: hash,
          txRoot: hash,
          prevStateRoot: hash,
          proposer: hex,
        },
      },
      txs: { type: 'array', items: hash },
      certificate: {
        type: 'object',
        properties: {
          chainId: { type: 'string' },
          view: uint,
          height: uint,
          blockHash: hash,
          signatures: {
            type: 'array',
            items: { type: 'object', properties: { validator: hex, signature: hex } },
          },
        },
      },
    },
  },
  {
    $id: 'Peer',
    type: 'object',
    required: ['publicKey', 'role', 'addrs'],
    properties: {
      publicKey: hex,
      role: { type: 'string', enum: ['validator', 'observer'] },
      addrs: { type: 'array', items: { type: 'string' } },
    },
  },
  {
    $id: 'Validator',
    type: 'object',
    required: ['publicKey'],
    properties: { publicKey: hex, name: { type: 'string' } },
  },
  {
    $id: 'QueryResult',
    type: 'object',
    required: ['height', 'value'],
    properties: { height: uint, value: {}, proof: {} },
  },
  {
    $id: 'Health',
    type: 'object',
    required: ['ok'],
    properties: { ok: { type: 'boolean' }, reasons: { type: 'array', items: { type: 'string' } } },
  },
]
