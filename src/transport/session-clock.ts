/**
 * Time as a socket session sees it: the auth deadline, the token's expiry and the bad-frame
 * window. Injected, so tests move time by hand instead of waiting for it.
 */
export interface SessionClock {
  /** Milliseconds since the epoch. */
  now(): number
  /** Calls `fn` once, when `ms` have passed (never from inside this call); returns the timer. */
  after(ms: number, fn: () => void): unknown
  /** Stops a timer from firing; harmless on one that fired or was cancelled. */
  cancel(timer: unknown): void
}

/** setTimeout holds at most ~24.8 days; a longer wait fires then (tokens live minutes). */
const MAX_TIMER_MS = 2 ** 31 - 1

/** The process's own clock. */
export const systemClock: SessionClock = {
  now: () => Date.now(),
  after: (ms, fn) => setTimeout(fn, Math.min(Math.max(0, ms), MAX_TIMER_MS)),
  cancel: (timer) => clearTimeout(timer as NodeJS.Timeout),
}
