import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'

/**
 * The first port of the kernel's ephemeral range (Linux: ip_local_port_range, 32768 by default). Ports
 * handed out below it: a port 0 listener, or the source port of any outbound connection (libp2p dials
 * constantly in the fault tests), takes ports from that range, so a port chosen there and bound seconds
 * later may have been taken meanwhile (the suite saw EADDRINUSE at a node's start).
 */
function ephemeralStart(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
    if (Number.isSafeInteger(low) && low > 12_000) return low
  } catch {}
  return 32_768
}
const HIGH = ephemeralStart()
const LOW = HIGH - 12_000
/** Ports this process handed out already (never twice). */
const given = new Set<number>()

/**
 * Free TCP ports on 127.0.0.1 below the ephemeral range, each checked by binding it (all held until
 * every one is known); random, so parallel test processes rarely try the same ones.
 */
export async function freePorts(count: number): Promise<number[]> {
  const held: import('node:net').Server[] = []
  const ports: number[] = []
  try {
    for (let tries = 0; ports.length < count; tries++) {
      if (tries > 50 * count + 1000) throw new Error(`no ${count} free ports in ${LOW}..${HIGH - 1}`)
      const p = LOW + Math.floor(Math.random() * (HIGH - LOW))
      if (given.has(p)) continue
      const s = await new Promise<import('node:net').Server | undefined>((resolve) => {
        const srv = createServer()
        srv.once('error', () => resolve(undefined))
        srv.listen(p, '127.0.0.1', () => resolve(srv))
      })
      if (!s) continue
      held.push(s)
      ports.push(p)
      given.add(p)
    }
  } finally {
    await Promise.all(held.map((s) => new Promise((r) => s.close(r))))
  }
  return ports
}

const free = (port: number) =>
  new Promise<boolean>((done) => {
    const s = createServer()
    s.once('error', () => done(false))
    s.listen(port, '127.0.0.1', () => s.close(() => done(true)))
  })

/** True when every port in `ports` can be bound on 127.0.0.1 now. */
export async function portsFree(ports: readonly number[]): Promise<boolean> {
  for (const p of ports) if (!Number.isSafeInteger(p) || !(await free(p))) return false
  return true
}

/** A free port p below 65,000 with p + 1 free too (a devnet's validator 0: p2p = base, RPC = base + 1). */
export async function freePortPair(): Promise<number> {
  for (;;) {
    const [p] = await freePorts(1)
    if (p! < 65_000 && (await free(p! + 1))) return p!
  }
}
