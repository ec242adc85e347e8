/**
 * `node abuseAttacker.ts '<spec JSON>'`: runs one attack of `bench abuse` in its own process, so the
 * attacker's CPU and event loop do not slow the load generator that measures commit latency. Prints
 * `started` once under way; when its stdin closes it stops the attack, prints the attack's counts as
 * one JSON line and exits.
 */
import type { KeyPair } from '@cityledger/core'
import { fromHex } from '@cityledger/core'
import {
  type Attack,
  oversizedPrePrepares,
  partialFrames,
  requestFlood,
  slowLoris,
  sseNonReaders,
} from './abuseAttacks.ts'

/** What the runner asks for. Keys travel as hex. */
export type AttackSpec =
  | { kind: 'sse'; rpc: string; count: number }
  | { kind: 'slowLoris'; rpc: string; count: number }
  | { kind: 'flood'; rpc: string; from: string; connections: number }
  | {
      kind: 'partialFrames'
      addr: string
      key: { publicKey: string; secretKey: string }
      count: number
      mib: number
    }
  | {
      kind: 'prePrepares'
      victim: { publicKey: string; addrs: string[] }
      key: { publicKey: string; secretKey: string }
      chainId: string
      frameLimit: number
      count: number
    }

const keyOf = (k: { publicKey: string; secretKey: string }): KeyPair => ({
  publicKey: fromHex(k.publicKey),
  secretKey: fromHex(k.secretKey),
})

function start(spec: AttackSpec): Attack {
  switch (spec.kind) {
    case 'sse':
      return sseNonReaders(spec.rpc, spec.count)
    case 'slowLoris':
      return slowLoris(spec.rpc, spec.count)
    case 'flood':
      return requestFlood(spec.rpc, spec.from, spec.connections)
    case 'partialFrames':
      return partialFrames(spec.addr, keyOf(spec.key), spec.count, spec.mib)
    case 'prePrepares':
      return oversizedPrePrepares(spec.victim, keyOf(spec.key), spec.chainId, spec.frameLimit, spec.count)
  }
}

const attack = start(JSON.parse(process.argv[2]!) as AttackSpec)
process.stdout.write('started\n')
process.stdin.resume()
process.stdin.on('end', () => {
  void attack.stop().then((seen) => {
    process.stdout.write(`${JSON.stringify(seen)}\n`)
    process.exit(0)
  })
})
