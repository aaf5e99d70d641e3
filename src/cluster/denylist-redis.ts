import type { Redis } from 'ioredis'
import { systemClock, type Clock } from '../time/clock.ts'
import type { TokenDenylist } from './denylist.ts'

/** Logged-out access tokens, refused by every node until they would have expired anyway. */
export function createRedisDenylist(redis: Redis, opts: { prefix: string; clock?: Clock }): TokenDenylist {
  const { prefix, clock = systemClock } = opts
  const key = (jti: string) => `${prefix}:deny:${jti}`
  return {
    async add(jti, expiresAt) {
      const ttl = expiresAt - clock.now()
      if (ttl > 0) await redis.set(key(jti), '1', 'PX', ttl)
    },
    async has(jti) {
      return (await redis.exists(key(jti))) === 1
    },
  }
}
