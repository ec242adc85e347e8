/**
 * The options of SES `lockdown()` for a validator process. Stacks stay readable in node logs, and the
 * node's libraries (libp2p, fastify, pino, level, msgpackr, sodium-native) keep working with these
 * (measured: shared/notes/sandbox-feasibility.md). The runtime captures no stack frames while services
 * run (see executor.ts), so a service cannot read this node's paths from an error.
 */
export const LOCKDOWN_OPTIONS = {
  errorTaming: 'unsafe',
  overrideTaming: 'severe',
  consoleTaming: 'unsafe',
  stackFiltering: 'verbose',
} as const
