/**
 * `cityledger bench abuse`: one validator's RSS, CPU and commit latency while it is under each attack
 * of issue #11, next to the same figures without an attack, in one run; then the time it takes to
 * shut down while the RPC attacks are all going on. Targets are reported, never asserted.
 *
 * Network: a 4-validator testnet (level store) of which validators 0, 1 and 2 run; validator 0 is the
 * victim. Validator 3's key is the attacker's for consensus (it is in the validator set but not
 * running, so f = 1 still commits), an observer key the attacker's for the partial sync frames.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import {
  type KeyPair,
  consensusMessageLimit,
  generateKeyPair,
  sha256,
  signTx,
  toHex,
  utf8,
} from '@cityledger/core'
import { type TestnetLayout, createTestnet, loadConfig, loadKey } from '@cityledger/node'
import { peerIdFromValidatorKey } from '../../packages/node/src/p2p/identity.ts'
import type { AttackSpec } from './abuseAttacker.ts'
import type { Attack } from './abuseAttacks.ts'
import { type BenchResult, fmt, machine, progress, quantile, round3, table } from './harness.ts'
import { freePorts, procSample } from './testnet.ts'

const MAIN = resolve(import.meta.dirname, '../../packages/node/src/cli/main.ts')
const ATTACKER = resolve(import.meta.dirname, 'abuseAttacker.ts')

/** Starts an attack in its own process (see abuseAttacker.ts); resolves once it is under way. */
async function spawnAttack(spec: AttackSpec): Promise<Attack> {
  const child = spawn(process.execPath, [ATTACKER, JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout!.on('data', (b: Buffer) => (out += b))
  child.stderr!.on('data', (b: Buffer) => {
    err += b
    if (!process.env.BENCH_QUIET) process.stderr.write(b)
  })
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  await new Promise<void>((ok, fail) => {
    const onData = () => {
      if (out.includes('started\n')) {
        child.stdout!.off('data', onData)
        ok()
      }
    }
    child.stdout!.on('data', onData)
    void exited.then((code) => fail(new Error(`attack ${spec.kind} exited with ${code}: ${err}`)))
  })
  return {
    async stop() {
      child.stdin!.end()
      const force = setTimeout(() => child.kill('SIGKILL'), 30_000)
      await exited
      clearTimeout(force)
      const last = out.trim().split('\n').at(-1) ?? '{}'
      try {
        return JSON.parse(last) as Record<string, number>
      } catch {
        return { attackFailed: 1 }
      }
    },
  }
}

export interface AbuseOptions {
  /** Length of each phase (baseline and each attack), s. */
  seconds: number
  /** Txs per second submitted to the victim (`?wait=commit`) to measure commit latency. */
  rate: number
  sse: number
  slowLoris: number
  floodConnections: number
  partialFrames: number
  partialFrameMiB: number
  prePrepares: number
  /** Largest block of the test chain: the consensus frame limit is this plus 4 MiB. */
  maxBlockBytes: number
}

export const ABUSE_DEFAULTS: AbuseOptions = {
  seconds: 10,
  rate: 20,
  sse: 2000,
  slowLoris: 200,
  floodConnections: 32,
  partialFrames: 4,
  partialFrameMiB: 60,
  prePrepares: 300,
  maxBlockBytes: 1024 * 1024,
}

/** What one phase measured on the victim. */
export interface PhaseFigures {
  seconds: number
  rssStartMiB: number
  rssMaxMiB: number
  rssGrowthMiB: number
  cpuPercent: number
  submitted: number
  committed: number
  latencyMs: { p50: number; p99: number; max: number }
  /** What the attack itself counted (answers, refusals, bytes). */
  attack?: Record<string, number>
}

interface Proc {
  child: ChildProcess
  exited: Promise<number | null>
}

function startValidator(home: string): Promise<Proc> {
  return new Promise((ready, fail) => {
    const log = createWriteStream(join(home, 'node.log'), { flags: 'a' })
    const child = spawn(process.execPath, [MAIN, 'start', '--home', home], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    let buf = ''
    let up = false
    child.stdout!.on('data', (b: Buffer) => {
      log.write(b)
      if (up) return
      buf += b
      if (buf.includes('"msg":"ready"')) {
        up = true
        ready({ child, exited })
      }
    })
    child.stderr!.on('data', (b: Buffer) => log.write(b))
    child.once('exit', (code) => {
      if (!up) fail(new Error(`validator in ${home} exited with ${code} before ready`))
    })
  })
}

/**
 * Submits `rate` fresh-signer txs per second to `rpc` with `?wait=commit` (from 127.0.0.1, which a
 * testnet does not rate limit) and records each one's time to commit.
 */
function commitLoad(rpc: string, chainId: string, rate: number) {
  const u = new URL(rpc)
  const agent = new Agent({ keepAlive: true, maxSockets: 64 })
  const latencies: number[] = []
  let submitted = 0
  const pending = new Set<Promise<void>>()
  const one = (key: KeyPair, n: number): Promise<void> => {
    const tx = signTx(
      {
        chainId,
        service: 'identity',
        method: 'registerSubject',
        args: { subject: sha256(utf8.encode(`abuse-${toHex(key.publicKey)}-${n}`)) },
        signer: key.publicKey,
        nonce: 1,
        expiry: 0,
      },
      key.secretKey,
    )
    const t0 = performance.now()
    return new Promise((done) => {
      const req = request(
        {
          host: u.hostname,
          port: u.port,
          agent,
          method: 'POST',
          path: '/v1/txs?wait=commit&timeoutMs=20000',
          headers: { 'content-type': 'application/octet-stream' },
        },
        (res) => {
          let body = ''
          res.on('data', (c) => (body += c))
          res.on('end', () => {
            if (res.statusCode === 200 && body.includes('"committed"')) latencies.push(performance.now() - t0)
            done()
          })
        },
      )
      req.on('error', () => done())
      req.end(tx.bytes)
    })
  }
  const timer = setInterval(() => {
    submitted++
    const p = one(generateKeyPair(), submitted)
    pending.add(p)
    void p.then(() => pending.delete(p))
  }, 1000 / rate)
  return {
    /** Stops submitting, waits for the answers, returns the latencies. */
    async stop() {
      clearInterval(timer)
      await Promise.all(pending)
      agent.destroy()
      return { submitted, latencies }
    },
  }
}

async function phase(
  label: string,
  victim: { pid: number; rpc: string; chainId: string },
  opts: AbuseOptions,
  attack?: AttackSpec,
): Promise<PhaseFigures> {
  progress(`abuse: ${label} (${opts.seconds} s)`)
  const before = procSample(victim.pid)
  const a = attack ? await spawnAttack(attack) : undefined
  const load = commitLoad(victim.rpc, victim.chainId, opts.rate)
  let rssMax = before?.rssMiB ?? 0
  const sampler = setInterval(() => {
    rssMax = Math.max(rssMax, procSample(victim.pid)?.rssMiB ?? 0)
  }, 200)
  await new Promise((r) => setTimeout(r, opts.seconds * 1000))
  const after = procSample(victim.pid)
  const attackSeen = a ? await a.stop() : undefined
  const { submitted, latencies } = await load.stop()
  clearInterval(sampler)
  rssMax = Math.max(rssMax, after?.rssMiB ?? 0)
  const rssStart = before?.rssMiB ?? 0
  return {
    seconds: opts.seconds,
    rssStartMiB: round3(rssStart),
    rssMaxMiB: round3(rssMax),
    rssGrowthMiB: round3(rssMax - rssStart),
    cpuPercent: round3((((after?.cpuSeconds ?? 0) - (before?.cpuSeconds ?? 0)) / opts.seconds) * 100),
    submitted,
    committed: latencies.length,
    latencyMs: {
      p50: round3(quantile(latencies, 0.5)),
      p99: round3(quantile(latencies, 0.99)),
      max: round3(latencies.length ? Math.max(...latencies) : Number.NaN),
    },
    ...(attackSeen ? { attack: attackSeen } : {}),
  }
}

export async function runAbuse(opts: AbuseOptions, command: string): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'cityledger-bench-abuse-'))
  const ports = await freePorts(10)
  const procs: Proc[] = []
  const phases: Record<string, PhaseFigures> = {}
  let shutdownMs = Number.NaN
  let shutdownAttack: Record<string, Record<string, number>> = {}
  try {
    const layout: TestnetLayout = createTestnet({
      validators: 4,
      out: dir,
      chainId: 'bench-abuse',
      ports: Array.from({ length: 4 }, (_, i) => ({ p2p: ports[2 * i]!, rpc: ports[2 * i + 1]! })),
      observers: 1,
      observerPorts: [{ p2p: ports[8]!, rpc: ports[9]! }],
      consensus: { maxBlockBytes: opts.maxBlockBytes },
    })
    for (const i of [0, 1, 2]) procs.push(await startValidator(layout.homes[i]!))
    const victim = { pid: procs[0]!.child.pid!, rpc: layout.rpc[0]!, chainId: layout.genesis.chainId }
    const victimP2P = {
      publicKey: toHex(layout.keys[0]!.publicKey),
      addrs: loadConfig(layout.homes[0]!).p2p.listen,
    }
    const victimAddr = `${victimP2P.addrs[0]}/p2p/${peerIdFromValidatorKey(victimP2P.publicKey)}`
    const observerKey = loadKey(layout.observerHomes[0]!)
    const frameLimit = consensusMessageLimit(opts.maxBlockBytes)
    // Warm-up: the first blocks and JIT, unmeasured.
    await phase('warm-up', victim, { ...opts, seconds: Math.min(5, opts.seconds) })
    phases.baseline = await phase('baseline', victim, opts)
    const sse: AttackSpec = { kind: 'sse', rpc: victim.rpc, count: opts.sse }
    const loris: AttackSpec = { kind: 'slowLoris', rpc: victim.rpc, count: opts.slowLoris }
    const flood: AttackSpec = {
      kind: 'flood',
      rpc: victim.rpc,
      from: '127.0.0.2',
      connections: opts.floodConnections,
    }
    const hexKey = (k: KeyPair) => ({ publicKey: toHex(k.publicKey), secretKey: toHex(k.secretKey) })
    phases.sse = await phase(`${opts.sse} SSE subscribers that never read`, victim, opts, sse)
    phases.slowLoris = await phase(`${opts.slowLoris} slow-loris clients`, victim, opts, loris)
    phases.flood = await phase('request flood from one client (127.0.0.2)', victim, opts, flood)
    phases.partialFrames = await phase(
      `${opts.partialFrames} x ${opts.partialFrameMiB} MiB partial sync frames from an allowed peer`,
      victim,
      opts,
      {
        kind: 'partialFrames',
        addr: victimAddr,
        key: hexKey(observerKey),
        count: opts.partialFrames,
        mib: opts.partialFrameMiB,
      },
    )
    phases.prePrepares = await phase(
      `${opts.prePrepares} oversized fake pre-prepares (validator 3's key)`,
      victim,
      opts,
      {
        kind: 'prePrepares',
        victim: victimP2P,
        key: hexKey(layout.keys[3]!),
        chainId: victim.chainId,
        frameLimit,
        count: opts.prePrepares,
      },
    )
    // Shutdown while the RPC attacks are all going on.
    progress('abuse: SIGTERM to the victim under SSE, slow-loris and flood')
    const attacks = {
      sse: await spawnAttack(sse),
      slowLoris: await spawnAttack(loris),
      flood: await spawnAttack(flood),
    }
    await new Promise((r) => setTimeout(r, 3000))
    const t0 = performance.now()
    procs[0]!.child.kill('SIGTERM')
    await procs[0]!.exited
    shutdownMs = performance.now() - t0
    shutdownAttack = Object.fromEntries(
      await Promise.all(Object.entries(attacks).map(async ([k, a]) => [k, await a.stop()] as const)),
    )
  } finally {
    for (const p of procs)
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM')
    const force = setTimeout(() => {
      for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL')
    }, 10_000)
    await Promise.all(procs.map((p) => p.exited))
    clearTimeout(force)
    if (!process.env.KEEP_BENCH) rmSync(dir, { recursive: true, force: true })
  }
  const base = phases.baseline!
  const ratios: Record<string, number> = {}
  const targets: NonNullable<BenchResult['targets']> = {}
  for (const [k, f] of Object.entries(phases)) {
    if (k === 'baseline') continue
    ratios[`${k}P99VsBaseline`] = round3(f.latencyMs.p99 / base.latencyMs.p99)
    ratios[`${k}RssGrowthMiB`] = f.rssGrowthMiB
    targets[`${k}RssGrowthMiB`] = { target: 'RSS growth < 100 MiB', met: f.rssGrowthMiB < 100 }
    targets[`${k}P99VsBaseline`] = {
      target: 'commit p99 < 2x baseline',
      met: f.committed > 0 && f.latencyMs.p99 < 2 * base.latencyMs.p99,
    }
  }
  ratios.shutdownSeconds = round3(shutdownMs / 1000)
  targets.shutdownSeconds = { target: 'shutdown < 5 s', met: shutdownMs < 5000 }
  return {
    id: 'abuse',
    command,
    date: new Date().toISOString(),
    machine: machine(),
    params: { ...opts, validatorsRunning: 3, victim: 0 },
    variants: { ...phases, shutdown: { ms: round3(shutdownMs), attack: shutdownAttack } } as Record<
      string,
      Record<string, unknown>
    >,
    ratios,
    targets,
    notes: [
      'victim: validator 0 of a 4-validator testnet with 3 running; load: fresh-signer txs with ?wait=commit from 127.0.0.1',
      'each attack runs in its own process; the flood comes from 127.0.0.2, SSE from 127.1.x.1 and slow loris from 127.2.x.1 (50 per address); a testnet exempts 127.0.0.1 (the local tools and this load) from the per-client limits',
    ],
  }
}

