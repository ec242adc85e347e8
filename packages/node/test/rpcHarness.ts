// Shared by the rpc*.test.ts and client*.test.ts files: a real RPC server on 127.0.0.1, port 0,
// over the in-memory fake backend, with its logs captured.
import { type TxBody, type Value, generateKeyPair, signTx } from '@cityledger/core'
import { seedFor } from '@cityledger/core/testing'
import { pino } from 'pino'
import { type FakeBackend, createFakeBackend } from '../src/rpc/fakeBackend.ts'
import { type RpcServerOptions, createRpcServer } from '../src/rpc/index.ts'

export interface Harness {
  fake: FakeBackend
  url: string
  /** Log lines the server wrote, parsed. */
  logs: { level: number; msg: string; [k: string]: unknown }[]
  /** Open event streams and TCP connections as the server counts them. */
  streams(): number
  connections(): number
  /** Bytes of events the server holds for its streams. */
  buffered(): number
  /** Resolves once `cond()` holds (checked every few ms; for server-side counts). */
  until(cond: () => boolean): Promise<void>
  stop(): Promise<void>
}

export async function startServer(
  over: Partial<RpcServerOptions> = {},
  limits: Partial<RpcServerOptions['limits']> = {},
): Promise<Harness> {
  const fake = createFakeBackend({ chainId: 'test-chain' })
  const logs: Harness['logs'] = []
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line)) })
  const server = createRpcServer({
    backend: fake,
    logger,
    limits: { maxBodyBytes: 4096, maxWaitMs: 60_000, ...limits },
    host: '127.0.0.1',
    port: 0,
    heartbeatMs: 0,
    ...over,
  })
  const { url } = await server.start()
  return {
    fake,
    url,
    logs,
    streams: () => server.eventSubscribers(),
    buffered: () => server.eventBufferedBytes(),
    connections: () => server.connections(),
    until,
    stop: () => server.stop(),
  }
}

/** Polls `cond` until it holds: the server's counts change on socket events the test cannot await. */
export async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5))
}

/** Runs `fn` against a fresh server and always stops it. */
export async function withServer(
  fn: (h: Harness) => Promise<void>,
  over: Partial<RpcServerOptions> = {},
  limits: Partial<RpcServerOptions['limits']> = {},
): Promise<void> {
  const h = await startServer(over, limits)
  try {
    await fn(h)
  } finally {
    await h.stop()
  }
}

export const alice = generateKeyPair(seedFor('rpc-alice'))

export function txBody(over: Partial<TxBody> = {}): TxBody {
  return {
    chainId: 'test-chain',
    service: 'token',
    method: 'transfer',
    args: { to: new Uint8Array(32).fill(2), amount: 10 } as Value,
    signer: alice.publicKey,
    nonce: 1,
    expiry: 0,
    ...over,
  }
}

export function signed(over: Partial<TxBody> = {}) {
  return signTx(txBody(over), alice.secretKey)
}

/** fetch + JSON body; never throws on a status. */
export async function call(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(url, init)
  const text = await res.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {}
  return { status: res.status, body, headers: res.headers }
}

export function postBytes(
  url: string,
  bytes: Uint8Array,
  query = '',
): Promise<{ status: number; body: any; headers: Headers }> {
  return call(`${url}/v1/txs${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: bytes as Uint8Array<ArrayBuffer>,
  })
}

export function postJson(
  url: string,
  path: string,
  body: string,
): Promise<{ status: number; body: any; headers: Headers }> {
  return call(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
}
