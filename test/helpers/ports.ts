import { readFileSync } from 'node:fs'
import { type Server, createServer } from 'node:net'

/**
 * The first port of the kernel's ephemeral range (Linux: ip_local_port_range, 32768 by default). A port
 * 0 listener, or the source port of any outbound connection (libp2p dials constantly in the fault
 * tests), takes ports from that range, so a port chosen there and bound seconds later may have been
 * taken meanwhile (the suite saw EADDRINUSE at a node's start). Test ports come from below it.
 */
function ephemeralStart(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
    if (Number.isSafeInteger(low) && low > 12_000) return low
  } catch {}
  return 32_768
}
const HIGH = ephemeralStart()
const BLOCK = 64
const BLOCKS = Math.floor(12_000 / BLOCK)
const LOW = HIGH - BLOCKS * BLOCK

/**
 * Ports are handed out from blocks of 64, each owned by one test process for its whole life: it holds a
 * listener on the block's first port (the kernel keeps that exclusive and frees it when the process
 * dies, however it dies), and gives out the other 63 itself. Test processes run in parallel (the
 * suite runs three clusters at once) and the nodes of a cluster bind their ports seconds after they
 * are chosen, or again after a restart: random choices from one shared range collided there (a
 * local run of the fault tests saw a node fail to start with EADDRINUSE). Within its own block no
 * other test process chooses.
 */
const owned: { base: number; lock: Server }[] = []
let next = 0

const bind = (port: number) =>
  new Promise<Server | undefined>((resolve) => {
    const s = createServer()
    s.once('error', () => resolve(undefined))
    s.listen(port, '127.0.0.1', () => resolve(s))
  })

const close = (s: Server) => new Promise((done) => s.close(done))

async function claimBlock(): Promise<void> {
  const start = Math.floor(Math.random() * BLOCKS)
  for (let k = 0; k < BLOCKS; k++) {
    const base = LOW + ((start + k) % BLOCKS) * BLOCK
    const lock = await bind(base)
    if (!lock) continue
    lock.unref()
    owned.push({ base, lock })
    next = 1
    return
  }
  throw new Error(`no free block of ${BLOCK} test ports in ${LOW}..${HIGH - 1}`)
}

/**
 * `count` free TCP ports on 127.0.0.1 below the ephemeral range, from this process's own blocks (see
 * above), each checked by binding it (a node left over from an earlier run may hold one); never the
 * same port twice in one process.
 */
export async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = []
  while (ports.length < count) {
    if (owned.length === 0 || next >= BLOCK) await claimBlock()
    const p = owned.at(-1)!.base + next++
    const s = await bind(p)
    if (!s) continue
    await close(s)
    ports.push(p)
  }
  return ports
}

const free = async (port: number) => {
  const s = await bind(port)
  if (s) await close(s)
  return s !== undefined
}

/** True when every port in `ports` can be bound on 127.0.0.1 now. */
export async function portsFree(ports: readonly number[]): Promise<boolean> {
  for (const p of ports) if (!Number.isSafeInteger(p) || !(await free(p))) return false
  return true
}

/** A free port p with p + 1 free too (a devnet's validator 0: p2p = base, RPC = base + 1). */
export async function freePortPair(): Promise<number> {
  for (;;) {
    const [p, q] = await freePorts(2)
    if (q === p! + 1) return p!
  }
}
