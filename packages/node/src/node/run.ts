import { join } from 'node:path'
import { dataPath, loadConfig, loadGenesis, loadKey } from '../config/index.ts'
import { createLogger } from '../log/index.ts'
import { createNode } from './createNode.ts'

/**
 * `cityledger start --home DIR`: runs one validator until SIGINT or SIGTERM, then shuts down cleanly.
 * Any error at start (bad config, corrupt store or journal, wrong genesis) is printed and exits 1.
 */
export async function runNode(home: string): Promise<void> {
  const config = loadConfig(home)
  const genesis = loadGenesis(join(home, 'genesis.json'))
  const key = loadKey(home)
  const logger = createLogger({ level: config.log.level, name: config.moniker })
  let node: Awaited<ReturnType<typeof createNode>>
  try {
    node = await createNode({ config, genesis, key, dataDir: dataPath(home, config), logger })
    await node.start()
  } catch (err) {
    logger.fatal(
      { err: String((err as Error)?.message ?? err), code: (err as { code?: string }).code },
      'cannot start',
    )
    logger.flush()
    process.stderr.write(`cannot start: ${(err as Error)?.message ?? err}\n`)
    process.exit(1)
  }
  let exiting = false
  const shutdown = async (why: string, code: number) => {
    if (exiting) return
    exiting = true
    logger.info({ why }, 'shutting down')
    await node.stop()
    logger.flush()
    process.exit(code)
  }
  process.on('SIGINT', () => void shutdown('SIGINT', 0))
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0))
  process.on('cityledger:fatal' as never, (() => void shutdown('fatal error', 2)) as never)
  // Started by `devnet` (or a test harness): never outlive the parent, even if it was killed hard.
  if (process.env.CITYLEDGER_EXIT_WITH_PARENT === '1') {
    const parent = process.ppid
    setInterval(() => {
      if (process.ppid !== parent) void shutdown('parent process exited', 0)
    }, 500)
  }
  // Machine-readable line for supervisors and tests: the node is up and where.
  process.stdout.write(`${JSON.stringify({ msg: 'ready', rpc: node.rpcUrl(), p2p: node.p2pAddrs() })}\n`)
}
