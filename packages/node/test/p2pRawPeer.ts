// A bare libp2p node holding an allowed key, for the p2p abuse tests: it opens connections and streams
// and writes raw bytes the way a hostile peer would, without any of the p2p layer's own limits.
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { KeyPair } from '@cityledger/core'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { libp2pPrivateKey } from '../src/p2p/identity.ts'

export interface RawPeer {
  node: Libp2p
  /** A new connection to `addr` (a `/p2p/<id>` multiaddr), even when one is already open. */
  dial(addr: string): Promise<Connection>
  stop(): Promise<void>
}

export async function rawPeer(key: KeyPair): Promise<RawPeer> {
  const node = await createLibp2p({
    privateKey: libp2pPrivateKey(key),
    addresses: { listen: [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { inboundConnectionThreshold: 1000 },
  })
  await node.start()
  return {
    node,
    dial: (addr) => node.dial(multiaddr(addr), { force: true }),
    stop: async () => {
      await node.stop()
    },
  }
}

/** Writes `bytes` in chunks, waiting for the stream to drain instead of buffering everything at once. */
export async function writeAll(stream: Stream, bytes: Uint8Array, chunk = 64 * 1024): Promise<void> {
  for (let at = 0; at < bytes.length; at += chunk) {
    if (!stream.send(bytes.subarray(at, Math.min(bytes.length, at + chunk)))) await stream.onDrain()
  }
}

/** The varint header of a frame announcing `length` payload bytes (see src/p2p/frame.ts). */
export function frameHeader(length: number): Uint8Array {
  const out: number[] = []
  let v = length
  while (v >= 0x80) {
    out.push((v % 128) | 0x80)
    v = Math.floor(v / 128)
  }
  out.push(v)
  return Uint8Array.from(out)
}

/** Resolves once `conn` has closed (at once if it already has). */
export function closed(conn: Connection, guardMs = 20_000): Promise<void> {
  if (conn.status === 'closed') return Promise.resolve()
  return new Promise((resolve, reject) => {
    const guard = setTimeout(
      () => reject(new Error(`connection ${conn.id} still open after ${guardMs} ms`)),
      guardMs,
    )
    conn.addEventListener(
      'close',
      () => {
        clearTimeout(guard)
        resolve()
      },
      { once: true },
    )
  })
}
