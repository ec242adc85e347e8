import { isatty } from 'node:tty'
import { type Logger, pino } from 'pino'
import pretty from 'pino-pretty'

export type { Logger } from 'pino'

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent'
export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'silent']
export type LogFormat = 'json' | 'pretty'
/** The `module` values a node's lines carry, each of which may have its own level (`log.modules`). */
export const LOG_MODULES = ['node', 'consensus', 'sync', 'gossip', 'p2p', 'rpc', 'runtime', 'store'] as const
export type LogModule = (typeof LOG_MODULES)[number]

export interface LoggerOptions {
  level?: string
  name?: string
  stream?: 'stdout' | 'stderr'
  /** `json` (default): one JSON object a line, for log stores. `pretty`: for humans (pino-pretty). */
  format?: LogFormat
  /** Where the lines go instead of stdout/stderr (tests). */
  destination?: NodeJS.WritableStream
}

/**
 * Structured JSON logs (pino) to stdout, or to stderr when stdout carries a command's output.
 * Each module takes `moduleLogger(logger, 'consensus', levels)`; a component that names itself that way
 * (p2p, rpc) is given `levelledLogger(...)`, so no line carries the `module` key twice.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const fd = opts.stream === 'stderr' ? 2 : 1
  const destination =
    opts.format === 'pretty'
      ? pretty({
          destination: opts.destination ?? fd,
          colorize: opts.destination ? false : isatty(fd),
          translateTime: 'SYS:HH:MM:ss.l',
          ignore: 'pid,hostname',
          sync: true,
        })
      : (opts.destination ?? pino.destination({ fd, sync: false }))
  return pino(
    {
      // The root logs at the most verbose level any module asks for; each child filters to its own.
      level: opts.level ?? 'info',
      base: opts.name ? { node: opts.name } : {},
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  )
}

/** The logger of one module: its lines carry `module`, at the level `levels` gives it (else the parent's). */
export function moduleLogger(
  logger: Logger,
  module: LogModule,
  levels: Partial<Record<string, LogLevel>> = {},
): Logger {
  const level = levels[module]
  return level ? logger.child({ module }, { level }) : logger.child({ module })
}

/** For a component that adds `{ module }` itself (p2p, rpc): the parent at that module's level. */
export function levelledLogger(
  logger: Logger,
  module: LogModule,
  levels: Partial<Record<string, LogLevel>> = {},
): Logger {
  const level = levels[module]
  return level ? logger.child({}, { level }) : logger
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
