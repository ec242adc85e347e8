import { pino } from 'pino'

export type { Logger } from 'pino'

/**
 * Structured JSON logs (pino) to stdout, or to stderr when stdout carries a command's output.
 * Each module takes `logger.child({ module: 'consensus' })`; a component that names itself that way
 * (p2p, rpc) is given the parent logger, so no line carries a key twice.
 */
export function createLogger(opts: { level?: string; name?: string; stream?: 'stdout' | 'stderr' } = {}) {
  return pino(
    {
      level: opts.level ?? 'info',
      base: opts.name ? { node: opts.name } : {},
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ fd: opts.stream === 'stderr' ? 2 : 1, sync: false }),
  )
}

/**
 * The line `cityledger start` prints once the node is up, shaped like the logger's lines (level 30 =
 * info, ISO time, `node` = moniker) but written whatever the log level, since supervisors wait for it.
 * It starts with `{"msg":"ready","rpc":"<url>"`: harnesses match that text, so keep the key order.
 */
export function readyLine(f: { rpc: string; p2p: string[]; node?: string; now?: Date }): string {
  const time = (f.now ?? new Date()).toISOString()
  return `${JSON.stringify({ msg: 'ready', rpc: f.rpc, p2p: f.p2p, level: 30, time, ...(f.node ? { node: f.node } : {}) })}\n`
}
