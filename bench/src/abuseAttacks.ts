// The attacks of `bench abuse`, each started against one validator and stopped by the returned
// function, which resolves with what the attack saw (counts of answers, bytes, refusals).
import { Agent, request } from 'node:http'
import { type Socket, connect } from 'node:net'
import { type KeyPair, encode } from '@cityledger/core'
import { PROTOCOL, createP2P } from '@cityledger/node'
// A bare libp2p endpoint that writes raw frames (the p2p layer's own sender frames every message
// whole); shared with the node package's p2p abuse tests.
import { frameHeader, rawPeer, writeAll } from '../../packages/node/test/p2pRawPeer.ts'
import { progress } from './harness.ts'

/** A running attack: `stop()` ends it and resolves with its counters. */
export interface Attack {
  stop(): Promise<Record<string, number>>
}

const hostPort = (url: string) => {
  const u = new URL(url)
  return { host: u.hostname, port: Number(u.port) }
}

/** Source address of client `i` when `perAddress` clients share one: 127.<net>.<i / perAddress + 1>.1. */
const sourceOf = (net: number, i: number, perAddress: number) =>
  `127.${net}.${Math.floor(i / perAddress) + 1}.1`

/**
 * `count` connections to `GET /v1/events` that never read what they are sent, from source addresses
 * 127.1.x.1, 50 per address (under the node's per-client connection cap, so its global caps are what
 * is tested).
 */
export function sseNonReaders(rpc: string, count: number): Attack {
  const sockets: Socket[] = []
  const seen = { opened: 0, accepted: 0, refused503: 0, closedByNode: 0 }
  let stopping = false
  for (let i = 0; i < count; i++) {
    const s = connect({ ...hostPort(rpc), localAddress: sourceOf(1, i, 50) })
    sockets.push(s)
    s.on('error', () => {})
    s.on('connect', () => {
      seen.opened++
      s.write('GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n')
    })
    // Read only the status line, then stop reading for good (the node's buffers fill up).
    s.once('data', (b: Buffer) => {
      const head = b.toString('latin1', 0, 16)
      if (head.startsWith('HTTP/1.1 200')) seen.accepted++
      else if (head.startsWith('HTTP/1.1 503')) seen.refused503++
      s.pause()
    })
    s.on('close', () => {
      if (!stopping) seen.closedByNode++
    })
  }
  return {
    async stop() {
      stopping = true
      for (const s of sockets) s.destroy()
      return seen
    },
  }
}

/**
 * `count` slow-loris clients (from 127.2.x.1, 50 per address): each sends a request line and then one
 * header byte a second, never finishing; a client the node cuts off reconnects at once.
 */
export function slowLoris(rpc: string, count: number): Attack {
  const seen = { connections: 0, cutOffByNode: 0, timeoutAnswers: 0 }
  let stopping = false
  const live = new Set<Socket>()
  const open = (i: number): void => {
    if (stopping) return
    const s = connect({ ...hostPort(rpc), localAddress: sourceOf(2, i, 50) })
    live.add(s)
    let timer: NodeJS.Timeout | undefined
    s.on('error', () => {})
    s.on('connect', () => {
      seen.connections++
      s.write('GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Slow: ')
      timer = setInterval(() => s.write('a'), 1000)
    })
    s.on('data', (b: Buffer) => {
      if (b.toString('latin1', 0, 12).startsWith('HTTP/1.1 408')) seen.timeoutAnswers++
    })
    s.on('close', () => {
      clearInterval(timer)
      live.delete(s)
      if (stopping) return
      seen.cutOffByNode++
      open(i)
    })
  }
  for (let i = 0; i < count; i++) open(i)
  return {
    async stop() {
      stopping = true
      for (const s of live) s.destroy()
      return seen
    },
  }
}

/**
 * One client (source address `from`, not loopback's usual 127.0.0.1) sending `GET /v1/status` as fast
 * as `connections` keep-alive connections allow.
 */
