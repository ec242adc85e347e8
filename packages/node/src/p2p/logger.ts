/**
 * The logging surface the p2p layer needs: a pino logger fits, and so does any object with these methods.
 * Calls are pino-style: fields first, then the message.
 */
export interface Logger {
  child(bindings: Record<string, unknown>): Logger
  info(fields: Record<string, unknown>, msg?: string): void
  warn(fields: Record<string, unknown>, msg?: string): void
  debug(fields: Record<string, unknown>, msg?: string): void
}

const noop = (): void => {}

/** Discards everything. The default when no logger is given. */
export const noopLogger: Logger = { child: () => noopLogger, info: noop, warn: noop, debug: noop }
