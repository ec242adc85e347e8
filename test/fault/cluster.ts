// A cluster of validator processes on loopback for the fault suite. Unlike test/helpers/network.ts it
// can route every validator-to-validator link through a LinkProxy (partitions, delays), run chosen
// nodes under test/fault/faultNode.ts (clock skew, full disk, Byzantine), pause processes
// (SIGSTOP/SIGCONT), and it always tears down processes, proxies and the folder.
import { type ChildProcess, spawn } from 'node:child_process'
import {
  copyFileSync,
  cpSync,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'
import { type KeyPair, generateKeyPair, toHex } from '@cityledger/core'
import {
  type CityledgerClient,
  type TestnetLayout,
  createClient,
  createTestnet,
  dataPath,
  loadConfig,
  writeConfig,
  writeKey,
} from '@cityledger/node'
import type { FaultNodeOptions } from './faultNode.ts'
import { type LinkMode, type LinkProxy, startProxy } from './proxy.ts'
import { freePorts, portsFree } from '../helpers/ports.ts'
import { describeNode, tail, waitFor } from '../helpers/network.ts'

const MAIN = resolve(import.meta.dirname, '../../packages/node/src/cli/main.ts')
const FAULT_NODE = resolve(import.meta.dirname, 'faultNode.ts')
const GENESIS_STORE = resolve(import.meta.dirname, 'genesisStore.ts')

// If the harness itself dies, its node processes must not outlive it.
const children = new Set<ChildProcess>()
process.once('exit', () => {
  for (const c of children)
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGCONT'), c.kill('SIGKILL')
})

/** Every RPC call of the harness gives up after this long (a paused node never answers). */
export const RPC_TIMEOUT_MS = 5000

export interface ClusterNode {
  index: number
  home: string
  rpc: string
  client: CityledgerClient
  process: ChildProcess | undefined
  exited: Promise<number | null> | undefined
  /** Runs under faultNode.ts with these options (undefined: the real CLI). */
  fault: FaultNodeOptions | undefined
  paused: boolean
  /** Byzantine nodes are left out of the honest-node checks. */
  byzantine: boolean
}

export interface ClusterOptions {
  validators: number
  consensus?: Record<string, number>
  /** Route each directed validator link i -> j through its own proxy. */
  proxied?: boolean
  /** Per-node faults (these nodes run under faultNode.ts). */
  faults?: Record<number, FaultNodeOptions>
  /** Extra allowed peer keys (hex), written into every node's `p2p.observers` (e.g. fuzzing identities). */
  observers?: string[]
  /** Edits every home's genesis.json (the parsed JSON) before any node starts (e.g. a large genesis state). */
  editGenesis?: (genesis: Record<string, unknown>) => void
  /** Nodes not started with the others (start them with `start(i)`: e.g. a node that joins later). */
  notStarted?: number[]
  /**
   * Executes the genesis once (test/fault/genesisStore.ts, in a process of its own) and copies the store
   * it writes into the data folder of every validator started with the cluster, instead of each one
   * executing it (a genesis of a million keys takes ~25 s of CPU per node, opening its store ~14 s).
   * Each node still opens the copy as its own store, checking its state against its root and its genesis
   * hash against genesis.json. Nodes in `notStarted` keep an empty data folder.
   */
  shareGenesisStore?: boolean
  /**
   * Nodes whose key is not in the genesis (indexes validators.., homes `node<i>`), configured with the
   * validators as their peers; not started by startCluster (validator-set changes add them).
   */
  extra?: number
  /** Extra nodes (indexes) whose keys every node lists in `p2p.observers` (e.g. a non-validator joiner). */
  observerNodes?: number[]
}

/** Giving up on a restarted node's catch-up after this long (the fault suite's bound is 30 s). */
export const CATCH_UP_LIMIT_MS = 60_000

/** How long a restarted node took to reach the height the others had when it became ready. */
export interface CatchUp {
  node: number
  target: number
  ms: number
  caughtUp: boolean
  /** The harness killed it again before it caught up (a measurement cut short, not a failure). */
  interrupted?: boolean
  /** Its height, status and log tail when the harness gave up (when not caught up). */
  height?: number
  why?: string
}

export interface Cluster {
  layout: TestnetLayout
  /** The key of every node, the extra ones included (index = node index). */
  keys: KeyPair[]
  dir: string
  nodes: ClusterNode[]
  honest(): ClusterNode[]
  /** Nodes whose process is running and not paused. */
  live(): ClusterNode[]
  start(i: number): Promise<void>
  /** Starts node i and resolves with its exit code and output when it refuses to start. */
  startExpectingFailure(i: number, timeoutMs?: number): Promise<{ code: number | null; output: string }>
  kill(i: number, signal?: NodeJS.Signals): Promise<number | null>
  pause(i: number): void
  resume(i: number): void
  /** Cuts every link between nodes of different groups (nodes not listed form their own group). */
  partition(groups: number[][]): void
  /** Sets every link to `mode` (pass heals everything). */
  setAll(mode: LinkMode): void
  /** Sets the directed link i -> j to `mode` (proxied clusters only). */
  setLink(i: number, j: number, mode: LinkMode): void
  heal(): void
  close(): Promise<void>
  log(i: number, lines?: number): string
  /** Catch-up of every restarted node so far (waits for measurements still running). */
  catchUps(): Promise<CatchUp[]>
  /** Status and log tail of node i, for a wait that timed out (see `waitFor`'s `explain`). */
  describe(i: number): Promise<string>
}

/** Runs test/fault/genesisStore.ts for `home` into the new folder `out`; rejects with its output if it fails. */
function writeGenesisStore(home: string, out: string): Promise<void> {
  return new Promise((resolveWrite, rejectWrite) => {
    const child = spawn(process.execPath, [GENESIS_STORE, '--home', home, '--data', out], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.add(child)
    let output = ''
    const onData = (chunk: Buffer) => {
      if (output.length < 1 << 16) output += chunk.toString()
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.once('error', rejectWrite)
    child.once('exit', (code, signal) => {
      children.delete(child)
      if (code === 0) resolveWrite()
      else rejectWrite(new Error(`genesisStore.ts exited with ${code ?? signal}:\n${output}`))
    })
  })
}

/** A relative `diskFullFlag` names a file in the cluster's folder (known only once it exists). */
const inDir = (f: FaultNodeOptions | undefined, dir: string): FaultNodeOptions | undefined =>
  f?.diskFullFlag && !isAbsolute(f.diskFullFlag) ? { ...f, diskFullFlag: join(dir, f.diskFullFlag) } : f

export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  const n = opts.validators
  const extra = opts.extra ?? 0
  const ports = await freePorts(2 * (n + extra))
  const dir = mkdtempSync(join(tmpdir(), 'cityledger-fault-'))
  const layout = createTestnet({
    validators: n,
    out: dir,
    chainId: 'fault-test',
    ports: Array.from({ length: n }, (_, i) => ({ p2p: ports[2 * i]!, rpc: ports[2 * i + 1]! })),
    consensus: {
      viewChangeTimeoutMs: 1500,
      blockIntervalMs: 50,
      checkpointInterval: 8,
      watermarkWindow: 32,
      ...opts.consensus,
    },
  })
  if (opts.editGenesis) {
    const g = JSON.parse(readFileSync(join(layout.homes[0]!, 'genesis.json'), 'utf8'))
    opts.editGenesis(g)
    const text = JSON.stringify(g)
    for (const home of layout.homes) writeFileSync(join(home, 'genesis.json'), text)
  }
  if (opts.observers?.length)
    for (const home of layout.homes) {
      const cfg = loadConfig(home)
      cfg.p2p.observers = [...cfg.p2p.observers, ...opts.observers]
      writeConfig(home, cfg)
    }
  const links = new Map<string, LinkProxy>()
  const proxies: LinkProxy[] = []
  // A long-poll (`?wait=commit&timeoutMs=N`) may take N ms by design: give it that much more.
  const timedFetch: typeof fetch = (input, init) => {
    const waitMs = Number(/[?&]timeoutMs=(\d+)/.exec(String(input))?.[1] ?? 0)
    return fetch(input, { ...init, signal: init?.signal ?? AbortSignal.timeout(RPC_TIMEOUT_MS + waitMs) })
  }
  try {
    if (opts.proxied) {
      for (let i = 0; i < n; i++) {
        const cfg = loadConfig(layout.homes[i]!)
        for (const peer of cfg.p2p.peers) {
          const j = layout.keys.findIndex((k) => Buffer.from(k.publicKey).toString('hex') === peer.publicKey)
          const proxy = await startProxy(ports[2 * j]!)
          proxies.push(proxy)
          links.set(`${i}->${j}`, proxy)
          peer.addrs = [`/ip4/127.0.0.1/tcp/${proxy.port}`]
        }
        writeConfig(layout.homes[i]!, cfg)
      }
    }
  } catch (err) {
    await Promise.all(proxies.map((p) => p.close()))
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
  const keys = [...layout.keys]
  const homes = [...layout.homes]
  const rpcs = [...layout.rpc]
  for (let i = n; i < n + extra; i++) {
    const home = join(dir, `node${i}`)
    const key = generateKeyPair()
    mkdirSync(home, { recursive: true })
    writeKey(home, key)
    const cfg = loadConfig(layout.homes[0]!)
    cfg.moniker = `joiner-${i}`
    cfg.p2p.listen = [`/ip4/127.0.0.1/tcp/${ports[2 * i]!}`]
    cfg.p2p.peers = layout.keys.map((k, j) => ({
      publicKey: toHex(k.publicKey),
      addrs: [`/ip4/127.0.0.1/tcp/${ports[2 * j]!}`],
    }))
    cfg.rpc.port = ports[2 * i + 1]!
    writeConfig(home, cfg)
    copyFileSync(join(layout.homes[0]!, 'genesis.json'), join(home, 'genesis.json'))
    keys.push(key)
    homes.push(home)
    rpcs.push(`http://127.0.0.1:${ports[2 * i + 1]!}`)
  }
  if (opts.observerNodes?.length)
    for (const home of homes) {
      const cfg = loadConfig(home)
      cfg.p2p.observers = [...cfg.p2p.observers, ...opts.observerNodes.map((i) => toHex(keys[i]!.publicKey))]
      writeConfig(home, cfg)
    }
  const nodes: ClusterNode[] = homes.map((home, i) => ({
    index: i,
    home,
    rpc: rpcs[i]!,
    client: createClient({ url: rpcs[i]!, fetch: timedFetch }),
    process: undefined,
    exited: undefined,
    fault: inDir(opts.faults?.[i], dir),
    paused: false,
    byzantine: opts.faults?.[i]?.byzantine !== undefined,
  }))
  const running = (node: ClusterNode) =>
    !!node.process && node.process.exitCode === null && node.process.signalCode === null

  const spawnNode = (node: ClusterNode) => {
    const log = createWriteStream(join(node.home, 'node.log'), { flags: 'a' })
    const script = node.fault ? FAULT_NODE : MAIN
    const args = node.fault ? [script, '--home', node.home] : [script, 'start', '--home', node.home]
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CITYLEDGER_FAULT: node.fault ? JSON.stringify(node.fault) : '' },
    })
    node.process = child
    children.add(child)
    child.once('exit', () => children.delete(child))
    node.paused = false
    node.exited = new Promise((r) => child.once('exit', (code) => (log.end(), r(code))))
    let out = ''
    const onData = (chunk: Buffer) => {
      log.write(chunk)
      if (out.length < 1 << 16) out += chunk.toString()
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    return { child, output: () => out }
  }

  // Catch-up after each restart: from the restarted node's `ready` until it reaches the height the
  // other live nodes had at that moment (measured in the background; `catchUps()` waits for them).
  const starts = new Map<number, number>()
  const kills = new Map<number, number>()
  const catchUps: CatchUp[] = []
  const measuring = new Set<Promise<void>>()
  const measureCatchUp = async (i: number) => {
    const readyAt = Date.now()
    const killsAtReady = kills.get(i) ?? 0
    const heights = await Promise.all(
      cluster
        .live()
        .filter((x) => x.index !== i)
        .map((x) =>
          x.client.status().then(
            (st) => st.height,
            () => 0,
          ),
        ),
    )
    const target = Math.max(0, ...heights)
    const deadline = readyAt + CATCH_UP_LIMIT_MS
    for (;;) {
      const h = await nodes[i]!.client.status().then(
        (st) => st.height,
        () => -1,
      )
      if (h >= target)
        return void catchUps.push({ node: i, target, ms: Date.now() - readyAt, caughtUp: true })
      if ((kills.get(i) ?? 0) !== killsAtReady)
        return void catchUps.push({
          node: i,
          target,
          ms: Date.now() - readyAt,
          caughtUp: false,
          interrupted: true,
          height: h,
        })
      if (Date.now() > deadline || !running(nodes[i]!)) {
        const ms = Date.now() - readyAt
        const why = await cluster.describe(i)
        return void catchUps.push({ node: i, target, ms, caughtUp: false, height: h, why })
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  const start = (i: number) =>
    freshPorts(i)
      .then(() => startProcess(i))
      .then(() => {
        const n = (starts.get(i) ?? 0) + 1
        starts.set(i, n)
        if (n > 1) {
          const p = measureCatchUp(i).finally(() => measuring.delete(p))
          measuring.add(p)
        }
      })
  /**
   * An extra node's first start may come minutes after its ports were chosen, and the other tests of
   * the suite bind ports meanwhile: a port taken since is replaced (its config rewritten, its client
   * pointed at the new RPC port). No other node's config names an extra node's ports.
   */
  const freshPorts = async (i: number): Promise<void> => {
    if (i < n || starts.has(i)) return
    const node = nodes[i]!
    const cfg = loadConfig(node.home)
    const p2pPort = Number(cfg.p2p.listen[0]?.split('/')[4])
    if (await portsFree([p2pPort, cfg.rpc.port])) return
    const [p2p, rpc] = await freePorts(2)
    cfg.p2p.listen = [`/ip4/127.0.0.1/tcp/${p2p}`]
    cfg.rpc.port = rpc!
    writeConfig(node.home, cfg)
    node.rpc = `http://127.0.0.1:${rpc}`
    node.client = createClient({ url: node.rpc, fetch: timedFetch })
  }
  const startProcess = (i: number) =>
    new Promise<void>((resolveStart, rejectStart) => {
      const node = nodes[i]!
      const { child, output } = spawnNode(node)
      const check = () => {
        if (output().includes('"msg":"ready"')) {
          child.stdout!.off('data', check)
          resolveStart()
        }
      }
      child.stdout!.on('data', check)
      child.once('exit', (code) => {
        if (!output().includes('"msg":"ready"'))
          rejectStart(
            new Error(`node ${i} exited with ${code} before ready:\n${tail(join(node.home, 'node.log'))}`),
          )
      })
    })

  const setLink = (i: number, j: number, mode: LinkMode) => links.get(`${i}->${j}`)?.setMode(mode)

  const cluster: Cluster = {
    layout,
    keys,
    dir,
    nodes,
    honest: () => nodes.filter((x) => !x.byzantine),
    live: () => nodes.filter((x) => running(x) && !x.paused),
    start,
    async startExpectingFailure(i, timeoutMs = 60_000) {
      const node = nodes[i]!
      const { child, output } = spawnNode(node)
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
      const code = await node.exited
      clearTimeout(timer)
      return { code: output().includes('"msg":"ready"') ? -1 : (code ?? null), output: output() }
    },
    async kill(i, signal = 'SIGKILL') {
      const node = nodes[i]!
      if (!running(node)) return node.process?.exitCode ?? null
      kills.set(i, (kills.get(i) ?? 0) + 1)
      if (node.paused) node.process!.kill('SIGCONT')
      node.process!.kill(signal)
      node.paused = false
      return (await node.exited) ?? null
    },
    pause(i) {
      const node = nodes[i]!
      if (!running(node) || node.paused) return
      node.process!.kill('SIGSTOP')
      node.paused = true
    },
    resume(i) {
      const node = nodes[i]!
      if (!running(node) || !node.paused) return
      node.process!.kill('SIGCONT')
      node.paused = false
    },
    partition(groups) {
      const groupOf = (i: number) => groups.findIndex((g) => g.includes(i))
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++) {
          if (i === j) continue
          const gi = groupOf(i)
          const same = gi >= 0 && gi === groupOf(j)
          setLink(i, j, same ? { kind: 'pass' } : { kind: 'drop' })
        }
    },
    setLink,
    setAll(mode) {
      for (const p of links.values()) p.setMode(mode)
    },
    heal() {
      for (const p of links.values()) p.setMode({ kind: 'pass' })
    },
    async close() {
      for (const node of nodes) if (running(node) && node.paused) node.process!.kill('SIGCONT')
      for (const node of nodes) if (running(node)) node.process!.kill('SIGTERM')
      const timer = setTimeout(() => {
        for (const node of nodes) if (running(node)) node.process!.kill('SIGKILL')
      }, 10_000)
      await Promise.all(nodes.map((node) => node.exited))
      clearTimeout(timer)
      await Promise.all(proxies.map((p) => p.close()))
      if (!process.env.KEEP_FAULT) rmSync(dir, { recursive: true, force: true })
    },
    async catchUps() {
      await Promise.all([...measuring])
      return [...catchUps]
    },
    log: (i, lines = 40) => tail(join(nodes[i]!.home, 'node.log'), lines),
    describe: (i) => describeNode(`node ${i}`, nodes[i]!.rpc, join(nodes[i]!.home, 'node.log')),
  }
  const initial = nodes.slice(0, n).flatMap((_, i) => (opts.notStarted?.includes(i) ? [] : [i]))
  const startInitial = async () => {
    if (opts.shareGenesisStore && initial.length > 1) {
      const store = join(dir, 'genesis-store')
      await writeGenesisStore(homes[initial[0]!]!, store)
      for (const i of initial) cpSync(store, dataPath(homes[i]!, loadConfig(homes[i]!)), { recursive: true })
    }
    await Promise.all(initial.map(start))
  }
  try {
    await startInitial()
  } catch (err) {
    await cluster.close()
    throw err
  }
  return cluster
}

// Shared with the end-to-end tests.
export { describeNode, tail, waitFor }
