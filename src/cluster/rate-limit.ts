import { HubError } from '../../protocol/errors.ts'
import { systemClock, type Clock } from '../time/clock.ts'

/** A fixed-window counter: at most `limit` hits per key per window. */
export interface RateLimiter {
  /** Counts one hit; throws `rate_limited` (with the seconds to wait) past the limit. */
  hit(key: string, limit: number, windowMs: number): Promise<void>
  close(): Promise<void>
}

export function rateLimited(retryAfterMs: number): HubError {
  const retryAfterSec = Math.max(1, Math.ceil(retryAfterMs / 1000))
  return new HubError('rate_limited', `too many attempts; retry in ${retryAfterSec} s`, { retryAfterSec })
}

/** Single node: counters in memory, swept as their windows end. */
export function createMemoryRateLimiter(clock: Clock = systemClock): RateLimiter {
  const windows = new Map<string, { count: number; resetAt: number }>()
  const sweep = clock.every(60_000, () => {
    const t = clock.now()
    for (const [k, w] of windows) if (w.resetAt <= t) windows.delete(k)
  })
  return {
    async hit(key, limit, windowMs) {
      const t = clock.now()
      let w = windows.get(key)
      if (!w || w.resetAt <= t) windows.set(key, (w = { count: 0, resetAt: t + windowMs }))
      if (++w.count > limit) throw rateLimited(w.resetAt - t)
    },
    close: async () => sweep.cancel(),
  }
}
