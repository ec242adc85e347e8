import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, createWriteStream, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { type KeyPair, type Value, toHex } from '@cityledger/core'
import {
  type NodeConfig,
  type TestnetLayout,
  createClient,
  createTestnet,
  loadConfig,
  writeConfig,
} from '@cityledger/node'
import { freePorts } from './ports.ts'

const MAIN = resolve(import.meta.dirname, '../../packages/node/src/cli/main.ts')

export type Client = ReturnType<typeof createClient>

export interface TestNode {
  index: number
  home: string
  rpc: string
  client: Client
  process: ChildProcess | undefined
  /** Resolves when the process exits. */
  exited: Promise<number | null> | undefined
}

export interface TestNetwork {
  layout: TestnetLayout
  dir: string
  nodes: TestNode[]
  observers: TestNode[]
  start(i: number, which?: 'validator' | 'observer'): Promise<void>
  kill(i: number, signal?: NodeJS.Signals, which?: 'validator' | 'observer'): Promise<void>
  /** SIGTERM everyone, wait, remove the folder. Always call it (finally). */
  close(): Promise<void>
  /** Log of node i (for failure messages). */
  log(i: number, which?: 'validator' | 'observer'): string
  /** Status and log tail of node i, for a wait that timed out. */
  describe(i: number, which?: 'validator' | 'observer'): Promise<string>
}

/**
 * Starts n validator processes (and optional observers) on loopback ports that were free a moment ago,
 * each from its own testnet folder, and waits for each to print its `ready` line (not a timer).
 */
