import type { Logger } from 'pino'
import { createMemoryBus } from '../bus/memory.ts'
import type { Bus } from '../bus/port.ts'
import { createRedisBus } from '../bus/redis.ts'
import { createClusterState, type ClusterState } from '../cluster/state.ts'
import type { Config } from '../ops/config.ts'
import type { Metrics } from '../ops/metrics.ts'
import type { Clock } from '../time/clock.ts'

const BUS_READY_DEADLINE_MS = 10_000

/** The bus: Redis with REDIS_URL, in-process otherwise; ready (subscribed) before it is returned. */
export async function startBus(config: Config, deps: { metrics: Metrics; log: Logger; clock: Clock }): Promise<{ bus: Bus; close(): Promise<void> }> {
  const { metrics, log } = deps
  const bus: Bus = config.redisUrl
    ? createRedisBus({
        url: config.redisUrl,
        nodeId: config.nodeId,
        prefix: config.redisPrefix,
        sharded: config.redisSharded,
        dropRate: config.faultDropPublish,
        onReconnect: () => {
          metrics.redisReconnects.inc()
          log.warn('redis reconnected: checking every live feed against the database')
        },
        onRemoteBatch: (ms) => metrics.deliverSeconds.observe(Math.max(0, ms) / 1000),
      })
    : createMemoryBus()
  if (config.faultDropPublish > 0) log.warn({ share: config.faultDropPublish }, 'fault injection: dropping a share of Redis publishes')
  try {
    await withDeadline(bus.ready(), { ms: BUS_READY_DEADLINE_MS, clock: deps.clock, message: 'the bus (Redis) did not become ready within 10 s' })
  } catch (err) {
    await bus.close()
    throw err
  }
  return { bus, close: () => bus.close() }
}

/** Presence, rate limits and the logout denylist: in Redis with REDIS_URL, in memory otherwise. */
export function startClusterState(config: Config, clock: Clock): ClusterState {
  return createClusterState({ redisUrl: config.redisUrl, nodeId: config.nodeId, prefix: config.redisPrefix, clock })
}

/** Rejects with `message` when `promise` takes longer than `ms`. */
function withDeadline<T>(promise: Promise<T>, deadline: { ms: number; clock: Clock; message: string }): Promise<T> {
  let timer: { cancel(): void } | undefined
  return Promise.race([
    promise.finally(() => timer?.cancel()),
    new Promise<T>((_, reject) => (timer = deadline.clock.after(deadline.ms, () => reject(new Error(deadline.message))))),
  ])
}
