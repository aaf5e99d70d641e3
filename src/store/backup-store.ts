import { RECORD_COLUMNS as COLUMNS, type RecordRow, type UserState } from './rows.ts'
import { recordArrays } from './pg-arrays.ts'
import type { SqlClient, SqlQueryable } from './sql-client.ts'

/** Where an export page ended: the next page starts after this primary key. */
export interface ExportCursor {
  collection: string
  id: string
}

/** Reads for `GET /v1/export` and `synchub export`, outside any transaction. */
export class BackupReader {
  constructor(private readonly db: SqlQueryable) {}

  async count(userId: string, collections: string[]): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(
      'SELECT count(*)::int8 AS n FROM records WHERE user_id = $1 AND collection = ANY($2::text[])',
      [userId, collections],
    )
    return rows[0]?.n ?? 0
  }

  /**
   * One page of the user's records in primary-key order after `after` (keyset pagination on the
   * primary key index): a key never moves, so a record changed during the export appears once,
   * old or new. At most `limit` rows, and it stops once the data reaches `maxBytes` (always at
   * least one row), so large records never make a large page.
   */
  async page(userId: string, q: { collections: string[]; after: ExportCursor | null; limit: number; maxBytes: number }): Promise<RecordRow[]> {
    // A function (migration 0005) so the plan walks the primary key whatever the statistics say.
    const { rows } = await this.db.query<RecordRow>('SELECT * FROM synchub_export_page($1, $2::text[], $3, $4, $5, $6)', [
      userId, q.collections, q.after?.collection ?? null, q.after?.id ?? '', q.limit, q.maxBytes,
    ])
    return rows
  }
}

/** A backup's statements: the export's reads, and the import's writes inside one transaction. */
export class BackupStore {
  readonly reader: BackupReader

  constructor(private readonly db: SqlClient) {
    this.reader = new BackupReader(db)
  }

  /** Runs fn with the import's statements in one transaction: committed when it resolves, rolled back when it throws. */
  importTransaction<T>(fn: (writer: BackupWriter) => Promise<T>): Promise<T> {
    return this.db.transaction((q) => fn(new BackupWriter(q)))
  }
}

/** The import's statements, all inside its one transaction. */
export class BackupWriter {
  constructor(private readonly q: SqlQueryable) {}

  /** Locks the user's counter row first, as every writer does, so the import and pushes serialise. */
  async lockUser(userId: string): Promise<UserState | undefined> {
    const { rows } = await this.q.query<{ seq: number; min_valid_seq: number; epoch: string; scope: string[] | null }>(
      'SELECT seq, min_valid_seq, epoch, scope FROM user_state WHERE user_id = $1 FOR UPDATE',
      [userId],
    )
    const r = rows[0]
    return r && { userId, seq: r.seq, minValidSeq: r.min_valid_seq, epoch: r.epoch, scope: r.scope }
  }

  /**
   * The stored rows of `keys`, each looked up by primary key. As a plain join on `user_id = $1`
   * the planner hashed all of the user's records for every batch, so an import slowed down with
   * every record it had already written; LIMIT 1 keeps the lateral subquery from being flattened
   * back into that join.
   */
  async load(userId: string, keys: Array<{ collection: string; id: string }>): Promise<RecordRow[]> {
    if (keys.length === 0) return []
    const { rows } = await this.q.query<RecordRow>(
      `SELECT r.* FROM unnest($2::text[], $3::text[]) AS k(c, i)
         CROSS JOIN LATERAL (SELECT user_id, ${COLUMNS} FROM records
                              WHERE user_id = $1 AND collection = k.c AND id = k.i LIMIT 1) r`,
      [userId, keys.map((k) => k.collection), keys.map((k) => k.id)],
    )
    return rows
  }

