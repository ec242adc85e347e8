// Test-only validator process: `node test/fault/faultNode.ts --home DIR` runs a node like
// `cityledger start` does (packages/node/src/node/run.ts), with faults from the env variable
// CITYLEDGER_FAULT (JSON, see FaultNodeOptions): a skewed wall clock, a disk that fills up on demand,
// or a Byzantine behaviour. It lives under test/ and is never part of a normal build or the CLI.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { KvStore } from '@cityledger/core'
import { allServices } from '@cityledger/apps'
import { EXIT, UPGRADE_CODES, createNode, dataPath, loadConfig, loadGenesis, loadKey } from '@cityledger/node'
import { type ByzantineKind, byzantineHooks } from './byzantine.ts'
import { corruptStateSyncPages } from './stateSyncFault.ts'

/** What CITYLEDGER_FAULT may hold. */
export interface FaultNodeOptions {
  /** Added to the wall clock used for block times, ms (may be negative). */
  clockSkewMs?: number
  /** While this file exists every store write fails with ENOSPC, like a full disk. */
  diskFullFlag?: string
  byzantine?: ByzantineKind
  /** Seed of the Byzantine behaviour's choices. */
  seed?: number
  /**
   * "New code": these services report these versions (the city services as they are, not sandboxed),
   * as a node does after its operator installed a release with those versions.
   */
  serviceVersions?: Record<string, string>
  /** Flips a byte of one page in every state-sync pages answer it serves (a lying state-sync peer). */
  corruptStateSync?: boolean
}

/** A KvStore whose writes fail with a "no space left on device" error while `flag` exists. */
export function diskFullKv(kv: KvStore, flag: string): KvStore {
  return {
    get: (k) => kv.get(k),
    getMany: (ks) => kv.getMany(ks),
    iterate: (r) => kv.iterate(r),
    close: () => kv.close(),
    async write(ops, options) {
      if (existsSync(flag)) {
        const err = new Error('ENOSPC: no space left on device, write') as NodeJS.ErrnoException
        err.code = 'ENOSPC'
        throw err
      }
      return kv.write(ops, options)
    },
  }
}

async function main(): Promise<void> {
  const i = process.argv.indexOf('--home')
  const home = process.argv[i + 1]
  if (i < 0 || !home) throw new Error('usage: faultNode.ts --home DIR')
  const fault: FaultNodeOptions = JSON.parse(process.env.CITYLEDGER_FAULT ?? '{}')
  const config = loadConfig(home)
  const genesis = loadGenesis(join(home, 'genesis.json'))
  const key = loadKey(home)
  const skew = fault.clockSkewMs ?? 0
  const byz = fault.byzantine
    ? byzantineHooks(fault.byzantine, key, fault.seed ?? 1, genesis.chainId)
    : undefined
  let node: Awaited<ReturnType<typeof createNode>>
  try {
    node = await createNode({
      config,
      genesis,
      key,
      dataDir: dataPath(home, config),
      wallClock: () => Date.now() + skew,
      ...(fault.serviceVersions
        ? {
            services: allServices.map((svc) =>
              fault.serviceVersions![svc.name] ? { ...svc, version: fault.serviceVersions![svc.name]! } : svc,
            ),
          }
        : {}),
      testHooks: {
        ...byz,
        ...(fault.corruptStateSync ? { onP2P: corruptStateSyncPages } : {}),
        ...(fault.diskFullFlag ? { wrapKv: (kv: KvStore) => diskFullKv(kv, fault.diskFullFlag!) } : {}),
      },
    })
    await node.start()
  } catch (err) {
    process.stderr.write(
      `cannot start: ${(err as { code?: string }).code ?? ''} ${(err as Error)?.message ?? err}\n`,
    )
    process.exit(1)
  }
  let exiting = false
  const shutdown = async (code: number) => {
    if (exiting) return
    exiting = true
    await node.stop()
    // Let pino's async destination flush the last lines.
    setTimeout(() => process.exit(code), 50)
  }
  process.on('SIGINT', () => void shutdown(0))
  process.on('SIGTERM', () => void shutdown(0))
  process.on(
    'cityledger:fatal' as never,
    ((err: Error) => {
      process.stderr.write(`fatal: ${err?.message ?? err}\n`)
      void shutdown(
        UPGRADE_CODES.has((err as { code?: string })?.code ?? '') ? EXIT.UPGRADE_REQUIRED : EXIT.FATAL,
      )
    }) as never,
  )
  process.stdout.write(`${JSON.stringify({ msg: 'ready', rpc: node.rpcUrl(), p2p: node.p2pAddrs() })}\n`)
}

await main()
