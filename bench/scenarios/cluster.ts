import { BENCH_REDIS_URL, redisPrefix, redisServerPids } from '../redis.ts'
import { startHubNodes } from './hub-nodes.ts'
import { spreadDevices } from './spread.ts'
import type { Scenario } from './types.ts'

export const CLUSTER_NODES = 2

/** Two synchub nodes on one Postgres schema, fanning out through Redis; each user's devices on both. */
export const clusterScenario: Scenario = {
  name: 'cluster',
  description: `${CLUSTER_NODES} synchub nodes (uws), Postgres, Redis fan-out; each user's devices spread over both nodes`,
  p99LimitMs: 100,
  async start(ctx) {
    const redis = redisPrefix('cluster')
    try {
      const hub = await startHubNodes(
        ctx,
        Array.from({ length: CLUSTER_NODES }, (_, i) => ({
          SYNCHUB_TRANSPORT: 'uws',
          REDIS_URL: BENCH_REDIS_URL,
          // This run's own channels and keys on the shared Redis.
          SYNCHUB_REDIS_PREFIX: redis.prefix,
          SYNCHUB_NODE_ID: `bench-node-${i}`,
        })),
      )
      return {
        ...hub,
        wsUrlFor: spreadDevices(hub.wsUrls),
        redisPids: redisServerPids,
        async stop() {
          await hub.stop()
          await redis.drop()
        },
      }
    } catch (err) {
      await redis.drop()
      throw err
    }
  },
}
