import { Redis } from 'ioredis'
import { HubError } from '../../protocol/errors.ts'
import { createMemoryDenylist, type TokenDenylist } from '../auth/denylist.ts'
import { createMemoryPresence, type Presence } from './presence.ts'
import { createRedisPresence } from './presence-redis.ts'
import { createMemoryRateLimiter, type RateLimiter } from './rate-limit.ts'
import { createRedisRateLimiter } from './rate-limit-redis.ts'
import { createRedisDenylist } from './denylist-redis.ts'

/** State every node must agree on besides the database: presence, rate limits, the logout denylist. */
export interface ClusterState {
  presence: Presence
  rateLimiter: RateLimiter
  denylist: TokenDenylist
  close(): Promise<void>
}

/** Redis-backed when a URL is given (many nodes), in memory otherwise (one node). */
export function createClusterState(opts: { redisUrl?: string; nodeId: string; prefix: string }): ClusterState {
  if (!opts.redisUrl) {
    const rateLimiter = createMemoryRateLimiter()
    const presence = createMemoryPresence(opts.nodeId)
    return { presence, rateLimiter, denylist: createMemoryDenylist(), close: async () => (await presence.close(), await rateLimiter.close()) }
  }
  // Commands fail at once while Redis is away instead of queueing: every use below has a
  // fallback, because Postgres is the truth and Redis only a hint.
  const redis = new Redis(opts.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false, enableAutoPipelining: true, commandTimeout: 1000 })
  redis.on('error', () => {}) // reconnects on its own
  const presence = createRedisPresence(redis, opts)
  const denylist = createRedisDenylist(redis, opts.prefix)
  return {
    presence: { ...presence, list: (user) => presence.list(user).catch(() => []) },
    rateLimiter: failOpen(createRedisRateLimiter(redis, opts.prefix)),
    denylist: {
      add: (jti, expiresAt) => denylist.add(jti, expiresAt),
      // A logged-out access token lives minutes at most, and logout revoked its refresh
      // tokens in Postgres; refusing every token while Redis is down would be worse.
      has: (jti) => denylist.has(jti).catch(() => false),
    },
    async close() {
      await presence.close()
      await redis.quit().catch(() => redis.disconnect())
    },
  }
}

/** Counts when Redis answers; lets the request through when it does not (never locks users out). */
function failOpen(limiter: RateLimiter): RateLimiter {
  return {
    hit: (key, limit, windowMs) =>
      limiter.hit(key, limit, windowMs).catch((err) => {
        if (err instanceof HubError) throw err
      }),
    close: () => limiter.close(),
  }
}
