import { type Logger, createLogger } from '../log/index.ts'

let installed: (() => void) | undefined

/**
 * Keeps a long-running process (`start`, so also `devnet`'s validators) alive when some code drops a
 * rejected promise. Node's default for an unhandled rejection is to crash, and every validator runs
 * the same services in Compartments of its own process: one careless handler would stop them all at
 * once. Each such rejection is logged at error level as `unhandled promise rejection`, module
 * `process`; the process carries on. (SES lockdown's own trapping also keeps the process up, but only
 * prints to the console, and only as long as its default option holds.)
 *
 * Installs once per process; returns a function that removes it.
 *
 * @example
 * installRejectionGuard(logger)
 */
export function installRejectionGuard(logger?: Pick<Logger, 'error'>): () => void {
  if (installed) return installed
  const log = logger ?? createLogger().child({ module: 'process' })
  const onRejection = (reason: unknown): void => {
    const e = reason as { message?: unknown; code?: unknown; stack?: unknown } | null
    log.error(
      {
        err: typeof e?.message === 'string' ? e.message : String(reason),
        ...(typeof e?.code === 'string' ? { code: e.code } : {}),
        ...(typeof e?.stack === 'string' ? { stack: e.stack } : {}),
      },
      'unhandled promise rejection',
    )
  }
  process.on('unhandledRejection', onRejection)
  installed = () => {
    process.off('unhandledRejection', onRejection)
    installed = undefined
  }
  return installed
}
