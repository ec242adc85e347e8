import { isAbsolute, join, resolve } from 'node:path'
import { CityError } from '@cityledger/core'
import { dataPath, loadConfig, loadGenesis, loadKey, loadNodeKey } from '../config/index.ts'
import { SIGNER_ENV } from '../signer/index.ts'
import { type LogFormat, type LogLevel, createLogger, readyLine } from '../log/index.ts'
import { type NodeOptions, createNode } from './createNode.ts'
import { EXIT, UPGRADE_CODES } from '../cli/exitCodes.ts'

/** Options of `runNode` (the CLI passes its flags; harnesses may pass test hooks). */
export interface RunOptions {
  /** `--unsafe-memory-store`: accept `store.backend: "memory"` (commits are lost on exit). */
  allowUnsafeMemory?: boolean
  /** Handed to `createNode` (fault and abuse harnesses only; the CLI never sets them). */
  testHooks?: NodeOptions['testHooks']
  /** Handed to `createNode`: services to run as given instead of the default (harnesses only). */
  services?: NodeOptions['services']
  /** A shutdown that has not finished after this many ms exits anyway. Default 5000. */
  exitDeadlineMs?: number
  /** `--log-format` / `--log-level`: override config.json's `log.format` / `log.level`. */
  logFormat?: LogFormat
  logLevel?: LogLevel
  /** `--passphrase-file`'s contents, for an encrypted key.json (else the env variable's file is read). */
  passphrase?: string
  /** `--state-sync`: as `sync.stateSync: true` in config.json. */
  stateSync?: boolean
}

/**
 * `cityledger start --home DIR`: runs one validator until SIGINT or SIGTERM, or a fatal error (e.g. a
 * full disk), then shuts down. Shutdown closes every RPC connection after a short grace, and exits
 * after `exitDeadlineMs` whatever still hangs, so clients cannot keep the process alive.
 * Any error at start (bad config, unsafe key file, corrupt store or journal, wrong genesis) is
 * printed and exits 1.
 */
export async function runNode(home: string, opts: RunOptions = {}): Promise<void> {
  const loaded = loadConfig(home)
  const config = {
    ...loaded,
    log: {
      ...loaded.log,
      format: opts.logFormat ?? loaded.log.format,
      level: opts.logLevel ?? loaded.log.level,
    },
    sync: { ...loaded.sync, stateSync: opts.stateSync === true || loaded.sync.stateSync },
  }
  if (config.store.backend === 'memory' && !config.store.allowUnsafeMemory && !opts.allowUnsafeMemory)
    throw new CityError(
      'UNSAFE_CONFIG',
      `${join(home, 'config.json')}: store.backend "memory" keeps the chain in memory only: blocks this node acknowledged are lost when it exits. Use "level", or for a test pass --unsafe-memory-store (or set store.allowUnsafeMemory)`,
    )
  const genesis = loadGenesis(join(home, 'genesis.json'))
  const keyOpts = opts.passphrase === undefined ? {} : { passphrase: opts.passphrase }
  // With a signer module key.json may name the public key alone (the secret is in the HSM).
  const key =
    config.signer.module || process.env[SIGNER_ENV.module]
      ? loadNodeKey(home, keyOpts)
      : loadKey(home, keyOpts)
  const logger = createLogger({ level: config.log.level, name: config.moniker, format: config.log.format })
  let node: Awaited<ReturnType<typeof createNode>>
  try {
    node = await createNode({
      config,
      genesis,
      key,
      dataDir: dataPath(home, config),
      logger,
      ...(opts.testHooks ? { testHooks: opts.testHooks } : {}),
      ...(opts.services ? { services: opts.services } : {}),
      // config.json's signer; without it createNode reads `start --signer-module`'s env variables.
      ...(config.signer.module
        ? {
            signer: {
              module: isAbsolute(config.signer.module)
                ? config.signer.module
                : resolve(home, config.signer.module),
              options: config.signer.options,
              stateFile: join(home, 'signer-state.json'),
            },
          }
        : {}),
    })
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
    const deadline = setTimeout(() => {
      logger.error({ why, ms: opts.exitDeadlineMs ?? 5000 }, 'shutdown did not finish in time; exiting')
      logger.flush()
      process.exit(code)
    }, opts.exitDeadlineMs ?? 5000)
    deadline.unref()
    await node.stop()
    logger.flush()
    process.exit(code)
  }
  process.on('SIGINT', () => void shutdown('SIGINT', 0))
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0))
  process.on(
    'cityledger:fatal' as never,
    ((err: unknown) =>
      void shutdown(
        'fatal error',
        UPGRADE_CODES.has((err as { code?: string })?.code ?? '') ? EXIT.UPGRADE_REQUIRED : EXIT.FATAL,
      )) as never,
  )
  // Started by `devnet` (or a test harness): never outlive the parent, even if it was killed hard.
  if (process.env.CITYLEDGER_EXIT_WITH_PARENT === '1') {
    const parent = process.ppid
    setInterval(() => {
      if (process.ppid !== parent) void shutdown('parent process exited', 0)
    }, 500)
  }
  // Machine-readable line for supervisors and tests: the node is up and where.
  process.stdout.write(readyLine({ rpc: node.rpcUrl(), p2p: node.p2pAddrs(), node: config.moniker }))
}
