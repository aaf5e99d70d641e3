import type { Redis } from 'ioredis'
import { systemClock, type Clock } from '../time/clock.ts'
import { LocalSockets, type DevicePresence, type Presence } from './presence.ts'

/** How often a node re-announces its sockets, and how long an unrefreshed entry counts. */
const REFRESH_MS = 15_000
const STALE_MS = 3 * REFRESH_MS

/**
 * Presence in one Redis hash per user: field `node device`, value the time the node last
 * vouched for it. A node refreshes its own entries; a node killed without a word stops
 * refreshing, and its entries read as offline after STALE_MS and expire with the key.
 */
export function createRedisPresence(redis: Redis, opts: { nodeId: string; prefix: string; clock?: Clock }): Presence {
  const clock = opts.clock ?? systemClock
  const now = clock.now
  const local = new LocalSockets()
  const key = (user: string) => `${opts.prefix}:presence:{${user}}`
  const field = (device: string) => `${opts.nodeId} ${device}`
  const announce = (user: string, device: string, since: number) =>
    redis.multi().hset(key(user), field(device), `${now()} ${since}`).pexpire(key(user), STALE_MS).exec()

  const refresh = clock.every(REFRESH_MS, () => {
    const pipeline = redis.pipeline()
    for (const e of local.entries()) pipeline.hset(key(e.user), field(e.device), `${now()} ${e.since}`).pexpire(key(e.user), STALE_MS)
    void pipeline.exec().catch(() => {})
  })

  return {
    online(user, device) {
      if (local.add(user, device, now())) void announce(user, device, local.since(user, device)!).catch(() => {})
    },
    offline(user, device) {
      if (local.remove(user, device)) void redis.hdel(key(user), field(device)).catch(() => {})
    },
    async list(user) {
      const entries = await redis.hgetall(key(user))
      const byDevice = new Map<string, DevicePresence>()
      const fresh = now() - STALE_MS
      for (const [f, v] of Object.entries(entries)) {
        const space = f.indexOf(' ')
        const [seen, since] = v.split(' ').map(Number) as [number, number]
        if (space < 0 || !(seen > fresh)) continue
        const node = f.slice(0, space)
        const device = f.slice(space + 1)
        const p = byDevice.get(device)
        if (p) {
          p.nodes.push(node)
          p.since = Math.min(p.since, since)
        } else byDevice.set(device, { device, nodes: [node], since })
      }
      return [...byDevice.values()]
    },
    async close() {
      refresh.cancel()
      // Leaving cleanly: this node's entries go now rather than when they go stale.
      const pipeline = redis.pipeline()
      for (const e of local.entries()) pipeline.hdel(key(e.user), field(e.device))
      await pipeline.exec().catch(() => {})
    },
  }
}
