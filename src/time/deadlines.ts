import type { Clock, Timer } from './clock.ts'

/** A deadline set on Deadlines; cancelling it is harmless once it fired or was cancelled. */
export interface Deadline {
  cancel(): void
}

class Entry implements Deadline {
  /** Position in the heap; -1 once fired or cancelled. */
  index = -1
  constructor(
    private readonly owner: Deadlines,
    readonly at: number,
    readonly order: number,
    readonly fire: () => void,
  ) {}

  cancel(): void {
    if (this.index >= 0) this.owner.remove(this)
  }
}

/**
 * Many deadlines on one timer of the clock: a min-heap by due time (set order among equals),
 * with the clock armed for the earliest only. A node with 100,000 idle sockets holds 100,000
 * small entries for their token expiries and one timer, not 100,000 timers; a waiting long-poll
 * costs an entry too. Each deadline fires exactly at its time on the clock it was given.
 */
export class Deadlines {
  private readonly heap: Entry[] = []
  private armed: { at: number; timer: Timer } | undefined
  private order = 0

  constructor(private readonly clock: Clock) {}

  /** Deadlines set and neither fired nor cancelled. */
  get size(): number {
    return this.heap.length
  }

  /** Calls `fire` once, `ms` from now, unless cancelled first. */
  after(ms: number, fire: () => void): Deadline {
    return this.at(this.clock.now() + Math.max(0, ms), fire)
  }

  /** Calls `fire` once at `at` (milliseconds on the clock), unless cancelled first; never within this call. */
  at(at: number, fire: () => void): Deadline {
    const entry = new Entry(this, at, this.order++, fire)
    entry.index = this.heap.length
    this.heap.push(entry)
    this.up(entry.index)
    if (this.heap[0] === entry) this.arm()
    return entry
  }

  /** Stops the timer and forgets every deadline (the node stops). */
  close(): void {
    for (const e of this.heap) e.index = -1
    this.heap.length = 0
    this.armed?.timer.cancel()
    this.armed = undefined
  }

  /** @internal Entry.cancel. */
  remove(entry: Entry): void {
    const i = entry.index
    const last = this.heap.pop()!
    entry.index = -1
    if (last !== entry) {
      this.heap[i] = last
      last.index = i
      this.down(i)
      this.up(last.index)
    }
    // The armed timer stays: when it fires early it finds nothing due and arms for the next.
  }

  private arm(): void {
    const first = this.heap[0]
    if (!first) return
    if (this.armed && this.armed.at <= first.at) return
    this.armed?.timer.cancel()
    const at = first.at
    this.armed = { at, timer: this.clock.after(at - this.clock.now(), () => this.fireDue()) }
  }

  private fireDue(): void {
    this.armed = undefined
    const now = this.clock.now()
    try {
      for (let first = this.heap[0]; first && first.at <= now; first = this.heap[0]) {
        this.remove(first)
        first.fire()
      }
    } finally {
      this.arm()
    }
  }

  private before(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.order < b.order)
  }

  private up(i: number): void {
    const heap = this.heap
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!this.before(heap[i]!, heap[parent]!)) break
      this.swap(i, parent)
      i = parent
    }
  }

  private down(i: number): void {
    const heap = this.heap
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let least = i
      if (l < heap.length && this.before(heap[l]!, heap[least]!)) least = l
      if (r < heap.length && this.before(heap[r]!, heap[least]!)) least = r
      if (least === i) return
      this.swap(i, least)
      i = least
    }
  }

  private swap(i: number, j: number): void {
    const heap = this.heap
    const a = heap[i]!
    const b = heap[j]!
    heap[i] = b
    heap[j] = a
    b.index = i
    a.index = j
  }
}
