import { createServer } from 'node:net'

/** Free TCP ports on 127.0.0.1, each checked by binding port 0 (all held until every one is known). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<import('node:net').Server>((resolve, reject) => {
          const s = createServer()
          s.once('error', reject)
          s.listen(0, '127.0.0.1', () => resolve(s))
        }),
    ),
  )
  const ports = servers.map((s) => (s.address() as import('node:net').AddressInfo).port)
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
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