export async function startNetwork(opts: {
  validators: number
  observers?: number
  consensus?: Record<string, number>
  startObservers?: boolean
  /** Changes each validator's config before it starts (e.g. `cfg.consensus.emptyBlocks = false`). */
  editConfig?: (cfg: NodeConfig, index: number) => void
}): Promise<TestNetwork> {
  const n = opts.validators
  const nObs = opts.observers ?? 0
  const ports = await freePorts(2 * (n + nObs))
  const dir = mkdtempSync(join(tmpdir(), 'cityledger-e2e-'))
  const layout = createTestnet({
    validators: n,
    out: dir,
    chainId: 'e2e-test',
    ports: Array.from({ length: n }, (_, i) => ({ p2p: ports[2 * i]!, rpc: ports[2 * i + 1]! })),
    observers: nObs,
    observerPorts: Array.from({ length: nObs }, (_, i) => ({
      p2p: ports[2 * (n + i)]!,
      rpc: ports[2 * (n + i) + 1]!,
    })),
    consensus: {
      viewChangeTimeoutMs: 1500,
      blockIntervalMs: 50,
      checkpointInterval: 8,
      watermarkWindow: 32,
      ...opts.consensus,
    },
  })
  if (opts.editConfig)
    for (const [i, home] of layout.homes.entries()) {
      const cfg = loadConfig(home)
      opts.editConfig(cfg, i)
      writeConfig(home, cfg)
    }
  const mk = (home: string, rpc: string, index: number): TestNode => ({
    index,
    home,
    rpc,
    client: createClient({ url: rpc }),
    process: undefined,
    exited: undefined,
  })
  const nodes = layout.homes.map((h, i) => mk(h, layout.rpc[i]!, i))
  const observers = layout.observerHomes.map((h, i) => mk(h, layout.observerRpc[i]!, i))
  const pick = (i: number, which: 'validator' | 'observer' = 'validator') =>
    (which === 'validator' ? nodes : observers)[i]!

  const start = (i: number, which: 'validator' | 'observer' = 'validator') =>
    new Promise<void>((resolveStart, rejectStart) => {
      const node = pick(i, which)
      const log = createWriteStream(join(node.home, 'node.log'), { flags: 'a' })
      const child = spawn(process.execPath, [MAIN, 'start', '--home', node.home], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      node.process = child
      node.exited = new Promise((r) => child.once('exit', (code) => r(code)))
      let buf = ''
      let ready = false
      child.stdout!.on('data', (chunk: Buffer) => {
        log.write(chunk)
        if (ready) return
        buf += chunk.toString()
        if (buf.includes('"msg":"ready"')) {
          ready = true
          buf = ''
          resolveStart()
        }
      })
      child.stderr!.on('data', (chunk: Buffer) => log.write(chunk))
      child.once('exit', (code) => {
        if (!ready)
          rejectStart(
            new Error(
              `${which} ${i} exited with ${code} before ready:\n${tail(join(node.home, 'node.log'))}`,
            ),
          )
      })
    })

  const kill = async (
    i: number,
    signal: NodeJS.Signals = 'SIGKILL',
    which: 'validator' | 'observer' = 'validator',
  ) => {
    const node = pick(i, which)
    if (!node.process || node.process.exitCode !== null || node.process.signalCode !== null) return
    node.process.kill(signal)
    await node.exited
  }

  const net: TestNetwork = {
    layout,
    dir,
    nodes,
    observers,
    start,
    kill,
    log: (i, which = 'validator') => tail(join(pick(i, which).home, 'node.log')),
    describe: (i, which = 'validator') =>
      describeNode(`${which} ${i}`, pick(i, which).rpc, join(pick(i, which).home, 'node.log')),
    async close() {
      const all = [...nodes, ...observers]
      for (const node of all)
        if (node.process && node.process.exitCode === null && node.process.signalCode === null)
          node.process.kill('SIGTERM')
      const timer = setTimeout(() => {
        for (const node of all)
          if (node.process && node.process.exitCode === null) node.process.kill('SIGKILL')
      }, 10_000)
      await Promise.all(all.map((node) => node.exited))
      clearTimeout(timer)
      if (!process.env.KEEP_E2E) rmSync(dir, { recursive: true, force: true })
    },
  }
  try {
    await Promise.all(nodes.map((_, i) => start(i)))
    if (opts.startObservers !== false) await Promise.all(observers.map((_, i) => start(i, 'observer')))
  } catch (err) {
    await net.close()
    throw err
  }
  return net
}

/** The last lines of a log file (for failure messages). */
export function tail(path: string, lines = 40): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

/**
 * Polls `fn` until it returns a truthy value; fails after `timeoutMs` with `what`. For cross-process waits
 * only. `explain` runs once on a timeout and its text goes into the error (e.g. `describeNode`: the
 * node's status and the tail of its log), so a failure says why the node never got there.
 */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
  explain?: () => Promise<string> | string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastErr: unknown
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    try {
      const v = await fn()
      if (v) return v
    } catch (err) {
      lastErr = err
    }
    if (Date.now() > deadline) {
      let why = ''
      if (explain) {
        try {
          why = `\n${await explain()}`
        } catch (err) {
          why = `\n(explain failed: ${(err as Error).message})`
        }
      }
      throw new Error(
        `timed out waiting for ${what}${lastErr ? ` (last error: ${(lastErr as Error).message})` : ''}${why}`,
      )
    }
    await new Promise((r) => setTimeout(r, delay))
  }
}

/**
 * What a test prints about a node it gave up waiting for: its `/v1/status` (or why there is none) and
 * the tail of its log.
 */
export async function describeNode(name: string, rpc: string, logPath: string, lines = 60): Promise<string> {
  let status: string
  try {
    const res = await fetch(`${rpc}/v1/status`, { signal: AbortSignal.timeout(2000) })
    status = `${res.status} ${await res.text()}`
  } catch (err) {
    status = `unreachable (${(err as Error).cause ?? (err as Error).message})`
  }
  return `--- ${name} status: ${status}\n--- ${name} log (last ${lines} lines):\n${tail(logPath, lines)}`
}

/** Signs and submits a tx from `key` with the next nonce the test tracks itself. */
export class TxSender {
  private readonly nonces = new Map<string, number>()
  private readonly chainId: string
  constructor(chainId: string) {
    this.chainId = chainId
  }
  body(key: KeyPair, service: string, method: string, args: Value) {
    const hex = toHex(key.publicKey)
    const nonce = (this.nonces.get(hex) ?? 0) + 1
    this.nonces.set(hex, nonce)
    return { chainId: this.chainId, service, method, args, signer: key.publicKey, nonce, expiry: 0 }
  }
}
