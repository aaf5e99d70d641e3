import { connect, createServer, type Socket } from 'node:net'
import t from 'tap'
import { createRedisBus } from '../../src/bus/redis.ts'
import type { ChangeBatch, ControlMessage } from '../../src/bus/port.ts'
import { TEST_REDIS_URL, redisAvailable } from '../helpers/services.ts'
import { waitUntil } from '../helpers/wait.ts'
import { BUSES, eachAdapter } from './adapters.ts'

/** The bus port's contract, run against every bus adapter (adapters.ts), each as two nodes. */

const batch = (user: string, from: number, n = 1): ChangeBatch => ({
  user,
  from,
  to: from + n,
  changes: Array.from({ length: n }, (_, i) => ({ seq: from + i + 1, collection: 'notes', id: `r${from + i}`, data: { i }, rev: from + i + 1, created_at: 1, updated_at: 1 })),
})

eachAdapter(BUSES, async (t, { nodes: [a, b] }) => {
  const onA: ChangeBatch[] = []
  const onB: ChangeBatch[] = []
  const otherUser: ChangeBatch[] = []
  a.subscribe('u1', (x) => onA.push(x))
  const unsubscribeB = b.subscribe('u1', (x) => onB.push(x))
  b.subscribe('u2', (x) => otherUser.push(x))
  await Promise.all([a.ready(), b.ready()])
  a.publish(batch('u1', 0))
  a.publish(batch('u1', 1, 2))
  await waitUntil(() => onB.length === 2 && onA.length === 2)
  t.same(onB.map((x) => [x.from, x.to]), [[0, 1], [1, 3]], 'the other node gets every batch, in publish order')
  t.same(onB[1]!.changes!.map((c) => c.id), ['r1', 'r2'], 'with its changes')
  t.same(onA.map((x) => x.to), [1, 3], 'the publishing node hears its own batch once')
  t.same(otherUser, [], 'other users hear nothing')

  unsubscribeB()
  await b.ready()
  a.publish(batch('u1', 3))
  // A later publish to a user b still follows: once it is there, the one before it would be too.
  a.publish(batch('u2', 0))
  await waitUntil(() => onA.length === 3 && otherUser.length === 1)
  t.equal(onB.length, 2, 'nothing after unsubscribe')

  const controlA: ControlMessage[] = []
  const controlB: ControlMessage[] = []
  a.onControl((m) => controlA.push(m))
  b.onControl((m) => controlB.push(m))
  b.publishControl({ type: 'user_disabled', user: 'u1' })
  // The next control message marks the end: a second delivery of the first would come before it.
  b.publishControl({ type: 'user_disabled', user: 'end' })
  await waitUntil(() => controlA.length >= 2 && controlB.length >= 2)
  t.same(controlA, [{ type: 'user_disabled', user: 'u1' }, { type: 'user_disabled', user: 'end' }], 'control reaches every node once, in order')
  t.same(controlB, controlA)
})

t.test('redis: a batch too large for a publish travels as a poke', async (t) => {
  if (!(await redisAvailable())) return void t.skip('Redis is not running', () => {})
  const prefix = `poke${Date.now()}`
  const a = createRedisBus({ url: TEST_REDIS_URL, nodeId: 'a', prefix, maxPayloadBytes: 200 })
  const b = createRedisBus({ url: TEST_REDIS_URL, nodeId: 'b', prefix, maxPayloadBytes: 200 })
  t.teardown(async () => (await a.close(), await b.close()))
  const got: ChangeBatch[] = []
  b.subscribe('u', (x) => got.push(x))
  await Promise.all([a.ready(), b.ready()])
  a.publish(batch('u', 0, 20))
  await waitUntil(() => got.length === 1)
  t.same(got[0], { user: 'u', from: 0, to: 20 }, 'range only, no changes')
})

t.test('redis: commits whose publish failed while the node was cut off go out as one poke when it is back', async (t) => {
  if (!(await redisAvailable())) return void t.skip('Redis is not running', () => {})
  // Node a reaches Redis through a TCP relay the test can cut; node b stays connected throughout.
  const target = new URL(TEST_REDIS_URL)
  const sockets = new Set<Socket>()
  let open = true
  let refused = 0
  const relay = createServer((client) => {
    if (!open) return void (refused++, client.destroy())
    const upstream = connect(Number(target.port || 6379), target.hostname)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => (sockets.delete(s), client.destroy(), upstream.destroy()))
    }
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => relay.close(() => resolve())))
  const prefix = `t-cut-${Date.now().toString(36)}`
  const a = createRedisBus({ url: `redis://127.0.0.1:${(relay.address() as { port: number }).port}`, nodeId: 'a', prefix })
  const b = createRedisBus({ url: TEST_REDIS_URL, nodeId: 'b', prefix })
  t.teardown(async () => {
    open = true
    await a.close()
    await b.close()
  })
  const got: ChangeBatch[] = []
  b.subscribe('u', (x) => got.push(x))
  await Promise.all([a.ready(), b.ready()])

  open = false
  for (const s of sockets) s.destroy()
  // Both of a's connections noticed and are trying again; a publish now fails at once (no offline queue) and is remembered.
  await waitUntil(() => refused >= 2)
  a.publish(batch('u', 4, 2))
  a.publish(batch('u', 6))
  open = true
  await waitUntil(() => got.length > 0, 10_000)
  t.same(got, [{ user: 'u', from: 4, to: 7 }], 'one poke for the user’s whole missed range, once a is back')
})
