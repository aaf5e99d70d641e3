import type { Redis } from 'ioredis'
import { rateLimited, type RateLimiter } from './rate-limit.ts'

/** Counts and starts the window in one step, so concurrent nodes cannot both miss the expiry. */
const HIT = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}`

/** Cluster-wide limits: every node counts into the same Redis key. */
export function createRedisRateLimiter(redis: Redis, opts: { prefix: string }): RateLimiter {
  const { prefix } = opts
  return {
    async hit(key, limit, windowMs) {
      const [count, ttl] = (await redis.eval(HIT, 1, `${prefix}:rl:${key}`, windowMs)) as [number, number]
      if (count > limit) throw rateLimited(ttl > 0 ? ttl : windowMs)
    },
    close: async () => {},
  }
}
