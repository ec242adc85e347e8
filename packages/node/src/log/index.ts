import { pino } from 'pino'

export type { Logger } from 'pino'

/**
 * Structured JSON logs (pino) to stdout, or to stderr when stdout carries a command's output.
 * Each module takes `logger.child({ module: 'consensus' })`.
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