export function requestFlood(rpc: string, from: string, connections: number): Attack {
  const agent = new Agent({ keepAlive: true, maxSockets: connections, localAddress: from })
  const seen: Record<string, number> = { requests: 0, ok: 0, rateLimited: 0, other: 0, errors: 0 }
  let stopping = false
  const { host, port } = hostPort(rpc)
  const loop = async (): Promise<void> => {
    while (!stopping) {
      await new Promise<void>((done) => {
        const req = request({ host, port, agent, path: '/v1/status' }, (res) => {
          res.resume()
          res.on('end', () => {
            seen.requests!++
            if (res.statusCode === 200) seen.ok!++
            else if (res.statusCode === 429) seen.rateLimited!++
            else seen.other!++
            done()
          })
        })
        req.on('error', () => {
          seen.errors!++
          done()
        })
        req.end()
      })
    }
  }
  const loops = Array.from({ length: connections }, () => loop())
  return {
    async stop() {
      stopping = true
      await Promise.all(loops)
      agent.destroy()
      return seen
    },
  }
}

/**
 * An allowed peer (an observer key) opening `count` sync streams, each announcing a `mib` MiB frame
 * and then writing its body up to one byte short (a partial frame the node would have to hold).
 */
export function partialFrames(victimAddr: string, key: KeyPair, count: number, mib: number): Attack {
  const seen = { streams: 0, bytesWritten: 0, streamErrors: 0 }
  let peer: Awaited<ReturnType<typeof rawPeer>> | undefined
  let firstError: string | undefined
  const run = (async () => {
    peer = await rawPeer(key)
    const conn = await peer.dial(victimAddr)
    const body = new Uint8Array(4 * 1024 * 1024)
    await Promise.all(
      Array.from({ length: count }, async () => {
        try {
          const s = await conn.newStream(PROTOCOL.sync)
          seen.streams++
          s.send(frameHeader(mib * 1024 * 1024))
          for (let left = mib * 1024 * 1024 - 1; left > 0; left -= body.length) {
            const n = Math.min(left, body.length)
            await writeAll(s, body.subarray(0, n))
            seen.bytesWritten += n
          }
        } catch (err) {
          seen.streamErrors++
          firstError ??= String((err as Error)?.message ?? err)
        }
      }),
    )
  })().catch((err) => {
    seen.streamErrors++
    firstError ??= String((err as Error)?.message ?? err)
  })
  return {
    async stop() {
      await peer?.stop().catch(() => {})
      await run
      if (firstError) progress(`partial frames: first stream error: ${firstError}`)
      return seen
    },
  }
}

/**
 * A validator key (of a validator that is not running) sending `count` fake pre-prepares, each one
 * byte larger than the consensus frame limit, over the node's own p2p layer with its limits lifted.
 */
export function oversizedPrePrepares(
  victim: { publicKey: string; addrs: string[] },
  key: KeyPair,
  chainId: string,
  frameLimit: number,
  count: number,
): Attack {
  const seen = { sent: 0, refusedToSend: 0 }
  const p2p = createP2P({
    keyPair: key,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: [victim],
    allowed: [victim.publicKey],
    defaultLimits: { maxMessageBytes: 2 ** 31, ratePerSecond: 1e9, burst: 1e9 },
  })
  // [version, PRE-PREPARE, header-like fields, block bytes]: shaped like a proposal, larger than allowed.
  const header = encode([1, chainId, 1, 0, 3, new Uint8Array(32), key.publicKey])
  const pad = new Uint8Array(frameLimit)
  const frame = encode([1, 1, header, pad, []])
  const run = (async () => {
    await p2p.start()
    for (let wait = 0; wait < 100 && p2p.peers().length === 0; wait++)
      await new Promise((r) => setTimeout(r, 50))
    for (let i = 0; i < count; i++) {
      try {
        await p2p.send(victim.publicKey, PROTOCOL.consensus, frame)
        seen.sent++
      } catch {
        seen.refusedToSend++
      }
    }
  })()
  return {
    async stop() {
      await run.catch(() => {})
      await p2p.stop().catch(() => {})
      return seen
    },
  }
}
