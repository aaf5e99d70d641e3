import type { Clock, Timer } from '../../src/time/clock.ts'

interface Scheduled {
  due: number
  /** Repeating timers are rescheduled every `every` ms after they fire. */
  every?: number
  fn: () => void
  /** Insertion order: timers due at the same time fire in the order they were set. */
  order: number
}

/**
 * The clock port's adapter for tests: time moves only when the test says so, and timers fire
 * then, in due order. It passes the same contract suite as the system clock
 * (test/contracts/clock.test.ts).
 */
export class ManualClock implements Clock {
  private t: number
  private order = 0
  private readonly timers = new Set<Scheduled>()

  constructor(start = Date.UTC(2030, 0, 1)) {
    this.t = start
  }

  readonly now = (): number => this.t

  after(ms: number, fn: () => void): Timer {
    return this.schedule({ due: this.t + Math.max(0, ms), fn })
  }

  every(ms: number, fn: () => void): Timer {
    const every = Math.max(1, ms)
    return this.schedule({ due: this.t + every, every, fn })
  }

  /** Timers set and neither fired (once) nor cancelled. */
  get pending(): number {
    return this.timers.size
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due on the way, each at its own
   * time, with the promise jobs it starts settled before the next one fires (so an async job a
   * timer starts has run as far as it can without I/O).
   */
  async advance(ms: number): Promise<void> {
    const until = this.t + ms
    for (;;) {
      const next = [...this.timers].filter((s) => s.due <= until).sort((a, b) => a.due - b.due || a.order - b.order)[0]
      if (!next) break
      this.t = Math.max(this.t, next.due)
      if (next.every !== undefined) next.due += next.every
      else this.timers.delete(next)
      next.fn()
      await settle()
    }
    this.t = until
    await settle()
  }

  private schedule(s: Omit<Scheduled, 'order'>): Timer {
    const scheduled: Scheduled = { ...s, order: this.order++ }
    this.timers.add(scheduled)
    return { cancel: () => void this.timers.delete(scheduled) }
  }
}

/** Lets queued promise jobs (and the ones they queue) run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve))
