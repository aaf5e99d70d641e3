/**
 * A feed's fill (gap, poke or position check) reads the database while live batches keep
 * arriving. Under load that overlap is a matter of luck; here it is arranged: the fill's read
 * is held by a table lock, a batch arrives and is delivered meanwhile, then the read returns.
 * The batches are published by the test itself in the hub's Redis wire format, since no
 * outside action can time a live batch into the middle of a read.
 */
import t from 'tap'
import pg from 'pg'
import { Redis } from 'ioredis'
import { encodeMsgpack } from '../../protocol/codec.ts'
import { startPrivateRedis, startProcCluster, waitUntil } from '../helpers/processes.ts'

t.test('a live batch delivered while a fill reads the database is not delivered again', { timeout: 60_000 }, async (t) => {
  const redis = await startPrivateRedis(t)
  // Node 1 writes but its publishes are all dropped; node 0 hears only what the test publishes,
  // and its position check never runs during the test.
  const c = await startProcCluster(t, {
    nodes: 2,
    redisUrl: redis.url,
    env: { SYNCHUB_POSITION_CHECK_MS: '600000' },
    nodeEnv: (i): Record<string, string> => (i === 1 ? { SYNCHUB_FAULT_DROP_PUBLISH: '1' } : {}),
  })
  if (!c) return
  const user = await c.newUser(1)
  const reader = await c.device(user, 'reader', 0, { reconnect: false })
  for (const [mid, id] of [[1, 'm1'], [2, 'm2']] as const) {
    const res = await c.rest(1, 'POST', '/v1/sync/push', {
      user,
      deviceId: 'writer',
      body: { ops: [{ op: 'put', mid, collection: 'messages', id, data: { conversation_id: 'c1', role: 'user', content: id } }] },
    })
    t.equal(res.status, 200, `push ${id}`)
  }
  const pulled = await c.rest(1, 'GET', '/v1/sync/pull?since=0', { user })
  t.same(pulled.json.items.map((i: any) => i.seq), [1, 2], 'two changes committed, unheard on node 0')

  const bus = new Redis(redis.url)
  const db = new pg.Client({ connectionString: c.databaseUrl })
  await db.connect()
  t.teardown(async () => {
    bus.disconnect()
    await db.end()
  })
  const publish = (batch: object) => bus.publish(`${c.redisPrefix}:u:${user.id}`, Buffer.from(encodeMsgpack({ n: 'the-test', u: user.id, a: Date.now(), ...batch })))

  await db.query('BEGIN')
  await db.query('LOCK TABLE records IN ACCESS EXCLUSIVE MODE')
  // A poke (a range without its changes) makes node 0 read the database: the read waits on the lock.
  await publish({ f: 0, t: 2 })
  let fills = 0
  for (const deadline = Date.now() + 5000; fills === 0 && Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) {
    fills = (await c.metric(0, 'synchub_gap_fills_total')) ?? 0
  }
  t.equal(fills, 1, 'node 0 started a fill')
  // Meanwhile the batch for seq 1 arrives in order and goes out at once.
  await publish({ f: 0, t: 1, c: [pulled.json.items[0]] })
  await waitUntil(() => reader.cursor === 1, 5000).catch(() => {})
  t.same(reader.seqs, [1], 'seq 1 delivered live while the fill waits')
  await db.query('COMMIT')

  await waitUntil(() => reader.cursor === 2, 5000).catch(() => {})
  t.same(reader.seqs, [1, 2], 'the fill adds seq 2 only: seq 1 is not sent again')
  t.same(reader.chainBreaks, [], 'frames chain')
})
