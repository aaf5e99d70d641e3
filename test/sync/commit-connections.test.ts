import t from 'tap'
import { createMemoryBus } from '../../src/bus/memory.ts'
import { createPostgresClient } from '../../src/store/postgres.ts'
import { createPgliteClient } from '../../src/store/pglite.ts'
import { migrate } from '../../src/store/migrate.ts'
import { SyncStore } from '../../src/store/sync-store.ts'
import type { SqlClient } from '../../src/store/sql-client.ts'
import { CollectionRegistry } from '../../src/sync/collections.ts'
import { SyncEngine } from '../../src/sync/engine.ts'
import { RecordCodec } from '../../src/sync/record-codec.ts'
import { freshPostgresSchema, postgresAvailable } from '../helpers/services.ts'

const note = (mid: number, id: string) => ({ op: 'put' as const, mid, collection: 'conversations', id, data: { title: id } })

async function seedUser(db: SqlClient, user: string): Promise<void> {
  await db.query(`INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $1, 'x', 1)`, [user])
  await db.query(`INSERT INTO user_state (user_id, epoch) VALUES ($1, 'e1')`, [user])
}

t.test('postgres: group commits run on reserved connections, not behind a busy pool', async (t) => {
  if (!(await postgresAvailable())) return void t.skip('Postgres is not running', () => {})
  const schema = await freshPostgresSchema()
  const db = createPostgresClient({ url: schema.url, max: 1 })
  const commitDb = db.reserved(1)
  t.teardown(async () => {
    await commitDb.close()
    await db.close()
    await schema.drop()
  })
  await migrate(db)
  await seedUser(db, 'u1')
  const engine = new SyncEngine({ store: new SyncStore(db, commitDb), bus: createMemoryBus(), codec: new RecordCodec(new CollectionRegistry()), maxOpsPerPush: 10, maxRecordBytes: 65536, trashRetentionMs: 1000, lanes: 1 })

  // The pool's only connection is held by a slow read: a commit on it would wait for the read.
  const finished: string[] = []
  const slowRead = db.query('SELECT pg_sleep(1.5)').then(() => finished.push('read'))
  await new Promise((r) => setTimeout(r, 100))
  const first = await engine.push('u1', 'd1', [note(1, 'a')])
  finished.push('push')
  await slowRead
  t.same(finished, ['push', 'read'], 'the push committed while the pool was busy')
  t.same(first.results, [{ ok: true, seq: 1, id: 'a' }], 'and was applied')
  const again = await engine.push('u1', 'd1', [note(2, 'b')])
  t.equal(again.cursor, 2, 'the next push follows it')
})

t.test('pglite: one connection, so the reserved client is the same one and closing it closes nothing', async (t) => {
  const db = await createPgliteClient()
  t.teardown(() => db.close())
  const commitDb = db.reserved(2)
  await commitDb.close()
  const { rows } = await db.query<{ one: number }>('SELECT 1 AS one')
  t.same(rows, [{ one: 1 }], 'the client still answers')
})
