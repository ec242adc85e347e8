// A TCP proxy for one directed link between two nodes on this machine: node A dials the proxy instead
// of node B, and the proxy forwards bytes both ways. The fault harness cuts it (partition: open
// connections are destroyed, new ones are accepted and then dropped, like a black hole) or delays it.
import { type Server, type Socket, createConnection, createServer } from 'node:net'

export type LinkMode = { kind: 'pass' } | { kind: 'drop' } | { kind: 'delay'; ms: number }

/** One proxied link; `port` is where the dialling node connects. */
export interface LinkProxy {
  readonly port: number
  mode(): LinkMode
  setMode(mode: LinkMode): void
  close(): Promise<void>
}

export async function startProxy(targetPort: number, port = 0): Promise<LinkProxy> {
  let mode: LinkMode = { kind: 'pass' }
  const pairs = new Set<[Socket, Socket]>()
  const server: Server = createServer((client) => {
    client.on('error', () => {})
    if (mode.kind === 'drop') {
      // A black hole: the connection opens but nothing ever comes back.
      client.on('data', () => {})
      const t = setTimeout(() => client.destroy(), 2000)
      client.once('close', () => clearTimeout(t))
      return
    }
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort })
    upstream.on('error', () => {})
    const pair: [Socket, Socket] = [client, upstream]
    pairs.add(pair)
    const end = () => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.once('close', end)
    upstream.once('close', end)
    const pipe = (from: Socket, to: Socket) =>
      from.on('data', (chunk: Buffer) => {
        if (mode.kind === 'drop') return end()
        if (mode.kind === 'delay') {
          // Every chunk waits the same time and timers of equal delay fire in order: order is kept.
          setTimeout(() => {
            if (!to.destroyed) to.write(chunk)
          }, mode.ms).unref()
        } else if (!to.destroyed) to.write(chunk)
      })
    pipe(client, upstream)
    pipe(upstream, client)
  })
  server.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  const actual = (server.address() as import('node:net').AddressInfo).port
  return {
    port: actual,
    mode: () => mode,
    setMode(m) {
      mode = m
      if (m.kind === 'drop') for (const [a, b] of [...pairs]) a.destroy(), b.destroy()
    },
    async close() {
      for (const [a, b] of [...pairs]) a.destroy(), b.destroy()
      await new Promise((r) => server.close(r))
    },
  }
}
