// The OpenAPI document the node serves lints with no error under Redocly's `recommended` ruleset
// (@redocly/openapi-core, in process). rpc-openapi.test.ts checks it validates; this checks the
// rules a validator does not (summaries, unique operationIds, path parameters, ...). Warnings are
// printed, not asserted: they are the missing descriptions and 4xx answers of health and metrics.
import { type NormalizedProblem, createConfig, lintFromString } from '@redocly/openapi-core'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createFakeBackend } from '../src/rpc/fakeBackend.ts'
import { createRpcServer } from '../src/rpc/index.ts'
import { call } from './rpcHarness.ts'

// openapi-core sends no usage data itself (Redocly's CLI does); the documented opt-out is set anyway,
// before any lint, in case a later version moves the sender into the library.
process.env.REDOCLY_TELEMETRY = 'off'

type Doc = { paths: Record<string, Record<string, { responses?: Record<string, { description?: string }> }>> }

async function servedDocument(): Promise<Doc> {
  const server = createRpcServer({
    backend: createFakeBackend({ chainId: 'test-chain' }),
    limits: { maxBodyBytes: 4096, maxWaitMs: 60_000 },
    host: '127.0.0.1',
    port: 0,
    heartbeatMs: 0,
  })
  const { url } = await server.start()
  try {
    const r = await call(`${url}/v1/openapi.json`)
    assert.is(r.status, 200)
    return r.body as Doc
  } finally {
    await server.stop()
  }
}

/**
 * Lints a document with the `recommended` rules. The document has no external $ref, and fetch (the
 * only way openapi-core reaches the network, for remote $refs) throws while it runs, so a lint that
 * tried to go out would fail here instead of reaching a server.
 */
async function lint(doc: unknown): Promise<NormalizedProblem[]> {
  const config = await createConfig({ extends: ['recommended'], telemetry: 'off' })
  const realFetch = globalThis.fetch
  globalThis.fetch = (input) => Promise.reject(new Error(`the linter tried the network: ${String(input)}`))
  try {
    return await lintFromString({ source: JSON.stringify(doc), absoluteRef: '/openapi.json', config })
  } finally {
    globalThis.fetch = realFetch
  }
}

const where = (p: NormalizedProblem) => p.location.map((l) => l.pointer ?? JSON.stringify(l.start)).join(', ')
const show = (ps: NormalizedProblem[]) => ps.map((p) => `${p.ruleId} at ${where(p)}: ${p.message}`).join('\n')

test('the served document has no lint error under the recommended rules', async () => {
  const problems = await lint(await servedDocument())
  const errors = problems.filter((p) => p.severity === 'error')
  const warnings = problems.filter((p) => p.severity === 'warn')
  console.log(`openapi lint: ${errors.length} errors, ${warnings.length} warnings\n${show(warnings)}`)
  assert.is(errors.length, 0, `lint errors:\n${show(errors)}`)
})

test('a document with an operation missing its responses is reported', async () => {
  const doc = await servedDocument()
  // An operation that declares no answer is the warning operation-2xx-response. (One without the
  // `responses` key is not reported at all: OpenAPI 3.1 made it optional.) A response without its
  // `description` breaks the structure of the document: the error `struct`.
  doc.paths['/v1/status']!.get!.responses = {}
  delete doc.paths['/v1/genesis']!.get!.responses!['200']!.description
  const problems = await lint(doc)
  const at = (ruleId: string, pointer: string) =>
    problems.find((p) => p.ruleId === ruleId && p.location.some((l) => l.pointer === pointer))
  const missing = at('operation-2xx-response', '#/paths/~1v1~1status/get/responses')
  assert.ok(missing, `no operation-2xx-response for /v1/status; got:\n${show(problems)}`)
  const struct = at('struct', '#/paths/~1v1~1genesis/get/responses/200')
  assert.ok(struct, `no struct problem for the response without description; got:\n${show(problems)}`)
  assert.is(struct!.severity, 'error')
})

test.run()
