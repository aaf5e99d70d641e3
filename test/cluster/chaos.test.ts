/**
 * Chaos with real processes: three hub nodes, one Postgres, one Redis; devices spread across
 * the nodes push a steady stream while a node is killed, drained, or Redis goes away. Every
 * device must end with every change once, in seq order, resumed by cursor.
 */
import t from 'tap'
import {
  type Device,
  assertComplete,
  exitWithin,
  headOf,
  httpRequest,
  startPrivateRedis,
  startProcCluster,
  streamProblems,
  waitUntil,
  type ProcCluster,
  type ProcUser,
} from '../helpers/processes.ts'

const PUSHES = 30
const PAUSE_MS = 20

/** Two users, each with one device on every node. */
async function fleet(c: ProcCluster): Promise<{ users: ProcUser[]; devices: Device[] }> {
  const users = await Promise.all([c.newUser(0), c.newUser(1)])
  const devices = await Promise.all(users.flatMap((u, ui) => c.nodes.map((_, i) => c.device(u, `u${ui + 1}-d${i + 1}`, i))))
  return { users, devices }
}

t.test('cross-node delivery: every device gets every change once, in seq order', { timeout: 60_000 }, async (t) => {
  const c = await startProcCluster(t)
  if (!c) return
  const { users, devices } = await fleet(c)
  await Promise.all(devices.map((d) => d.pushMany(PUSHES, PAUSE_MS)))
  await assertComplete(t, c, users, devices)
  t.ok(devices.every((d) => d.visited.length === 1), 'no socket was lost on the way')
})

t.test('kill -9 of a node mid-stream: its devices resume elsewhere and replay their outbox', { timeout: 60_000 }, async (t) => {
  const c = await startProcCluster(t)
  if (!c) return
  const { users, devices } = await fleet(c)
  const victim = c.nodes[1]!
  const moved = devices.filter((d) => d.node === victim)
  // Killed right after this device sent a push: that push is in flight, its ack never comes.
  const trigger = (k: number) => k === 10 && victim.kill('SIGKILL')
  await Promise.all(devices.map((d) => d.pushMany(PUSHES, PAUSE_MS, d === moved[0] ? trigger : undefined)))
  t.equal((await victim.exited).signal, 'SIGKILL', 'the node was killed')
  for (const d of moved) {
    t.not(d.node, victim, `${d.id} moved to a surviving node`)
    t.ok(d.closes.some((x) => x.node === victim.id && x.code === 1006), `${d.id} saw its socket drop`)
  }
  const replayed = moved[0]!.acked.filter((a) => a.sends > 1)
  t.ok(replayed.length >= 1, 'the push in flight at the kill was replayed with its mid')
  t.comment(`replayed: ${JSON.stringify(replayed)}`)
  await assertComplete(t, c, users, devices)

  // The node comes back on its port and serves a new device the whole stream.
  await victim.restart()
  const late = await c.device(users[0]!, 'late', victim.index)
  const head = await headOf(c, users[0]!)
  await waitUntil(() => late.cursor >= head, 10_000).catch(() => {})
  const acked = devices.filter((d) => d.user === users[0]).flatMap((d) => d.acked)
  t.same(streamProblems(late, head, acked), [], 'a device on the restarted node gets the whole stream')
})

t.test('Redis restarted mid-stream: nothing lost, delivery resumes on its own', { timeout: 60_000 }, async (t) => {
  const redis = await startPrivateRedis(t)
  // A long position check: only the bus's reconnect (and later batches) may fill the holes.
  const c = await startProcCluster(t, { redisUrl: redis.url, env: { SYNCHUB_POSITION_CHECK_MS: '60000' } })
  if (!c) return
  const { users, devices } = await fleet(c)

  let restarted: Promise<void> = Promise.resolve()
  const outage = (k: number) => {
    if (k === 8) restarted = redis.stop()
    if (k === 20) restarted = restarted.then(() => redis.start())
  }
  await Promise.all(devices.map((d, i) => d.pushMany(PUSHES, PAUSE_MS, i === 0 ? outage : undefined)))
  await restarted
  await assertComplete(t, c, users, devices)

  // Pushes only while Redis is down, none after: the reconnect alone must bring them.
  await redis.stop()
  await Promise.all(devices.map((d) => d.pushMany(3, 0)))
  await redis.start()
  await assertComplete(t, c, users, devices, 15_000)
  // The counter moves on the subscriber's ready event, which may trail the first deliveries.
  for (const [i] of c.nodes.entries()) {
    let seen = 0
    for (const until = Date.now() + 10_000; Date.now() < until; await new Promise((r) => setTimeout(r, 100))) {
      if ((seen = (await c.metric(i, 'synchub_redis_reconnects_total')) ?? 0) >= 2) break
    }
    t.ok(seen >= 2, `node ${i} saw Redis come back twice (counted ${seen})`)
  }
})

