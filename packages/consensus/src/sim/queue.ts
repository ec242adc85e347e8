/** Min-heap of events by (time, sequence): equal times keep insertion order, so runs are reproducible. */
export class EventQueue<T> {
  private heap: { time: number; seq: number; item: T }[] = []
  private seq = 0

  get size(): number {
    return this.heap.length
  }

  push(time: number, item: T): void {
    const h = this.heap
    h.push({ time, seq: this.seq++, item })
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.less(i, p)) break
      ;[h[i], h[p]] = [h[p]!, h[i]!]
      i = p
    }
  }

  pop(): { time: number; item: T } | undefined {
    const h = this.heap
    if (h.length === 0) return undefined
    const top = h[0]!
    const last = h.pop()!
    if (h.length > 0) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && this.less(l, m)) m = l
        if (r < h.length && this.less(r, m)) m = r
        if (m === i) break
        ;[h[i], h[m]] = [h[m]!, h[i]!]
        i = m
      }
    }
    return { time: top.time, item: top.item }
  }

  private less(a: number, b: number): boolean {
    const x = this.heap[a]!
    const y = this.heap[b]!
    return x.time < y.time || (x.time === y.time && x.seq < y.seq)
  }
}
