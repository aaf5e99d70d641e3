import type { Test } from 'tap'
import type { Clock } from '../../src/time/clock.ts'
import { SyncClient } from '../../src/client/socket-client.ts'
import { startTestHub, type TestHub } from './hub.ts'
import { TEST_REDIS_URL, freshPostgresSchema, postgresAvailable, redisAvailable } from './services.ts'

export interface TestCluster {
  nodes: TestHub[]
  /** Opens a socket for `token` on node `i`. */
  connect(i: number, token: string, deviceId: string): Promise<SyncClient>
}

/**
 * Several hub nodes in this process sharing one fresh Postgres schema and the real Redis: the
 * cross-node paths (fan-out, control) are the same as between pods. Skips (never under CI)
 * when Postgres or Redis is down.
 */
export async function startCluster(
  t: Test,
  size: number,
  env: Record<string, string> = {},
  opts: { nodeEnv?: (i: number) => Record<string, string>; clock?: (i: number) => Clock | undefined } = {},
): Promise<TestCluster | undefined> {
  if (!(await postgresAvailable()) || !(await redisAvailable())) {
    t.skip('Postgres or Redis is not running', () => {})
    return undefined
  }
  const schema = await freshPostgresSchema()
  // Its own key space in the shared Redis: rate limits and presence of other suites stay apart.
  const prefix = `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`
  const nodes: TestHub[] = []
  const clients: SyncClient[] = []
  t.teardown(async () => {
    for (const c of clients) c.kill()
    await Promise.all(nodes.map((n) => n.stop()))
    await schema.drop()
  })
  for (let i = 0; i < size; i++) {
    const transport = i % 2 === 0 ? 'uws' : 'ws'
    nodes.push(
      await startTestHub(
        { name: `node${i}`, store: 'postgres', transport },
        { DATABASE_URL: schema.url, REDIS_URL: TEST_REDIS_URL, SYNCHUB_NODE_ID: `node${i}`, SYNCHUB_REDIS_PREFIX: prefix, ...env, ...opts.nodeEnv?.(i) },
        { clock: opts.clock?.(i) },
      ),
    )
  }
  return {
    nodes,
    async connect(i, token, deviceId) {
      const client = await SyncClient.connect(nodes[i]!.wsUrl, { token, device: { id: deviceId } })
      clients.push(client)
      return client
    },
  }
}
