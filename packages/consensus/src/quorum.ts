// Quorum arithmetic, shared by the replica's config and certificate checks.

/** f = floor((n - 1) / 3). */
export function maxFaulty(n: number): number {
  return Math.floor((n - 1) / 3)
}

/** floor(2n/3) + 1: equals 2f+1 for n = 3f+1, and two such sets always intersect in f+1 validators. */
export function quorumSize(n: number): number {
  return Math.floor((2 * n) / 3) + 1
}
