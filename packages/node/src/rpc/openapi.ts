import { RPC_ERROR_STATUS } from './errors.ts'

/**
 * The OpenAPI 3.1 description of RPC v1, served at `GET /v1/openapi.json`. Written by hand (no
 * schema-generation plugin) and kept next to the routes it describes; rpc-openapi.test.ts checks that
 * every route the server registers appears here, each operation with a unique operationId.
 */

const hex = { type: 'string', pattern: '^[0-9a-f]*$', description: 'lowercase hex' }
const hash = { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'SHA-256, lowercase hex' }
const uint = { type: 'integer', minimum: 0 }
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` })
const json = (schema: unknown) => ({ 'application/json': { schema } })
const ok = (description: string, schema: unknown) => ({ description, content: json(schema) })
const err = (description: string) => ({ description, content: json(ref('Error')) })

const hashParam = { name: 'hash', in: 'path', required: true, schema: hash }
const waitParams = [
  {
    name: 'wait',
    in: 'query',
    required: false,
    schema: { type: 'string', enum: ['commit'] },
    description: 'wait until committed or failed',
  },
  {
    name: 'timeoutMs',
    in: 'query',
    required: false,
    schema: uint,
    description: 'wait at most this long (capped by the server)',
  },
]
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

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'cityledger validator node RPC',
    version: '1.0.0',
    description:
      'RPC v1. Byte strings in JSON are lowercase hex. Every error is { "error": { "code", "message" } }; ' +
      'clients switch on the code. Status per code: ' +
      Object.entries(RPC_ERROR_STATUS)
        .map(([c, s]) => `${c} ${s}`)
        .join(', ') +
      '. On a service query UNKNOWN_SERVICE and UNKNOWN_METHOD are 404; codes of a service itself are 400.',
  },
  paths: {
    '/v1/txs': {
      post: {
        operationId: 'submitTx',
        summary: 'Submit a signed transaction envelope',
        parameters: waitParams,
        requestBody: {
          required: true,
          content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
        },
        responses: submitResponses,
      },
    },
    '/v1/txs/json': {
      post: {
        operationId: 'submitTxJson',
        summary: 'Submit a signed transaction envelope given as hex in JSON',
        parameters: waitParams,
        requestBody: {
          required: true,
          content: json({
            type: 'object',
            required: ['envelope'],
            properties: { envelope: hex },
            additionalProperties: false,
          }),
        },
        responses: submitResponses,
      },
    },
    '/v1/txs/batch': {
      post: {
        operationId: 'submitTxBatch',
        summary: 'Submit many signed envelopes at once; one result per envelope, in order',
        description:
          'Each envelope gets exactly the admission of POST /v1/txs (same codes and messages); one refused ' +
          'envelope never fails the others. At most maxBatchTxs envelopes (default 512) and maxBatchBytes ' +
          'bytes (default 4 MiB binary; the JSON form may be twice that plus quoting). No wait=commit.',
        requestBody: {
          required: true,
          content: {
            ...json({ type: 'array', items: hex, minItems: 1, description: 'hex envelopes' }),
            'application/octet-stream': {
              schema: {
                type: 'string',
                format: 'binary',
                description: 'canonical msgpack array of envelope byte strings (the gossip batch form)',
              },
            },
          },
        },
        responses: {
          200: ok('one result per envelope, in request order', ref('BatchResults')),
          400: err('BAD_REQUEST: not an array, empty, or an element of the wrong type'),
          413: err('TOO_LARGE: more envelopes or bytes than the limits'),
          415: err('UNSUPPORTED_MEDIA_TYPE'),
          429: err('RATE_LIMITED (a batch is one request)'),
          503: err('NOT_READY: the node is starting or catching up'),
        },
      },
    },
    '/v1/txs/{hash}': {
      get: {
        operationId: 'getTx',
        summary: 'Status and result of a transaction (long-polls with wait=commit)',
        parameters: [hashParam, ...waitParams],
        responses: { 200: ok('status', ref('TxStatus')), 400: err('BAD_HEX') },
      },
    },
    '/v1/status': {
      get: {
        operationId: 'getStatus',
        summary: 'Node status',
        responses: { 200: ok('status', ref('NodeStatus')) },
      },
    },
    '/v1/genesis': {
      get: {
        operationId: 'getGenesis',
        summary: 'The genesis the node runs, as a genesis.json file has it, and its hash',
        description:
          'genesis is the file form: service configs keep their "0x" hex byte strings, consensus defaults are ' +
          'filled in, notes such as $comment are dropped. Saved as genesis.json it hashes to genesisHash, the ' +
          'hash GET /v1/status reports.',
        responses: { 200: ok('genesis', ref('Genesis')) },
      },
    },
    '/v1/blocks': {
      get: {
        operationId: 'listBlocks',
        summary: 'Committed blocks from..to in height order (at most maxRangeBlocks, default 100)',
        description:
          'to defaults to from + maxRangeBlocks - 1 and is capped at the head. An answer also stops, after ' +
          'its first block, once the blocks read pass maxRangeBytes of encoded blocks (default 8 MiB); when it ' +
          'stops before the requested (capped) to, next is the height to ask for next.',
        parameters: [
          { name: 'from', in: 'query', required: true, schema: { ...uint, minimum: 1 } },
          { name: 'to', in: 'query', required: false, schema: { ...uint, minimum: 1 } },
        ],
        responses: {
          200: ok('blocks', ref('BlockRange')),
          400: err('BAD_REQUEST: from missing or not a height, to below from, or an unknown parameter'),
          404: err('NOT_FOUND: from is above the head'),
        },
      },
    },
    '/v1/blocks/latest': {
      get: {
        operationId: 'getLatestBlock',
        summary: 'Latest committed block',
        responses: { 200: ok('block', ref('Block')), 404: err('NOT_FOUND: no block yet') },
      },
    },
    '/v1/blocks/{height}': {
      get: {
        operationId: 'getBlock',
        summary: 'Committed block at a height',
        parameters: [{ name: 'height', in: 'path', required: true, schema: uint }],
        responses: { 200: ok('block', ref('Block')), 400: err('BAD_REQUEST'), 404: err('NOT_FOUND') },
      },
    },
    '/v1/blocks/hash/{hash}': {
      get: {
        operationId: 'getBlockByHash',
        summary: 'Committed block by hash',
        parameters: [hashParam],
        responses: { 200: ok('block', ref('Block')), 400: err('BAD_HEX'), 404: err('NOT_FOUND') },
      },
    },
    '/v1/peers': {
      get: {
        operationId: 'listPeers',
        summary: 'Peers connected now',
        responses: {
          200: ok('peers', {
            type: 'object',
            properties: { peers: { type: 'array', items: ref('Peer') } },
          }),
        },
      },
    },
    '/v1/validators': {
      get: {
        operationId: 'listValidators',
        summary: 'Current validator set',
        responses: {
          200: ok('validators', {
            type: 'object',
            properties: { validators: { type: 'array', items: ref('Validator') } },
          }),
        },
      },
    },
    '/v1/services/{service}/{query}': {
      get: {
        operationId: 'queryService',
        summary: 'Read-only service query; query-string parameters are the arguments (strings)',
        parameters: [
          { name: 'service', in: 'path', required: true, schema: { type: 'string' } },
          { name: 'query', in: 'path', required: true, schema: { type: 'string' } },
        ],
        responses: {
          200: ok('answer', ref('QueryResult')),
          400: err('bad arguments'),
          404: err('UNKNOWN_SERVICE, UNKNOWN_QUERY'),
        },
      },
    },
    '/v1/events': {
      get: {
        operationId: 'streamEvents',
        summary:
          'Server-Sent Events in commit order: per block `event: block` (Block, certificate included) with ' +
          '`id: <height>`, then `event: event` (service event with height, and tx and index for tx events) with ' +
          "`id: <height>/<n>`, n the position among the block's events from 0. A stream resumes after the " +
          'message named by the Last-Event-ID header (wins over fromHeight) or from fromHeight, replaying ' +
          'stored blocks (at most maxEventReplayBlocks, default 1000, else 410 RESUME_TOO_OLD), then goes on live. A ' +
          'stream too far behind is disconnected; it reconnects with Last-Event-ID.',
        parameters: [
          {
            name: 'Last-Event-ID',
            in: 'header',
            required: false,
            schema: { type: 'string', pattern: '^[0-9]+(/[0-9]+)?$' },
            description: 'resume after this message',
          },
          {
            name: 'fromHeight',
            in: 'query',
            required: false,
            schema: uint,
            description: 'replay from this block on',
          },
          {
            name: 'types',
            in: 'query',
            required: false,
            schema: { type: 'string', pattern: '^(block|event)(,(block|event))?$' },
            description: 'comma list of message types (default both)',
          },
          {
            name: 'service',
            in: 'query',
            required: false,
            schema: { type: 'string' },
            description: 'comma list: service events of these services only',
          },
          {
            name: 'eventType',
            in: 'query',
            required: false,
            schema: { type: 'string' },
            description: 'comma list: service events of these types only (e.g. transfer.done)',
          },
        ],
        responses: {
          200: {
            description: 'event stream',
            content: { 'text/event-stream': { schema: { type: 'string' } } },
          },
          400: err('BAD_REQUEST: bad Last-Event-ID, fromHeight or filter'),
          410: err('RESUME_TOO_OLD: the resume point is further back than the replay bound'),
          503: err('TOO_MANY_SUBSCRIBERS'),
        },
      },
    },
    '/v1/health': {
      get: {
        operationId: 'getHealth',
        summary:
          'Health: 503 with reasons while starting or catching up, for a validator with fewer validator peers ' +
          'than a quorum needs besides itself (none for a set of one), and for an observer without peers',
        responses: { 200: ok('healthy', ref('Health')), 503: ok('unhealthy', ref('Health')) },
      },
    },
    '/v1/openapi.json': {
      get: {
        operationId: 'getOpenApi',
        summary: 'This document',
        responses: { 200: ok('OpenAPI 3.1', { type: 'object' }) },
      },
    },
    '/metrics': {
      get: {
        operationId: 'getMetrics',
        summary: 'Prometheus metrics',
        responses: {
          200: { description: 'exposition text', content: { 'text/plain': { schema: { type: 'string' } } } },
        },
      },
    },
  },
  components: {
    schemas: {
      Error: {
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
      Submitted: { type: 'object', required: ['hash'], properties: { hash } },
      BatchResults: {
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
      TxStatus: {
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
      TxBody: {
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
      BlockRange: {
        type: 'object',
        required: ['blocks'],
        properties: {
          blocks: { type: 'array', items: ref('Block') },
          next: { ...uint, description: 'present when cut short: the first height left out' },
        },
      },
      Genesis: {
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
      Event: {
        type: 'object',
        properties: { service: { type: 'string' }, type: { type: 'string' }, data: {} },
      },
      NodeStatus: {
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
        },
      },
      Block: {
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
      Peer: {
        type: 'object',
        required: ['publicKey', 'role', 'addrs'],
        properties: {
          publicKey: hex,
          role: { type: 'string', enum: ['validator', 'observer'] },
          addrs: { type: 'array', items: { type: 'string' } },
        },
      },
      Validator: {
        type: 'object',
        required: ['publicKey'],
        properties: { publicKey: hex, name: { type: 'string' } },
      },
      QueryResult: {
        type: 'object',
        required: ['height', 'value'],
        properties: { height: uint, value: {}, proof: {} },
      },
      Health: {
        type: 'object',
        required: ['ok'],
        properties: { ok: { type: 'boolean' }, reasons: { type: 'array', items: { type: 'string' } } },
      },
    },
  },
} as const
