import t from 'tap'
import { createPostgresClient } from '../../src/store/postgres.ts'
import { listMigrations, migrate } from '../../src/store/migrate.ts'
import { SyncStore } from '../../src/store/sync-store.ts'
import { WriteConflict } from '../../src/store/push-store.ts'
import { recordKey, type RecordRow } from '../../src/store/rows.ts'
import { HubError } from '../../protocol/errors.ts'
import { STORES, eachAdapter } from './adapters.ts'

/** The store port's contract, run against every store adapter (adapters.ts). */

const row = (over: Partial<RecordRow>): RecordRow => ({
  user_id: 'u1',
  collection: 'notes',
  id: 'r',
  seq: 1,
  data: new Uint8Array([0x80]),
  parent_id: null,
  created_at: 1,
  created_seq: 1,
  updated_at: 1,
  deleted_at: null,
  purge_at: null,
  replaced_by: null,
  conflict_of: null,
  device_id: 'd1',
  trashed_with: null,
  ...over,
})

eachAdapter(STORES, async (t, { db, again }) => {

  t.test('migrations apply once, even when several nodes start together', async (t) => {
    const clients = await Promise.all([again(), again(), again()])
    const applied = await Promise.all(clients.map((c) => migrate(c)))
    t.same(applied.flat(), listMigrations().map((m) => m.name), 'each migration applied exactly once across nodes')
    t.same(await migrate(db), [], 'nothing left to apply')
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int8 AS n FROM schema_migrations')
    t.equal(rows[0]!.n, listMigrations().length)
  })

  t.test('types: int8 as number, bytea as bytes; a throwing transaction leaves nothing', async (t) => {
    await db.query("INSERT INTO users (id, username, password_hash, created_at) VALUES ('u1', 'one', 'x', 5)")
    await db.query("INSERT INTO user_state (user_id, epoch) VALUES ('u1', 'e1')")
    await t.rejects(
      db.transaction(async (tx) => {
        await tx.query("UPDATE user_state SET seq = 99 WHERE user_id = 'u1'")
        throw new Error('boom')
      }),
      /boom/,
    )
    const store = new SyncStore(db)
    t.match(await store.userState('u1'), { seq: 0, epoch: 'e1', minValidSeq: 0, scope: null }, 'rolled back')
    const { rows } = await db.query<{ created_at: unknown }>("SELECT created_at FROM users WHERE id = 'u1'")
    t.equal(rows[0]!.created_at, 5)
  })

  t.test('records assumed absent are inserted, never overwritten: the key says whether one existed', async (t) => {
    await db.query("INSERT INTO users (id, username, password_hash, created_at) VALUES ('u2', 'two', 'x', 5)")
    await db.query("INSERT INTO user_state (user_id, epoch) VALUES ('u2', 'e1')")
    const store = new SyncStore(db)
    await store.touchDevice({ userId: 'u2', id: 'd1', name: 'phone', platform: 'android', now: 10 })
    const first = await store.push.read(['u2'], [{ userId: 'u2', deviceId: 'd1' }], [])
    await store.push.write({
      records: [row({ user_id: 'u2', id: 'a', seq: 1, data: new Uint8Array([1, 2, 255]) }), row({ user_id: 'u2', id: 'c', seq: 2 })],
      results: [{ userId: 'u2', deviceId: 'd1', mid: 1, result: new Uint8Array([7]) }],
      devices: [{ userId: 'u2', deviceId: 'd1', lastMid: 1, readLastMid: 0 }],
      users: [{ userId: 'u2', seq: 2, read: first.users.get('u2')! }],
      now: 20,
    })
    // A plan that took records to be absent without reading them (a batch of new records).
    const current = (await store.push.read(['u2'], [{ userId: 'u2', deviceId: 'd1' }], [])).users.get('u2')!
    const creating = (records: RecordRow[], absent: string[]) => ({
      records,
      results: [{ userId: 'u2', deviceId: 'd1', mid: 2, result: new Uint8Array([8]) }],
      devices: [{ userId: 'u2', deviceId: 'd1', lastMid: 2, readLastMid: 1 }],
      users: [{ userId: 'u2', seq: current.seq + records.length, read: current }],
      absent: new Set(absent.map((id) => recordKey('u2', 'notes', id))),
      now: 30,
    })
    const dataOf = async (id: string) => (await db.query<{ data: Uint8Array; seq: number }>("SELECT data, seq FROM records WHERE user_id = 'u2' AND id = $1", [id])).rows[0]
    await t.rejects(store.push.write(creating([row({ user_id: 'u2', id: 'd', seq: 3 }), row({ user_id: 'u2', id: 'a', seq: 4, data: new Uint8Array([9]) })], ['d', 'a'])), WriteConflict, 'one of them exists: refused')
    t.same([...(await dataOf('a'))!.data], [1, 2, 255], 'the existing record is untouched')
    t.equal(await dataOf('d'), undefined, 'and the new one is not written either')
    await t.rejects(store.push.write(creating([row({ user_id: 'u2', id: 'd', seq: 3 })], ['d', 'e'])), WriteConflict, 'one assumed absent but not written: refused, to be planned from a read')
    await store.push.write(creating([row({ user_id: 'u2', id: 'c', seq: 3, data: new Uint8Array([6]) }), row({ user_id: 'u2', id: 'd', seq: 4 })], ['d']))
    t.same([(await dataOf('c'))!.seq, [...(await dataOf('c'))!.data]], [3, [6]], 'a known record in the same batch is updated')
    t.equal((await dataOf('d'))!.seq, 4, 'the new record is written')
  })

  t.test('a batch is one read and one guarded write: records, results, mids and the counter', async (t) => {
    const store = new SyncStore(db)
    await store.touchDevice({ userId: 'u1', id: 'd1', name: 'phone', platform: 'android', now: 10 })
    const read = await store.push.read(['u1'], [{ userId: 'u1', deviceId: 'd1' }, { userId: 'u1', deviceId: 'rest' }], [])
    t.equal(read.users.get('u1')!.seq, 0)
    t.same([...read.devices.keys()], ['u1\u0000d1'], 'an unknown device is not read')
    const added = await store.push.addDevices([{ userId: 'u1', deviceId: 'rest' }], 20)
    t.same(added.map((d) => [d.deviceId, d.lastMid]), [['rest', 0]], 'unknown devices are created')
    const batch = {
      records: [row({ id: 'a', seq: 1, data: new Uint8Array([1, 2, 255]) }), row({ id: 'b', seq: 2, collection: 'other' }), row({ id: 'c', seq: 3 })],
      results: [{ userId: 'u1', deviceId: 'd1', mid: 1, result: new Uint8Array([7]) }],
      devices: [{ userId: 'u1', deviceId: 'd1', lastMid: 1, readLastMid: 0 }],
      users: [{ userId: 'u1', seq: 3, read: read.users.get('u1')! }],
      now: 20,
    }
    await store.push.write(batch)
    // The same plan again: the counter and the mid it was made from have moved on.
    await t.rejects(store.push.write({ ...batch, results: [{ ...batch.results[0]!, mid: 2 }] }), WriteConflict, 'a stale plan is refused')
    const { rows: stored } = await db.query<{ n: number }>("SELECT count(*)::int8 AS n FROM op_results WHERE user_id = 'u1'")
    t.equal(stored[0]!.n, 1, 'and writes nothing')
    const page = await store.pull('u1', { since: 0, limit: 2 })
    t.equal(page!.head, 3)
    t.same(page!.rows.map((r) => r.id), ['a', 'b'], 'in seq order, limited')
    t.same([...page!.rows[0]!.data], [1, 2, 255], 'bytes round-trip')
    const { data: _pulled, ...pulledFields } = page!.rows[0]!
    const { data: _written, ...writtenFields } = batch.records[0]!
    t.strictSame(pulledFields, writtenFields, 'a pulled row is the row written: every field, and no column of the page besides')
    const filtered = await store.pull('u1', { since: 0, limit: 10, collections: ['notes'] })
    t.same(filtered!.rows.map((r) => r.id), ['a', 'c'], 'collection filter')

    const after = await store.pull('u1', { since: 3, limit: 10 })
    t.same([after!.rows, after!.head], [[], 3], 'nothing after the head')
    t.equal(await store.pull('nobody', { since: 0, limit: 10 }), undefined, 'unknown user')
    const results = await store.push.results([{ userId: 'u1', deviceId: 'd1', mid: 1 }, { userId: 'u1', deviceId: 'd1', mid: 2 }])
    t.same([...results.values()].map((r) => [...r]), [[7]], 'stored first answers')
    const again = await store.push.read(['u1'], [{ userId: 'u1', deviceId: 'd1' }], [{ userId: 'u1', collection: 'notes', id: 'c' }, { userId: 'u1', collection: 'notes', id: 'zz' }])
    t.equal(again.devices.get('u1\u0000d1')!.lastMid, 1)
    t.same([...again.records.values()].map((r) => [r.id, r.seq]), [['c', 3]], 'only stored records come back')
    const { data: _read, ...readFields } = again.records.get('u1\u0000notes\u0000c')!
    const { data: _c, ...cFields } = batch.records[2]!
    t.strictSame(readFields, cFields, 'a batch read gives the row written: every field, and no column of the read besides')
    t.equal(again.users.get('u1')!.seq, 3)
    await store.saveAcks([{ userId: 'u1', deviceId: 'd1', cursor: 3 }], 40)
    await store.saveAcks([{ userId: 'u1', deviceId: 'd1', cursor: 2 }], 41)
    const { rows } = await db.query<{ acked_cursor: number }>("SELECT acked_cursor FROM devices WHERE user_id='u1' AND id='d1'")
    t.equal(rows[0]!.acked_cursor, 3, 'acks never move backwards')
    t.match(await store.status('u1'), { collections: { notes: { count: 2 }, other: { count: 1 } }, trash: 0 })
  })
})

t.test('an unreachable Postgres is reported as unavailable', async (t) => {
  const db = createPostgresClient({ url: 'postgres://postgres@127.0.0.1:1/none' })
  t.teardown(() => db.close())
  for (const attempt of [() => db.query('SELECT 1'), () => db.transaction(async () => 1)]) {
    const err = await attempt().then(() => undefined, (e: unknown) => e)
    t.ok(err instanceof HubError, 'a HubError')
    t.equal((err as HubError).code, 'unavailable')
  }
})
