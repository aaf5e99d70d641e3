import { BackupReader, BackupWriter } from '../../src/store/backup-store.ts'
import { BrowseStore } from '../../src/store/browse-store.ts'
import type { SqlClient, SqlQueryable } from '../../src/store/sql-client.ts'
import { eachStore } from '../helpers/each-store.ts'

/**
 * The export, import and recycle-bin reads touch what they return, not the user's whole
 * history: counted with the transaction's own table statistics (index entries read, heap rows
 * fetched, rows read by sequential scans), so the check holds however fast the machine is. The
 * first two were once quadratic in the history's size; the bin's listing read every record.
 */

/** Primary key entries read, heap rows fetched and rows read by sequential scans of `records` so far in this transaction. */
async function touched(q: SqlQueryable): Promise<{ index: number; heap: number; scanned: number }> {
  const { rows } = await q.query<{ index: number; heap: number; scanned: number }>(
    `SELECT pg_stat_get_xact_tuples_returned('records_pkey'::regclass)::int8 AS index,
            pg_stat_get_xact_tuples_fetched('records'::regclass)::int8 AS heap,
            pg_stat_get_xact_tuples_returned('records'::regclass)::int8 AS scanned`,
  )
  return rows[0]!
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

  await db.transaction(async (q) => {
    const before = await touched(q)
    const page = await new BackupReader(q as unknown as SqlClient).page('u1', ['conversations', 'messages'], { collection: 'messages', id: '001900' }, 10, 1 << 20)
    const after = await touched(q)
    t.same(page.map((r) => r.id), Array.from({ length: 10 }, (_, i) => String(1901 + i).padStart(6, '0')), 'an export page after a cursor')
    t.ok(after.index - before.index <= 11, `reads the index from its cursor (${after.index - before.index} entries for 10 rows, of 2,000 before it)`)
  })

  await db.transaction(async (q) => {
    const before = await touched(q)
    const rows = await new BackupWriter(q).load('u1', [{ collection: 'messages', id: '000005' }, { collection: 'messages', id: '001999' }, { collection: 'messages', id: 'absent' }])
    const after = await touched(q)
    t.same(rows.map((r) => [r.user_id, r.id]).sort(), [['u1', '000005'], ['u1', '001999']], 'an import batch finds its stored records, the user’s only')
    t.ok(after.heap - before.heap <= 2, `fetching those rows alone (${after.heap - before.heap} of the user's 2,000)`)
    t.ok(after.index - before.index <= 2, `by their keys (${after.index - before.index} index entries)`)
  })

  await db.transaction(async (q) => {
    const before = await touched(q)
    const bin = await new BrowseStore(q as unknown as SqlClient).trash('u1', null, 5)
    const after = await touched(q)
    t.same(bin.map((r) => r.id), ['002000', '001900', '001800', '001700', '001600'], 'the bin lists the soonest purged first')
    const read = after.heap - before.heap + (after.scanned - before.scanned)
    t.ok(read <= 20, `reading the user's bin, not their history (${read} rows read; 20 in the bin, 2,000 records)`)
  })
})
