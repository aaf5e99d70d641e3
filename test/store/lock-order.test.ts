import t from 'tap'
import { encodeMsgpack } from '../../protocol/codec.ts'
import { createPostgresClient } from '../../src/store/postgres.ts'
import { migrate } from '../../src/store/migrate.ts'
import { SyncStore } from '../../src/store/sync-store.ts'
import { AckRecorder } from '../../src/sync/ack-recorder.ts'
import { WriteConflict, type BatchWrite } from '../../src/store/push-store.ts'
import { recordKey } from '../../src/store/rows.ts'
import { freshPostgresSchema, postgresAvailable } from '../helpers/services.ts'

/**
 * Group commits, device registration (addDevices) and ack flushes update the same device rows
 * from separate connections, each given the rows in whatever order its batch holds them. The
 * first two must lock in one order and the flush must not wait at all, or statements deadlock
 * (Postgres breaks the cycle after deadlock_timeout, 1 s by default: a stalled batch, or lost
 * acks). Postgres only: PGlite runs one statement at a time.
 */
t.test('concurrent group-commit writes, device registrations and ack flushes never deadlock', async (t) => {
  if (!(await postgresAvailable())) return void t.skip('Postgres is not running', () => {})
  const schema = await freshPostgresSchema()
  const url = new URL(schema.url)
  // Deadlocks are found after deadlock_timeout: keep it short so the loop stays quick.
  url.searchParams.set('options', `${url.searchParams.get('options')} -c deadlock_timeout=20ms`)
  const db = createPostgresClient({ url: url.toString(), max: 4 })
  t.teardown(async () => (await db.close(), await schema.drop()))
  await migrate(db)
  const users = Array.from({ length: 6 }, (_, i) => `user-${i}`)
  const devices = users.map((u) => `device-of-${u}`)
  await db.query(`INSERT INTO users (id, username, password_hash, created_at) SELECT u, u, 'x', 1 FROM unnest($1::text[]) AS u`, [users])
  await db.query(`INSERT INTO user_state (user_id, epoch) SELECT u, 'e1' FROM unnest($1::text[]) AS u`, [users])
  await db.query(`INSERT INTO devices (user_id, id, created_at, last_seen) SELECT u, d, 1, 1 FROM unnest($1::text[], $2::text[]) AS k(u, d)`, [users, devices])
  const store = new SyncStore(db)

  const seq = users.map(() => 0)
  // A different order every round, in the batch and in the acks; seeded, so a failure replays.
  let seed = 42
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  const shuffled = () => {
    const order = users.map((_, i) => i)
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1))
      ;[order[i], order[j]] = [order[j]!, order[i]!]
    }
    return order
  }
  let writeFailures = 0
  let ackFailures = 0
  let registerFailures = 0
  let roundsWithSkips = 0
  let skipsNotWritten = 0
  const rounds = 300
  for (let round = 0; round < rounds; round++) {
    const batch: BatchWrite = { records: [], results: [], devices: [], users: [], absent: new Set(), now: 1 }
    for (const u of shuffled()) {
      const id = `r${round}`
      batch.records.push({
        user_id: users[u]!, collection: 'notes', id, seq: seq[u]! + 1, data: encodeMsgpack({ round }), parent_id: null, created_at: 1,
        created_seq: seq[u]! + 1, updated_at: 1, deleted_at: null, purge_at: null, replaced_by: null, conflict_of: null, device_id: devices[u]!, trashed_with: null,
      })
      batch.results.push({ userId: users[u]!, deviceId: devices[u]!, mid: seq[u]! + 1, result: encodeMsgpack({ ok: true }) })
      batch.devices.push({ userId: users[u]!, deviceId: devices[u]!, lastMid: seq[u]! + 1, readLastMid: seq[u]! })
      batch.users.push({ userId: users[u]!, seq: seq[u]! + 1, read: { userId: users[u]!, seq: seq[u]!, minValidSeq: 0, epoch: 'e1', scope: null } })
      ;(batch.absent as Set<string>).add(recordKey(users[u]!, 'notes', id))
    }
    const acks = shuffled().map((u) => ({ userId: users[u]!, deviceId: devices[u]!, cursor: round }))
    const known = shuffled().map((u) => ({ userId: users[u]!, deviceId: devices[u]! }))
    const [write, ack, register] = await Promise.allSettled([store.push.write(batch), store.saveAcks(acks, 2), store.push.addDevices(known, 2)])
    if (register.status === 'rejected') registerFailures++
    if (write.status === 'fulfilled') for (let u = 0; u < users.length; u++) seq[u]!++
    else if (write.reason instanceof WriteConflict) writeFailures++
    else throw write.reason
    if (ack.status === 'rejected') ackFailures++
    // Rows the write held were skipped: written now that it is done, as the next flush would.
    // Counted, not asserted per round: how many rounds skip depends on timing.
    else if (ack.value.length > 0) {
      roundsWithSkips++
      if ((await store.saveAcks(ack.value, 2)).length > 0) skipsNotWritten++
    }
  }
  t.equal(skipsNotWritten, 0, `every skipped ack is written once its row is free (${roundsWithSkips} of ${rounds} rounds skipped some)`)
  t.equal(writeFailures, 0, `no write was refused in ${rounds} rounds (a deadlock refuses it)`)
  t.equal(ackFailures, 0, 'no ack flush failed')
  t.equal(registerFailures, 0, 'no device registration failed')
  const { rows } = await db.query<{ n: number; acked: number }>('SELECT count(*)::int8 AS n, min(acked_cursor) AS acked FROM records r JOIN devices d ON d.user_id = r.user_id AND d.id = r.device_id')
  t.same(rows[0], { n: rounds * users.length, acked: rounds - 1 }, 'every record written, every ack recorded')
})

t.test('an ack flush skips a device row a commit holds and writes it at the next flush', async (t) => {
  if (!(await postgresAvailable())) return void t.skip('Postgres is not running', () => {})
  const schema = await freshPostgresSchema()
  const db = createPostgresClient({ url: schema.url, max: 3 })
  t.teardown(async () => (await db.close(), await schema.drop()))
  await migrate(db)
  await db.query(`INSERT INTO users (id, username, password_hash, created_at) VALUES ('u1', 'u1', 'x', 1)`)
  await db.query(`INSERT INTO devices (user_id, id, created_at, last_seen) VALUES ('u1', 'busy', 1, 1), ('u1', 'free', 1, 1)`)
  const store = new SyncStore(db)
  const acks = new AckRecorder(store, { intervalMs: 3_600_000 })
  const cursors = async () =>
    Object.fromEntries((await db.query<{ id: string; acked_cursor: number }>('SELECT id, acked_cursor FROM devices ORDER BY id')).rows.map((r) => [r.id, r.acked_cursor]))

  // A transaction (standing in for a group commit) holds the row of device `busy`.
  let release!: () => void
  let held!: () => void
  const holding = new Promise<void>((r) => (held = r))
  const commit = db.transaction(async (tx) => {
    await tx.query(`SELECT 1 FROM devices WHERE user_id = 'u1' AND id = 'busy' FOR UPDATE`)
    held()
    await new Promise<void>((r) => (release = r))
  })
  await holding
  acks.record('u1', 'busy', 5)
  acks.record('u1', 'free', 7)
  await acks.flush()
  t.same(await cursors(), { busy: 0, free: 7 }, 'the flush does not wait for the busy row; the free one is written')
  release()
  await commit
  await acks.flush()
  t.same(await cursors(), { busy: 5, free: 7 }, 'the next flush writes the ack it skipped')
  await acks.stop()
})
