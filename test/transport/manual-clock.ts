import type { SessionClock } from '../../src/transport/session-clock.ts'

/**
 * A SessionClock that moves only when the test says: `advance` fires every timer that falls
 * due, in order of due time. It passes the SessionClock contract (session-clock.test.ts) like
 * the system clock.
 */
export class ManualClock implements SessionClock {
  private timers: Array<{ due: number; order: number; fn: () => void }> = []
  private made = 0

  constructor(private time = Date.now()) {}

  now(): number {
    return this.time
  }

  after(ms: number, fn: () => void): unknown {
    const timer = { due: this.time + Math.max(0, ms), order: this.made++, fn }
    this.timers.push(timer)
    return timer
  }

  cancel(timer: unknown): void {
    this.timers = this.timers.filter((t) => t !== timer)
  }

  /** Moves time on by `ms`, firing what falls due (each at its own time) on the way. */
  advance(ms: number): void {
    const end = this.time + ms
    for (;;) {
      const next = this.timers.filter((t) => t.due <= end).sort((a, b) => a.due - b.due || a.order - b.order)[0]
      if (!next) break
      this.timers = this.timers.filter((t) => t !== next)
      this.time = next.due
      next.fn()
    }
    this.time = end
  }

  /** Timers set and not yet fired or cancelled. */
  get pending(): number {
    return this.timers.length
  }
}
