import { Redis } from 'ioredis'
import { HubError } from '../../protocol/errors.ts'
import { createMemoryDenylist, type TokenDenylist } from './denylist.ts'
import { createMemoryPresence, type Presence } from './presence.ts'
import { createRedisPresence } from './presence-redis.ts'
import { createMemoryRateLimiter, type RateLimiter } from './rate-limit.ts'
import { createRedisRateLimiter } from './rate-limit-redis.ts'
import { createRedisDenylist } from './denylist-redis.ts'
import { systemClock, type Clock } from '../time/clock.ts'

/** State every node must agree on besides the database: presence, rate limits, the logout denylist. */
export interface ClusterState {
  presence: Presence
  rateLimiter: RateLimiter
  denylist: TokenDenylist
  close(): Promise<void>
}

/** Redis-backed when a URL is given (many nodes), in memory otherwise (one node). */
export function createClusterState(opts: { redisUrl?: string; nodeId: string; prefix: string; clock?: Clock }): ClusterState {
  const clock = opts.clock ?? systemClock
  if (!opts.redisUrl) {
    const rateLimiter = createMemoryRateLimiter(clock)
    const presence = createMemoryPresence({ nodeId: opts.nodeId, clock })
    return { presence, rateLimiter, denylist: createMemoryDenylist(clock), close: async () => (await presence.close(), await rateLimiter.close()) }
  }
  const redis = connectClusterRedis(opts.redisUrl)
  const presence = createRedisPresence(redis, { nodeId: opts.nodeId, prefix: opts.prefix, clock })
  const denylist = createRedisDenylist(redis, { prefix: opts.prefix, clock })
  return {
    presence: { ...presence, list: (user) => presence.list(user).catch(() => []) },
    rateLimiter: failOpen(createRedisRateLimiter(redis, { prefix: opts.prefix })),
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

/**
 * The connection the cluster state shares. Commands fail at once while Redis is away instead of
 * queueing: every use has a fallback, because Postgres is the truth and Redis only a hint.
 */
export function connectClusterRedis(url: string): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, enableAutoPipelining: true, commandTimeout: 1000 })
  redis.on('error', () => {}) // reconnects on its own
  return redis
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
