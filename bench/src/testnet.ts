import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { type TestnetLayout, createTestnet } from '@cityledger/node'

const MAIN = resolve(import.meta.dirname, '../../packages/node/src/cli/main.ts')

/** Free TCP ports on 127.0.0.1 (each bound to port 0, all held until every one is known). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<import('node:net').Server>((ok, fail) => {
          const s = createServer()
          s.once('error', fail)
          s.listen(0, '127.0.0.1', () => ok(s))
        }),
    ),
  )
  const ports = servers.map((s) => (s.address() as import('node:net').AddressInfo).port)
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  return ports
}

/** A running local network of validator processes. */
export interface BenchNetwork {
  layout: TestnetLayout
  dir: string
  processes: ChildProcess[]
  /** SIGTERM everyone, SIGKILL after 10 s, keep the folder (to measure it). Safe to call twice. */
  stop(): Promise<void>
  /** `stop`, then remove the folder. Safe to call twice. */
  close(): Promise<void>
  log(i: number): string
}

/**
 * Writes a testnet with free loopback ports and starts each validator as its own process
 * (`node packages/node/src/cli/main.ts start --home <dir>`), resolving when each printed its ready line.
 */
export async function startNetwork(opts: {
  validators: number
  consensus?: Record<string, number>
  /** Sections merged into each validator's config.json (e.g. `{ consensus: { emptyBlocks: false } }`). */
  nodeConfig?: Record<string, Record<string, unknown>>
}): Promise<BenchNetwork> {
  const n = opts.validators
  const ports = await freePorts(2 * n)
  const dir = mkdtempSync(join(tmpdir(), 'cityledger-bench-net-'))
  const processes: ChildProcess[] = []
  const exits: Promise<unknown>[] = []
  let closed = false
  let stopped = false
  const net: BenchNetwork = {
    layout: undefined as unknown as TestnetLayout,
    dir,
    processes,
    log: (i) => tail(join(dir, `node${i}`, 'node.log')),
    async stop() {
      if (stopped) return
      stopped = true
      for (const p of processes) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM')
      const timer = setTimeout(() => {
        for (const p of processes) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
      }, 10_000)
      await Promise.all(exits)
      clearTimeout(timer)
    },
    async close() {
      if (closed) return
      closed = true
      await net.stop()
      if (!process.env.KEEP_BENCH) rmSync(dir, { recursive: true, force: true })
    },
  }
  try {
    net.layout = createTestnet({
      validators: n,
      out: dir,
      chainId: 'bench-net',
      ports: Array.from({ length: n }, (_, i) => ({ p2p: ports[2 * i]!, rpc: ports[2 * i + 1]! })),
      ...(opts.consensus ? { consensus: opts.consensus } : {}),
    })
    if (opts.nodeConfig)
      for (const home of net.layout.homes) {
        const path = join(home, 'config.json')
        const cfg = JSON.parse(readFileSync(path, 'utf8')) as Record<string, Record<string, unknown>>
        for (const [k, v] of Object.entries(opts.nodeConfig)) cfg[k] = { ...cfg[k], ...v }
        writeFileSync(path, `${JSON.stringify(cfg, null, 2)}\n`)
      }
    await Promise.all(
      net.layout.homes.map(
        (home, i) =>
          new Promise<void>((ready, fail) => {
            const log = createWriteStream(join(home, 'node.log'), { flags: 'a' })
            // BENCH_NODE_ARGS: extra arguments for the validators' node (e.g. `--cpu-prof --cpu-prof-dir=DIR`).
            const extra = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)
            const child = spawn(process.execPath, [...extra, MAIN, 'start', '--home', home], {
              stdio: ['ignore', 'pipe', 'pipe'],
            })
            processes.push(child)
            exits.push(new Promise((r) => child.once('exit', r)))
            let buf = ''
            let isReady = false
            child.stdout!.on('data', (chunk: Buffer) => {
              log.write(chunk)
              if (isReady) return
              buf += chunk.toString()
              if (buf.includes('"msg":"ready"')) {
                isReady = true
                buf = ''
                ready()
              }
            })
            child.stderr!.on('data', (chunk: Buffer) => log.write(chunk))
            child.once('exit', (code) => {
              if (!isReady)
                fail(
                  new Error(
                    `validator ${i} exited with ${code} before ready:\n${tail(join(home, 'node.log'))}`,
                  ),
                )
            })
          }),
      ),
    )
  } catch (err) {
    await net.close()
    throw err
  }
  return net
}

function tail(path: string, lines = 30): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

/** CPU seconds (user + system) and resident memory of a process, from /proc (Linux only). */
export function procSample(
  pid: number,
): { cpuSeconds: number; rssMiB: number; peakRssMiB: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(f[11]) + Number(f[12]) // utime, stime (fields 14 and 15)
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0)
    return { cpuSeconds: ticks / 100, rssMiB: kb('VmRSS') / 1024, peakRssMiB: kb('VmHWM') / 1024 }
  } catch {
    return undefined
  }
}
