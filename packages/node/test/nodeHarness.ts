// A one-validator node in this process (memory store, native verifier, silent logs), built from the
// files `createTestnet` writes, so the config is the one `start` would read.
import { mkdtempSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { allServices } from '@cityledger/apps'
import { type KeyPair, type TxBody, sha256, signTx, utf8 } from '@cityledger/core'
import { createTestnet } from '../src/cli/testnet.ts'
import { type NodeConfig, loadConfig, loadGenesis, loadKey } from '../src/config/index.ts'
import { type Logger, createLogger } from '../src/log/index.ts'
import { type CityNode, createNode } from '../src/node/index.ts'
import type { Clock } from '../src/p2p/index.ts'

export interface LocalNode {
  node: CityNode
  url: string
  chainId: string
  home: string
  close(): Promise<void>
}

/**
 * Starts validator 0 of a chain (one validator unless `o.validators` says more: the others are not
 * started); `edit` may change the config before the node reads it, `o.logger` receives its logs, `o.clock`
 * replaces the node's timers (a manual clock in tests).
 */
export async function startLocalNode(
  edit: (cfg: NodeConfig) => void = () => {},
  o: { validators?: number; logger?: Logger; clock?: Clock } = {},
): Promise<LocalNode> {
  const dir = mkdtempSync(join(tmpdir(), 'cityledger-node-test-'))
  try {
    const validators = o.validators ?? 1
    const layout = createTestnet({
      validators,
      out: dir,
      chainId: 'node-test',
      ports: Array.from({ length: validators }, () => ({ p2p: 0, rpc: 0 })),
      store: 'memory',
      consensus: { blockIntervalMs: 20, viewChangeTimeoutMs: 1000 },
    })
    const home = layout.homes[0]!
    const config = loadConfig(home)
    config.verifier.kind = 'native'
    config.log.level = 'silent'
    edit(config)
    const node = await createNode({
      config,
      genesis: loadGenesis(join(home, 'genesis.json')),
      key: loadKey(home),
      dataDir: join(home, 'data'),
      logger: o.logger ?? createLogger({ level: 'silent' }),
      // The modules as they are (what is under test here is the RPC, not the service sandbox).
      services: allServices,
      ...(o.clock ? { clock: o.clock } : {}),
    })
    await node.start()
    return {
      node,
      url: node.rpcUrl(),
      chainId: layout.genesis.chainId,
      home,
      async close() {
        await node.stop()
        rmSync(dir, { recursive: true, force: true })
      },
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
}

/** A signed `identity.registerSubject` tx (any signer may send one). */
export function subjectTx(chainId: string, key: KeyPair, nonce: number, tag: string) {
  const body: TxBody = {
    chainId,
    service: 'identity',
    method: 'registerSubject',
    args: { subject: sha256(utf8.encode(`${tag}-${nonce}`)) },
    signer: key.publicKey,
    nonce,
    expiry: 0,
  }
  return signTx(body, key.secretKey)
}

/** One HTTP request from a chosen loopback source address (all of 127.0.0.0/8 reaches the node). */
export function callFrom(
  url: string,
  localAddress: string,
  path: string,
  init: { method?: string; body?: Uint8Array } = {},
): Promise<{ status: number; body: any; headers: Record<string, unknown> }> {
  const u = new URL(url)
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path,
        method: init.method ?? 'GET',
        localAddress,
        agent: false,
        headers: init.body ? { 'content-type': 'application/octet-stream' } : {},
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString()
          let body: unknown = text
          try {
            body = JSON.parse(text)
          } catch {}
          resolve({ status: res.statusCode!, body, headers: res.headers })
        })
      },
    )
    req.on('error', reject)
    req.end(init.body)
  })
}

/** A stream that collects the non-empty lines written to it (log lines), and those lines. */
export function lineSink(): { lines: string[]; stream: Writable } {
  const lines: string[] = []
  let pending = ''
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      pending += chunk.toString()
      const parts = pending.split('\n')
      pending = parts.pop()!
      lines.push(...parts.filter((l) => l.length > 0))
      done()
    },
  })
  return { lines, stream }
}
