/**
 * Outages around the stream: Redis unreachable while a device connects, a node draining while
 * a load balancer holds an idle HTTP connection to it, and a node draining under push load.
 */
import t from 'tap'
import { connect } from 'node:net'
import { assertComplete, exitWithin, startPrivateRedis, startProcCluster, streamProblems, waitUntil, type Device } from '../helpers/processes.ts'

t.test('Redis down: a device reconnecting is never told its token is bad, and syncs once Redis is back', { timeout: 60_000 }, async (t) => {
  const redis = await startPrivateRedis(t)
  const c = await startProcCluster(t, { nodes: 2, redisUrl: redis.url })
  if (!c) return
  const user = await c.newUser(0)
  const stays = await c.device(user, 'stays', 0)
  await redis.stop()
  await stays.pushMany(3, 0) // Postgres is up: pushes still commit
  // Postgres is the truth and Redis a hint: a valid token is valid whatever Redis does.
  const during = await c.connect(1, user, 'phone').then(
    (s) => (s.kill(), 'auth_ok'),
    (err) => (err as { code?: string }).code ?? (err as Error).message,
  )
  t.ok(['auth_ok', 'unavailable'].includes(during), `auth while Redis is down: ${during} (auth_ok or unavailable, never unauthorized)`)
  await redis.start()
  // The phone's app retries as it would; once Redis is back it gets in and catches up.
  let phone: Device | undefined
  for (const deadline = Date.now() + 15_000; !phone && Date.now() < deadline; ) {
    phone = await c.device(user, 'phone', 1, { reconnect: false }).catch(() => undefined)
    if (!phone) await new Promise((r) => setTimeout(r, 200))
  }
  t.ok(phone, 'the phone connects once Redis is back')
  if (phone) {
    await waitUntil(() => phone!.cursor >= 3, 5000).catch(() => {})
    t.same(streamProblems(phone, 3, stays.acked), [], 'and receives what was pushed during the outage')
  }
})

t.test('a draining node exits in time with an idle keep-alive HTTP connection open (uws and ws)', { timeout: 60_000 }, async (t) => {
  const deadlineMs = 3000
  const c = await startProcCluster(t, { nodes: 2, env: { SYNCHUB_DRAIN_DEADLINE_MS: String(deadlineMs) } })
  if (!c) return
  await Promise.all(
    c.nodes.map(async (node) => {
      // What a load balancer's health checker holds: one answered request, the connection kept.
      const lb = connect(node.port, '127.0.0.1')
      t.teardown(() => void lb.destroy())
      await new Promise((r) => lb.once('connect', r))
      lb.write('GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n')
      await new Promise((r) => lb.once('data', r))
      node.kill('SIGTERM')
      const info = await exitWithin(node, deadlineMs + 2000)
      const transport = node.index % 2 === 0 ? 'uws' : 'ws'
      // Past the deadline the node exits 1 on its own: 0 means the drain finished before it.
      t.equal(info?.code, 0, `${transport}: exit code 0, before the ${deadlineMs} ms deadline`)
      t.notOk(node.output.some((l) => l.includes('drain deadline passed')), `${transport}: the deadline never fired`)
    }),
  )
})

t.test('a node draining under a steady push load tells its sockets bye while the load goes on', { timeout: 90_000 }, async (t) => {
  const c = await startProcCluster(t, { nodes: 2, env: { SYNCHUB_DRAIN_DEADLINE_MS: '15000' } })
  if (!c) return
  const victim = c.nodes[0]!
  const users = await Promise.all([1, 2, 3, 4].map(() => c.newUser(1)))
  const devices = await Promise.all(users.flatMap((u, ui) => [1, 2, 3, 4, 5, 6].map((i) => c.device(u, `u${ui + 1}-d${i}`, 0))))
  // Every device pushes back to back, so some push is always in flight somewhere on the node.
  const PUSHES = 60
  const trigger = (k: number) => k === 20 && victim.kill('SIGTERM')
  await Promise.all(devices.map((d, i) => d.pushMany(PUSHES, 0, i === 0 ? trigger : undefined)))
  const info = await exitWithin(victim, 17_000)
  // A drain that waited for the load to end would say bye only after the devices' last pushes.
  const signaller = devices[0]!
  const bye = signaller.byes.find((b) => b.node === victim.id)
  t.ok(bye && bye.acked < PUSHES, `the device that was pushing when SIGTERM came was told bye with ${bye?.acked} of its ${PUSHES} pushes acked`)
  t.equal(info?.code, 0, 'exit 0, within the drain deadline')
  await assertComplete(t, c, users, devices)
})
