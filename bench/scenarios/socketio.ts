import { serverGroup, startServerProcesses } from '../hub-process.ts'
import { freePort } from '../../scripts/free-port.ts'
import { BENCH_REDIS_URL, redisPrefix, redisServerPids } from '../redis.ts'
import { CLUSTER_NODES } from './cluster.ts'
import { spreadDevices } from './spread.ts'
import type { Scenario } from './types.ts'

/** The cluster's peer: Socket.IO 4 + @socket.io/redis-adapter (bench/socketio-server.ts), as many nodes, devices spread the same way. */
export const socketioScenario: Scenario = {
  name: 'socketio',
  description: `Socket.IO 4 + @socket.io/redis-adapter, ${CLUSTER_NODES} nodes, relays each push to the user's room, stores nothing`,
  p99LimitMs: 100,
  async start(ctx) {
    const redis = redisPrefix('socketio')
    try {
      const ports = await Promise.all(Array.from({ length: CLUSTER_NODES }, () => freePort()))
      const procs = await startServerProcesses(
        ports.map((port, i) => ({
          name: `socket.io node ${i}`,
          args: ['--import', 'tsx', 'bench/socketio-server.ts'],
          env: { PORT: String(port), HOST: '127.0.0.1', REDIS_URL: BENCH_REDIS_URL, SOCKETIO_KEY: redis.prefix },
          cwd: ctx.root,
          port,
        })),
      )
      const urls = procs.map((p) => p.baseUrl)
      const group = serverGroup(procs)
      return {
        wsUrl: urls[0]!,
        wsUrlFor: spreadDevices(urls),
        client: 'socketio',
        // The peer trusts its token as the user id.
        tokens: Array.from({ length: ctx.users }, (_, i) => `user-${i}`),
        process: group,
        redisPids: redisServerPids,
        async stop() {
          await group.stop()
          await redis.drop()
        },
      }
    } catch (err) {
      await redis.drop()
      throw err
    }
  },
}