t.test('30% of publishes dropped: the gap fill completes every stream', { timeout: 60_000 }, async (t) => {
  const c = await startProcCluster(t, { env: { SYNCHUB_FAULT_DROP_PUBLISH: '0.3', SYNCHUB_POSITION_CHECK_MS: '500' } })
  if (!c) return
  const { users, devices } = await fleet(c)
  await Promise.all(devices.map((d) => d.pushMany(PUSHES, PAUSE_MS)))
  await assertComplete(t, c, users, devices)
  const fills = await Promise.all(c.nodes.map((_, i) => c.metric(i, 'synchub_gap_fills_total')))
  t.comment(`synchub_gap_fills_total per node: ${JSON.stringify(fills)}`)
  t.ok(fills.some((n) => (n ?? 0) > 0), 'gap fills counted in /metrics on at least one node')
})

t.test('SIGTERM drain mid-stream: bye, 1012, exit 0 in time, devices resume elsewhere', { timeout: 60_000 }, async (t) => {
  const deadlineMs = 8000
  const c = await startProcCluster(t, { env: { SYNCHUB_DRAIN_DEADLINE_MS: String(deadlineMs) } })
  if (!c) return
  const { users, devices } = await fleet(c)
  const victim = c.nodes[0]!
  const moved = devices.filter((d) => d.node === victim)

  // Readiness is polled throughout; a request sent after the node logged that it is stopping
  // must not be answered 200.
  const samples: Array<{ afterStop: boolean; status: number }> = []
  let polling = true
  const poller = (async () => {
    while (polling) {
      const afterStop = victim.output.some((l) => l.includes('stopping: draining'))
      const status = await httpRequest(`${victim.url}/readyz`, { timeoutMs: 1000 }).then((r) => r.status, () => 0)
      samples.push({ afterStop, status })
      await new Promise((r) => setTimeout(r, 2))
    }
  })()
  let exit: ReturnType<typeof exitWithin> | undefined
  // Signalled while a device on another node keeps pushing: the stream does not pause.
  const trigger = (k: number) => k === 10 && (victim.kill('SIGTERM'), (exit = exitWithin(victim, deadlineMs + 2000)))
  await Promise.all(devices.map((d) => d.pushMany(PUSHES, PAUSE_MS, d === devices[1] ? trigger : undefined)))
  const info = await exit
  polling = false
  await poller

  // Past the deadline the node exits 1 on its own: 0 means the drain finished before it.
  t.equal(info?.code, 0, 'the drained node exits 0, within its drain deadline')
  t.notOk(victim.output.some((l) => l.includes('drain deadline passed')), 'the deadline never fired')
  for (const d of moved) {
    const bye = d.byes.find((b) => b.node === victim.id)
    t.equal(bye?.frame.reason, 'draining', `${d.id} was told bye: draining`)
    t.type(bye?.frame.retry_ms, 'number', `${d.id} got retry_ms`)
    t.ok(d.closes.some((x) => x.node === victim.id && x.code === 1012), `${d.id} closed with 1012`)
    t.not(d.node, victim, `${d.id} resumed on another node`)
  }
  const late = samples.filter((s) => s.afterStop)
  t.notOk(late.some((s) => s.status === 200), 'no /readyz sent after the drain began answered 200')
  t.comment(`/readyz during the drain: ${late.filter((s) => s.status === 503).length} × 503, ${late.filter((s) => s.status === 0).length} refused`)
  await assertComplete(t, c, users, devices)
})

t.test('revoking a device closes its sockets on every node with 4403', { timeout: 60_000 }, async (t) => {
  const c = await startProcCluster(t)
  if (!c) return
  const user = await c.newUser(0)
  const onZero = await c.connect(0, user, 'phone')
  const onOne = await c.connect(1, user, 'phone')
  const other = await c.connect(2, user, 'pc')
  const byes = [onZero, onOne].map((s) => new Promise<any>((resolve) => s.once('bye', resolve)))

  const res = await c.rest(2, 'DELETE', '/v1/devices/phone', { user })
  t.equal(res.status, 204, 'DELETE /v1/devices/{id} answers 204')
  // The control event is the only thing that closes them with 4403 (tokens live 15 minutes).
  t.same(await Promise.all([onZero.closed(), onOne.closed()]), [4403, 4403], 'both sockets closed with 4403')
  t.same((await Promise.all(byes)).map((b) => b.reason), ['revoked', 'revoked'], 'each was told bye: revoked first')
  t.equal((await other.ping()).t, 'pong', "the user's other device stays connected")
  await t.rejects(c.connect(1, user, 'phone'), { code: 'forbidden' }, 'the revoked device cannot come back')
})
