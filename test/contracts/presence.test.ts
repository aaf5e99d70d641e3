import t from 'tap'
import { createRedisPresence } from '../../src/cluster/presence-redis.ts'
import { connectClusterRedis } from '../../src/cluster/state.ts'
import { ManualClock } from '../helpers/manual-clock.ts'
import { TEST_REDIS_URL, redisAvailable } from '../helpers/services.ts'
import { waitUntil } from '../helpers/wait.ts'
import { PRESENCES, eachAdapter } from './adapters.ts'

/**
 * The presence port's contract, run against every adapter (adapters.ts), each as two nodes of
 * one cluster (an in-memory adapter is one node seen twice): which of a user's devices are
 * online, on which nodes, since when.
 */
eachAdapter(PRESENCES, async (t, { nodes: [a, b], nodeIds, clock }) => {
  // Nodes report their sockets as they come and go; another node's list follows soon after.
  const devicesOf = async (user: string) => (await b.list(user)).map((p) => p.device).sort().join(',')
  const settled = (user: string, devices: string) => waitUntil(async () => (await devicesOf(user)) === devices)
  const bothNodes = [...new Set(nodeIds)].sort()

  t.same(await a.list('nobody'), [], 'a user with no sockets has no devices online')

  const phoneSince = clock.now()
  a.online('u1', 'phone')
  await clock.advance(1000)
  a.online('u1', 'phone') // the device's second socket on the same node
  b.online('u1', 'phone') // and a socket on the other node
  a.online('u1', 'pc')
  a.online('u2', 'tablet')
  await settled('u1', 'pc,phone')
  await waitUntil(async () => (await b.list('u1')).find((p) => p.device === 'phone')!.nodes.length === bothNodes.length)
  const phone = (await b.list('u1')).find((p) => p.device === 'phone')!
  t.pass('every node lists the user’s devices, whichever node holds them')
  t.same([...phone.nodes].sort(), bothNodes, 'with every node that holds one of its sockets')
  t.equal(phone.since, phoneSince, 'online since its first socket')
  await settled('u2', 'tablet')
  t.pass('another user’s devices are listed apart')

  a.offline('u1', 'phone')
  a.offline('u1', 'pc')
  await settled('u1', 'phone')
  t.pass('a device stays online while a socket of it is left')
  a.offline('u1', 'phone')
  b.offline('u1', 'phone')
  await settled('u1', '')
  t.pass('the last socket gone: offline')
  a.offline('u1', 'pc') // an extra offline changes nothing
  a.online('u1', 'pc')
  await settled('u1', 'pc')
  t.pass('and a device that comes back is online again')

  b.online('u3', 'watch')
  await waitUntil(async () => (await a.list('u3')).length === 1)
  await b.close()
  if (a !== b) {
    await waitUntil(async () => (await a.list('u3')).length === 0)
    t.pass('a node that leaves takes its sockets with it')
  }
})

t.test('redis: the devices of a node that dies without a word read as offline once its entries go stale', async (t) => {
  if (!(await redisAvailable())) return void t.skip('Redis is not running', () => {})
  const prefix = `t-presence-${Date.now().toString(36)}`
  const redis = connectClusterRedis(TEST_REDIS_URL)
  t.teardown(() => redis.quit())
  await new Promise((resolve) => (redis.status === 'ready' ? resolve(undefined) : redis.once('ready', resolve)))
  // Each node on a clock of its own: the dead node's never moves again, so it never refreshes.
  const reader = new ManualClock(Date.now())
  const dead = createRedisPresence(redis, { nodeId: 'dead', prefix, clock: new ManualClock(Date.now()) })
  const alive = createRedisPresence(redis, { nodeId: 'alive', prefix, clock: reader })
  t.teardown(() => alive.close())
  dead.online('u1', 'phone')
  alive.online('u1', 'pc')
  t.equal((await alive.list('u1')).length, 2, 'both devices online at first')
  await reader.advance(46_000) // past three missed refreshes; the living node refreshed its own
  t.same((await alive.list('u1')).map((p) => p.device), ['pc'], 'only the living node’s device is online')
})