/** The readable table: one row per phase, with the baseline first. */
export function abuseTable(r: BenchResult): string {
  const rows: (string | number)[][] = [
    [
      'phase',
      'RSS start MiB',
      'RSS max MiB',
      'growth MiB',
      'CPU %',
      'committed',
      'p50 ms',
      'p99 ms',
      'p99 / base',
    ],
  ]
  const base = r.variants.baseline as unknown as PhaseFigures
  for (const [k, v] of Object.entries(r.variants)) {
    if (k === 'shutdown') continue
    const f = v as unknown as PhaseFigures
    rows.push([
      k,
      f.rssStartMiB,
      f.rssMaxMiB,
      f.rssGrowthMiB,
      f.cpuPercent,
      `${f.committed}/${f.submitted}`,
      f.latencyMs.p50,
      f.latencyMs.p99,
      fmt(f.latencyMs.p99 / base.latencyMs.p99, 2),
    ])
  }
  const lines = [table(rows), '']
  for (const [k, v] of Object.entries(r.variants)) {
    const a = (v as { attack?: unknown }).attack
    if (a) lines.push(`${k}: ${JSON.stringify(a)}`)
  }
  lines.push(`shutdown under SSE + slow-loris + flood: ${fmt((r.variants.shutdown as { ms: number }).ms)} ms`)
  lines.push('', 'targets (reported, not asserted):')
  for (const [k, t] of Object.entries(r.targets ?? {}))
    lines.push(
      `  ${k.padEnd(28)} ${fmt(r.ratios[k] ?? Number.NaN, 2).padStart(8)}  ${t.target}: ${t.met ? 'met' : 'MISSED'}`,
    )
  for (const n of r.notes ?? []) lines.push(`note: ${n}`)
  const m = r.machine
  return [
    `abuse: ${m.cores} cores, ${m.cpu}, Node ${m.node}, load average ${m.loadAverage}`,
    '',
    ...lines,
  ].join('\n')
}

/** CLI options (strings) to `AbuseOptions`. */
export function abuseOptions(v: Record<string, string | boolean | undefined>): AbuseOptions {
  const num = (name: string, fallback: number, min: number): number => {
    const x = v[name]
    if (x === undefined || typeof x === 'boolean') return fallback
    const n = Number(x)
    if (!Number.isSafeInteger(n) || n < min)
      throw new Error(`--${name}: expected an integer >= ${min}, got ${x}`)
    return n
  }
  const d = ABUSE_DEFAULTS
  return {
    seconds: num('seconds', d.seconds, 1),
    rate: num('rate', d.rate, 1),
    sse: num('sse', d.sse, 0),
    slowLoris: num('slow-loris', d.slowLoris, 0),
    floodConnections: num('flood-connections', d.floodConnections, 1),
    partialFrames: num('partial-frames', d.partialFrames, 0),
    partialFrameMiB: num('partial-frame-mib', d.partialFrameMiB, 1),
    prePrepares: num('pre-prepares', d.prePrepares, 0),
    maxBlockBytes: d.maxBlockBytes,
  }
}
