import { CommanderError } from 'commander'
import { isCityError } from '@cityledger/core'

/**
 * Exit codes of `cityledger` (table in packages/node/README.md, CLI). Scripts switch on them:
 * a usage error is fixed by changing the command, an unreachable node by waiting or another --rpc,
 * a rejected tx by changing the tx.
 */
export const EXIT = {
  OK: 0,
  /** Anything else: a bad key or config file, a refused overwrite, a server error. */
  FAILURE: 1,
  /** Unknown command or flag, a bad flag value, arguments that are not JSON. */
  USAGE: 2,
  /** The node's RPC cannot be reached (client error UNAVAILABLE). */
  UNREACHABLE: 3,
  /** The node refused the tx (4xx at submit), or it was committed as failed. */
  REJECTED: 4,
  /** `start`: the node stopped itself on a fatal error (a full disk, a store that failed a write). */
  FATAL: 5,
  /** `query --verify`: the answer's proof is missing or does not check out against the genesis. */
  UNVERIFIED: 6,
  /**
   * `start`: the chain runs (or from this height activates) a service version this node's code does not
   * have; the log names the service and version to install. Restarted with that code, the node goes on.
   */
  UPGRADE_REQUIRED: 7,
} as const

/** Refusals of the runtime that mean "this node runs the wrong release", not a broken node. */
export const UPGRADE_CODES: ReadonlySet<string> = new Set([
  'SERVICE_UPGRADE_REQUIRED',
  'SERVICE_VERSION_MISMATCH',
])

/** Marks an error as a rejected tx (EXIT.REJECTED); the message and code are kept. */
export class TxRejected extends Error {
  readonly code: string
  constructor(code: string, message: string) {
    super(message)
    this.name = 'TxRejected'
    this.code = code
  }
}

/** The exit code for an error that ended a command. */
export function exitCodeOf(err: unknown): number {
  // commander's own: help and --version are code 0; every parse error (and InvalidArgumentError
  // thrown by a flag parser or an action) is a usage error.
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE
  if (err instanceof TxRejected) return EXIT.REJECTED
  if (isCityError(err, 'BAD_PROOF') || isCityError(err, 'PROOF_MISSING')) return EXIT.UNVERIFIED
  if (isCityError(err, 'UNAVAILABLE')) return EXIT.UNREACHABLE
  return EXIT.FAILURE
}

/** True when a client error is the node refusing a tx it was sent (a 4xx answer to the submit). */
export function isRefusal(err: unknown): boolean {
  const status = isCityError(err) ? err.details.status : undefined
  return typeof status === 'number' && status >= 400 && status < 500
}
