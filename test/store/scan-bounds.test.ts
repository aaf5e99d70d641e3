import { BackupReader, BackupWriter } from '../../src/store/backup-store.ts'
import { BrowseStore } from '../../src/store/browse-store.ts'
import type { SqlClient, SqlQueryable } from '../../src/store/sql-client.ts'
import { eachStore } from '../contracts/adapters.ts'

/**
 * The export, import and recycle-bin reads touch what they return, not the user's whole
 * history: counted with the transaction's own table statistics, so the check holds however fast
 * the machine is, and whatever plan Postgres picks. The first two were once quadratic in the
 * history's size; the bin's listing read every record.
 */

/** Rows of `records` read so far in this transaction: by sequential scans, plus entries read from any of its indexes. */
async function rowsRead(q: SqlQueryable): Promise<number> {
  const { rows } = await q.query<{ n: number }>(
    `SELECT (pg_stat_get_xact_tuples_returned('records'::regclass)
             + (SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(indexrelid)), 0) FROM pg_index WHERE indrelid = 'records'::regclass))::int8 AS n`,
  )
  return rows[0]!.n
}

/** `read` inside one transaction, with the rows of `records` it read. */
async function counted<T>(db: SqlClient, read: (q: SqlQueryable) => Promise<T>): Promise<{ result: T; read: number }> {
  return db.transaction(async (q) => {
    const before = await rowsRead(q)
    const result = await read(q)
    return { result, read: (await rowsRead(q)) - before }
  })
}

eachStore(async (t, db) => {
  await db.query(`INSERT INTO users (id, username, password_hash, created_at) VALUES ('u1', 'u1', 'x', 1), ('u2', 'u2', 'x', 1)`)
  await db.query(`INSERT INTO user_state (user_id, epoch) VALUES ('u1', 'e1'), ('u2', 'e1')`)
  await db.query(
    `INSERT INTO records (user_id, collection, id, seq, data, created_at, updated_at, created_seq, deleted_at, purge_at)
     SELECT u, 'messages', lpad(g::text, 6, '0'), g, '\\x80'::bytea, 1, 1, g,
            CASE WHEN g % 100 = 0 THEN g END, CASE WHEN g % 100 = 0 THEN 5000 - g END
       FROM unnest(ARRAY['u1', 'u2']) AS u, generate_series(1, 2000) AS g`,
  )

  const page = await counted(db, (q) => new BackupReader(q).page('u1', { collections: ['conversations', 'messages'], after: { collection: 'messages', id: '001900' }, limit: 10, maxBytes: 1 << 20 }))
  t.same(page.result.map((r) => r.id), Array.from({ length: 10 }, (_, i) => String(1901 + i).padStart(6, '0')), 'an export page after a cursor')
  t.ok(page.read <= 11, `reads from its cursor (${page.read} rows read for 10, with 1,900 of the user's before it)`)

  const keys = [{ collection: 'messages', id: '000005' }, { collection: 'messages', id: '001999' }, { collection: 'messages', id: 'absent' }]
  const load = await counted(db, (q) => new BackupWriter(q).load('u1', keys))
  t.same(load.result.map((r) => [r.user_id, r.id]).sort(), [['u1', '000005'], ['u1', '001999']], 'an import batch finds its stored records, the user’s only')
  t.ok(load.read <= 3, `by their keys (${load.read} rows read for 3 keys, of the user's 2,000)`)

  const bin = await counted(db, (q) => new BrowseStore(q).trash('u1', null, 5))
  t.same(bin.result.map((r) => r.id), ['002000', '001900', '001800', '001700', '001600'], 'the bin lists the soonest purged first')
  t.ok(bin.read <= 20, `reading the user's bin, not their history (${bin.read} rows read; 20 in the bin, 2,000 records)`)
})
