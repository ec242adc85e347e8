import { p2pError } from './errors.ts'

/** Reconnect delays: `initialMs * factor^attempt`, capped at `maxMs`. No jitter: validators are few and known. */
export interface BackoffPolicy {
  initialMs: number
  maxMs: number
  factor: number
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 250, maxMs: 30_000, factor: 2 }

/** Delay before reconnect attempt number `attempt` (0 for the first retry after a drop). */
export function backoffDelay(attempt: number, policy: BackoffPolicy): number {
  return Math.min(policy.maxMs, policy.initialMs * policy.factor ** Math.max(0, attempt))
}

export function checkBackoff(policy: BackoffPolicy): BackoffPolicy {
  if (!(policy.initialMs > 0))
    throw p2pError('P2P_BAD_OPTIONS', `reconnect.initialMs must be > 0, got ${policy.initialMs}`)
  if (!(policy.maxMs >= policy.initialMs))
    throw p2pError('P2P_BAD_OPTIONS', `reconnect.maxMs must be >= initialMs, got ${policy.maxMs}`)
  if (!(policy.factor >= 1))
    throw p2pError('P2P_BAD_OPTIONS', `reconnect.factor must be >= 1, got ${policy.factor}`)
  return policy
}
