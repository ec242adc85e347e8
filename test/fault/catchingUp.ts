// How long each node went on refusing txs (status `catchingUp`) in a row, from polled answers.

/**
 * The longest run of consecutive catching-up answers per node. A run belongs to one process (`proc`,
 * any value that changes when the node is started again): a node killed while catching up and
 * started again begins a new run, so the time it was down does not count as refusing.
 */
export class CatchingUpRuns {
  private readonly since = new Map<number, { proc: unknown; from: number }>()
  private readonly best = new Map<number, number>()

  observe(node: number, proc: unknown, catchingUp: boolean, now: number): void {
    if (!catchingUp) return void this.since.delete(node)
    let run = this.since.get(node)
    if (!run || run.proc !== proc) {
      run = { proc, from: now }
      this.since.set(node, run)
    }
    this.best.set(node, Math.max(this.best.get(node) ?? 0, now - run.from))
  }

  longest(): Map<number, number> {
    return new Map(this.best)
  }
}
