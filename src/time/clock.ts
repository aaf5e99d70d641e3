/**
 * The clock port: what time it is, and timers. Code that waits or stamps takes one, so a test
 * moves time by hand (test/helpers/manual-clock.ts) instead of waiting for it; the contract
 * suite (test/contracts/clock.test.ts) holds both adapters to the same rules.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number
  /** Runs `fn` once, `ms` from now. Like setTimeout, it keeps the process alive until it fires or is cancelled. */
  after(ms: number, fn: () => void): Timer
  /** Runs `fn` every `ms` until cancelled. Background work: it never keeps the process alive. */
  every(ms: number, fn: () => void): Timer
}

export interface Timer {
  /** Stops the timer; a no-op once it fired (after) or was cancelled. */
  cancel(): void
}

/** setTimeout holds at most ~24.8 days; longer waits are cut to that (nothing here waits so long). */
const MAX_DELAY_MS = 2 ** 31 - 1

/** The process's clock: Date.now and Node's timers. */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  after(ms: number, fn: () => void): Timer {
    const timer = setTimeout(fn, Math.min(Math.max(0, ms), MAX_DELAY_MS))
    return { cancel: () => clearTimeout(timer) }
  },
  every(ms: number, fn: () => void): Timer {
    const timer = setInterval(fn, Math.min(Math.max(1, ms), MAX_DELAY_MS))
    timer.unref()
    return { cancel: () => clearInterval(timer) }
  },
})

/** Resolves `ms` from now on `clock`. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => void clock.after(ms, resolve))
}
