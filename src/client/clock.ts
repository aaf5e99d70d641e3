/**
 * Time as the client sees it, behind a port: tests drive a virtual clock and never wait on the
 * wall clock; the app gets the platform's timers.
 */
export interface Clock {
  now(): number
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
}

/** One timer slot: arming it again replaces the previous timer. */
export class Timer {
  private handle: unknown
  constructor(private readonly clock: Clock) {}
  set(ms: number, fn: () => void): void {
    this.clear()
    this.handle = this.clock.setTimeout(() => {
      this.handle = undefined
      fn()
    }, Math.max(0, ms))
  }
  clear(): void {
    if (this.handle !== undefined) this.clock.clearTimeout(this.handle)
    this.handle = undefined
  }
  get armed(): boolean {
    return this.handle !== undefined
  }
}