  /** Writes rows whole (created_at and created_seq too, unlike a push): at most one per key. */
  async write(rows: RecordRow[]): Promise<void> {
    if (rows.length === 0) return
    await this.q.query(
      `INSERT INTO records (user_id, ${COLUMNS})
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::bytea[], $6::text[], $7::int8[], $8::int8[],
                            $9::int8[], $10::int8[], $11::text[], $12::text[], $13::text[], $14::int8[], $15::text[])
       ON CONFLICT (user_id, collection, id) DO UPDATE SET
         seq = EXCLUDED.seq, data = EXCLUDED.data, parent_id = EXCLUDED.parent_id, created_at = EXCLUDED.created_at,
         updated_at = EXCLUDED.updated_at, deleted_at = EXCLUDED.deleted_at, purge_at = EXCLUDED.purge_at,
         replaced_by = EXCLUDED.replaced_by, conflict_of = EXCLUDED.conflict_of, device_id = EXCLUDED.device_id,
         created_seq = EXCLUDED.created_seq, trashed_with = EXCLUDED.trashed_with`,
      recordArrays(rows),
    )
  }

  /**
   * The rows this import wrote (seq > base) carry the file's creation order in created_seq;
   * renumber them base+1, base+2… in that order, so they sort among themselves as they did and
   * after everything the user had, and whatever is created later sorts after them.
   */
  async renumberCreated(userId: string, base: number): Promise<void> {
    await this.q.query(
      `UPDATE records r SET created_seq = $2 + o.n
         FROM (SELECT collection, id, row_number() OVER (ORDER BY created_seq, seq) AS n FROM records WHERE user_id = $1 AND seq > $2) o
        WHERE r.user_id = $1 AND r.collection = o.collection AND r.id = o.id`,
      [userId, base],
    )
  }

  /**
   * Overwrite: moves every live record of `collections` the import did not write (seq ≤ base)
   * to the recycle bin, each a new change numbered from `seq` + 1. A child whose parent goes to
   * the bin with it is marked `trashed_with` it, as a delete would, so restoring the parent
   * brings it back. Returns how many moved.
   */
  async trashUntouched(
    userId: string,
    opts: { base: number; seq: number; collections: string[]; now: number; purgeAt: number; deviceId: string | null; parents: Array<{ child: string; parent: string }> },
  ): Promise<number> {
    const { rows } = await this.q.query<{ n: number }>(
      `WITH doomed AS (
         SELECT collection, id, parent_id, row_number() OVER (ORDER BY seq) AS n FROM records
          WHERE user_id = $1 AND seq <= $2 AND deleted_at IS NULL AND collection = ANY($3::text[])
       ), moved AS (
         UPDATE records r SET seq = $4 + d.n, updated_at = $5, deleted_at = $5, purge_at = $6, device_id = $7,
                trashed_with = CASE WHEN EXISTS (
                  SELECT 1 FROM unnest($8::text[], $9::text[]) AS k(child, parent) JOIN doomed p ON p.collection = k.parent
                   WHERE k.child = r.collection AND p.id = r.parent_id) THEN r.parent_id END
           FROM doomed d WHERE r.user_id = $1 AND r.collection = d.collection AND r.id = d.id
         RETURNING 1
       )
       SELECT count(*)::int8 AS n FROM moved`,
      [userId, opts.base, opts.collections, opts.seq, opts.now, opts.purgeAt, opts.deviceId, opts.parents.map((p) => p.child), opts.parents.map((p) => p.parent)],
    )
    return rows[0]?.n ?? 0
  }

  /**
   * Moves the user's counter to `seq`. A new epoch (overwrite) also raises min_valid_seq past
   * every cursor of the old history, so a device that resumes without its epoch is reset too.
   */
  async finish(userId: string, seq: number, replaced?: { epoch: string; minValidSeq: number }): Promise<void> {
    await this.q.query(
      `UPDATE user_state SET seq = $2, epoch = COALESCE($3, epoch), min_valid_seq = GREATEST(min_valid_seq, COALESCE($4::int8, 0))
        WHERE user_id = $1`,
      [userId, seq, replaced?.epoch ?? null, replaced?.minValidSeq ?? null],
    )
  }
}
