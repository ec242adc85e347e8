// The fault switch `corruptStateSync` of faultNode.ts: the node serves state sync with one byte of the
// last page of every pages answer flipped, as a peer with a damaged disk or a liar would.
import { decodeStrict, encode } from '@cityledger/core'
import type { P2P } from '@cityledger/node'

const STATE_SYNC = '/cityledger/statesync/1'

export function corruptStateSyncPages(p2p: P2P): void {
  const handle = p2p.handle.bind(p2p)
  p2p.handle = (protocol, handler, limits) =>
    handle(
      protocol,
      protocol !== STATE_SYNC
        ? handler
        : async (m) => {
            const res = await handler(m)
            const req = decodeStrict(m.data, { maxBytes: m.data.length, maxDepth: 2 }) as unknown[]
            if (req[0] !== 'pages' || !(res instanceof Uint8Array)) return res
            const pages = (decodeStrict(res, { maxBytes: res.length, maxDepth: 1 }) as Uint8Array[]).map(
              (p) => Uint8Array.from(p),
            )
            const last = pages[pages.length - 1]
            if (last && last.length > 0) last[last.length - 1]! ^= 0x01
            return encode(pages)
          },
      limits,
    )
}
