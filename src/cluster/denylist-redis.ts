import type { Redis } from 'ioredis'
import type { TokenDenylist } from '../auth/denylist.ts'

/** Logged-out access tokens, refused by every node until they would have expired anyway. */
export function createRedisDenylist(redis: Redis, prefix: string, now: () => number = Date.now): TokenDenylist {
  const key = (jti: string) => `${prefix}:deny:${jti}`
  return {
    async add(jti, expiresAt) {
      const ttl = expiresAt - now()
      if (ttl > 0) await redis.set(key(jti), '1', 'PX', ttl)
    },
    async has(jti) {
      return (await redis.exists(key(jti))) === 1
    },
  }
}
